"""The training configuration: nested dataclasses, saved as YAML next to every run.

``TrainConfig.load("run.yaml")``, ``config.with_overrides(["model.attention=cbam", ...])`` and
``config.save(path)`` are all there is. Unknown keys and values of the wrong type (``epochs:
three``) are ``ConfigError``s that name the dotted key (and the file), raised before any data loads
(see ``backbone.settings``).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from backbone.atomic import atomic_write_text
from backbone.data.errors import existing
from backbone.data.faces.align import POLICIES, AlignConfig
from backbone.losses import DISTILLATION, MINING, BranchWeights
from backbone.models.build import ModelConfig
from backbone.settings import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, SEED, ConfigError, Range, build, load_yaml
from backbone.training.optim import OPTIMISERS, SCHEDULERS
from backbone.training.regimes import REGIMES

# settings of earlier versions and their names now, so that older run folders and checkpoints load
RENAMED = {
    "freeze_backbone_epochs": "freeze_trunk_epochs",
    "loss.weight_fused": "loss.branch.fused",
    "loss.weight_global": "loss.branch.global_branch",
    "loss.weight_local": "loss.branch.local_branch",
    "loss.weight_attention": "loss.branch.attention",
    "loss.arcface_margin": "loss.margin",
    "loss.arcface_scale": "loss.scale",
}
MARK_MAP_REGIMES = ("triplet", "contrastive")  # the regimes the mark-map network trains with
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed")  # Lightning Fabric's, with auto
LOADERS = ("auto", "tensors", "workers")
# name: better. val_twin_auc: the AUC of the validation pairs' twin negatives against its matched pairs
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")  # Lightning Fabric's
_DEVICES = re.compile(r"^(auto|-1|\d+|\d+(,\d+)*,)$|^\d+(,\d+)+$")  # Fabric's: "auto", "-1" (all), "2", "0,1", "1,"
MONITORS = {
    "val_auc": "max",
    "val_accuracy": "max",
    "val_best_accuracy": "max",
    "val_eer": "min",
    "val_twin_auc": "max",
}


@dataclass
class DataConfig:
    root: str = "data/synthetic"
    kind: str = "auto"
    train_root: str | None = None  # the training images' own data set (None: root); identity regimes
    # without train_pairs or train_people then train on every identity in it
    train_pairs: str | None = "files/synthetic_train_pairs.tsv"  # pairs; their identities serve the identity regimes
    val_pairs: str | None = "files/synthetic_val_pairs.tsv"  # validation AUC every epoch
    test_pairs: str | None = "files/synthetic_test_pairs.tsv"  # evaluated with the best checkpoint at the end
    train_triplets: str | None = None  # explicit triplets instead of online mining (triplet regime)
    train_people: str | None = None  # an LFW people file: the training identities (identity regimes)
    min_images: int = 1  # identity regimes: leave out identities with fewer training images
    align: AlignConfig = field(default_factory=lambda: AlignConfig(size=112, detector="none"))
    policy: str = "fallback"
    cache: str | None = None  # face cache folder (default .cache/faces)
    preload: bool = True  # decode the training crops into RAM once
    workers: int = 1  # DataLoader workers (loader: workers), alignment's decoders
    loader: str = "auto"  # "tensors": the training set as tensors on the training device, batches gathered there
    # (TensorBatches); "workers": a DataLoader, item by item; "auto": tensors unless augmentation is per image
    augment: bool = True
    batch_augment: bool | str = "auto"  # augment whole batches on the training device (BatchAugment), not per
    # image in loader workers; "auto": on a GPU yes, on the CPU no (the committed CPU results' way)
    augment_strength: float = 1.0  # scales rotation, shift, zoom and colour jitter (transforms.augment_ranges)
    hflip: float = 0.0  # off by default: flipping mirrors the moles and scars that tell twins apart

    RANGES: ClassVar[dict[str, Range]] = {
        "min_images": AT_LEAST_1, "workers": AT_LEAST_0, "augment_strength": AT_LEAST_0, "hflip": FRACTION,
    }  # fmt: skip


@dataclass
class LossConfig:
    regime: str = "contrastive"
    margin: float | None = None  # the regime's loss margin (ArcFace: radians); None: the loss's own default
    scale: float | None = None  # ArcFace, CosFace: the logit scale; None: the loss's own default
    mining: str = "batch-hard"
    m_per_class: int = 4  # images per identity per batch (triplet mining)
    family_batches: bool = False  # triplet mining: twin siblings always in the same batch (FamilySampler)
    teacher: str | None = None  # distill: the teacher's checkpoint
    distillation: str = "cosine"  # distill: "cosine" or "relational" (backbone.losses.DistillationLoss)
    identity_weight: float = 0.0  # distill: weight of CosFace on the identities added to it
    branch: BranchWeights = field(default_factory=BranchWeights)  # local-global network: backbone.losses.branch_loss

    RANGES: ClassVar[dict[str, Range]] = {
        "margin": AT_LEAST_0, "scale": POSITIVE, "m_per_class": Range(2), "identity_weight": AT_LEAST_0,
    }  # fmt: skip


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9  # sgd
    scheduler: str = "cosine"
    step_size: int = 10  # step scheduler
    gamma: float = 0.1  # step and plateau schedulers
    plateau_patience: int = 2
    grad_clip: float | None = 5.0
    warmup_steps: int = 0  # cosine-steps: linear warm-up

    RANGES: ClassVar[dict[str, Range]] = {
        "lr": POSITIVE, "weight_decay": AT_LEAST_0, "momentum": Range(0, 1, high_open=True), "step_size": AT_LEAST_1,
        "gamma": Range(0, 1, low_open=True), "plateau_patience": AT_LEAST_0, "grad_clip": POSITIVE,
        "warmup_steps": AT_LEAST_0,
    }  # fmt: skip


@dataclass
class TrainConfig:
    name: str = "run"
    out_dir: str = "experiments/runs/run"
    seed: int = 0
    epochs: int = 10  # 0: no training, the initial model (a pretrained backbone as it is) is evaluated
    batch_size: int = 64
    steps_per_epoch: int | None = None  # cap on batches per epoch (quick runs); with budget_minutes: the steps, pinned
    budget_minutes: float | None = None  # minutes of training in all: epochs of budget/epochs minutes each,
    # their steps set by timing the first steps (recorded as `calibration` in the checkpoints) unless pinned
    freeze_trunk_epochs: int = 0  # the trunk (feature extractor) takes no gradient for the first N epochs
    early_stopping_patience: int | None = None  # epochs without a better monitored metric
    monitor: str = "val_auc"
    test_every_epoch: bool = False  # also score the test pairs after every epoch (at its val threshold), for
    # the accuracy-vs-training-time curve; the best checkpoint is still chosen on validation alone
    precision: str = "auto"  # "auto": full precision (TF32 matrix products on a GPU); see trainer.resolve_precision
    channels_last: bool = False  # the model and its training batches in channels-last memory (benchmarks/training.py)
    compile: bool = False  # torch.compile the training objective (model and loss): fewer kernel launches, after a
    # compilation of its own (benchmarks/throughput.py --compile measures both; off unless measured to pay)
    accelerator: str = "auto"
    devices: str | int = "auto"  # per machine (torchrun --nproc_per_node)
    num_nodes: int = 1  # machines (torchrun --nnodes), see docs/multi-gpu.md
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    RANGES: ClassVar[dict[str, Range]] = {
        "seed": SEED, "epochs": AT_LEAST_0, "batch_size": Range(2), "steps_per_epoch": AT_LEAST_1,
        "budget_minutes": POSITIVE, "freeze_trunk_epochs": AT_LEAST_0, "early_stopping_patience": AT_LEAST_1,
        "devices": AT_LEAST_1, "num_nodes": AT_LEAST_1,
    }  # fmt: skip

    def __post_init__(self) -> None:
        checks = [
            ("loss.regime", self.loss.regime, REGIMES.names()),
            ("loss.distillation", self.loss.distillation, DISTILLATION),
            ("optim.name", self.optim.name, OPTIMISERS.names()),
            ("optim.scheduler", self.optim.scheduler, SCHEDULERS.names()),
            ("precision", self.precision, PRECISIONS),
            ("monitor", self.monitor, tuple(MONITORS)),
            ("data.loader", self.data.loader, LOADERS),
            ("data.batch_augment", self.data.batch_augment, (True, False, "auto")),
            ("data.policy", self.data.policy, POLICIES),
            ("loss.mining", self.loss.mining, MINING),
            ("accelerator", self.accelerator, ACCELERATORS),
        ]
        for key, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{key} must be one of {allowed}, got {value!r}")
        if isinstance(self.devices, str) and not _DEVICES.match(self.devices):
            raise ConfigError(f"devices must be 'auto', a number of devices or device indices like '0,1', "
                              f"got {self.devices!r}")  # fmt: skip
        self._check_marks()
        self.model = REGIMES.get(self.loss.regime).configure_model(self.model)

    def _check_marks(self) -> None:
        """The mark-map network trains with the triplet or contrastive regime (its local embedding
        has a size of its own, which the margin regimes' class centres do not take, and it has no
        pair head); mark supervision (``loss.branch.marks``) needs that network, the mined triplet
        regime (its batches carry the masks) and no augmentation (it would move the faces but not
        their masks)."""
        if self.model.attention == "marks" and self.loss.regime not in MARK_MAP_REGIMES:
            raise ConfigError(f"the mark-map network (model.attention: marks) trains with loss.regime "
                              f"{' or '.join(MARK_MAP_REGIMES)}, not {self.loss.regime}")  # fmt: skip
        if not self.loss.branch.marks:
            return
        needs = [
            (self.model.attention != "marks", "model.attention: marks (the mark-map network)"),
            (self.loss.regime != "triplet" or self.data.train_triplets, "loss.regime: triplet with online mining"),
            (self.data.augment, "data.augment: false (augmentation would move the faces but not their mark masks)"),
        ]
        missing = [need for wrong, need in needs if wrong]
        if missing:
            raise ConfigError(f"loss.branch.marks ({self.loss.branch.marks:g}) needs " + "; ".join(missing))

    # ---- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A config from its dict form; settings under an earlier name (``RENAMED``) are moved."""
        return build(cls, _renamed(d))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """A config file (YAML or JSON); every error names the file."""
        path = existing(path, "config file")
        d = load_yaml(path, "config file")
        try:
            return cls.from_dict({} if d is None else d)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = (
            json.dumps(self.to_dict(), indent=2) + "\n"
            if path.suffix == ".json"
            else yaml.safe_dump(self.to_dict(), sort_keys=False)
        )
        atomic_write_text(path, text)

    def with_overrides(self, overrides: list[str]) -> TrainConfig:
        """Apply ``key.sub=value`` strings (values parsed as YAML: ``3``, ``true``, ``null``, ``cbam``)."""
        d = self.to_dict()
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value (e.g. model.attention=cbam)")
            key, value = item.split("=", 1)
            key = RENAMED.get(key, key)
            node = d
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown setting {key!r}")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"unknown setting {key!r}")
            try:
                node[parts[-1]] = yaml.safe_load(value)
            except yaml.YAMLError:
                node[parts[-1]] = value  # not YAML: the text itself (the type check judges it)
        return TrainConfig.from_dict(d)  # a ConfigError names the dotted key


def _renamed(d: Any) -> Any:
    """``d`` with the settings of ``RENAMED`` under their current names (a copy; ``d`` is kept)."""
    if not isinstance(d, dict):
        return d
    d = copy.deepcopy(d)
    for old, new in RENAMED.items():
        *path, leaf = old.split(".")
        node = d
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        *path, leaf = new.split(".")
        node = d
        for i, part in enumerate(path):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"{old} is now called {new}, but {where} must be a mapping, got {node!r}")
        node.setdefault(leaf, value)
    return d
