"""Checkpoints and weight files are read without running code from them, and every error names the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from backbone.models import create_backbone
from backbone.models.backbones import load_state_dict_file
from backbone.models.build import ModelConfig, build_model, load_model, save_model
from backbone.models.weights import CheckpointError, UnsafeCheckpoint
from backbone.training.config import TrainConfig
from backbone.training.trainer import train


class Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do (with worse code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def plant(path: Path, content: dict) -> Path:
    torch.save(content, path)
    return path


def test_the_payload_is_real_when_loaded_unsafely(tmp_path):
    marker = tmp_path / "pwned"
    plant(tmp_path / "evil.ckpt", {"evil": Payload(marker)})
    torch.load(tmp_path / "evil.ckpt", weights_only=False)  # what the code did before
    assert marker.exists()


def test_a_checkpoint_with_code_is_refused_and_runs_nothing(tmp_path):
    config = ModelConfig(embedding_dim=16)
    marker = tmp_path / "pwned"
    state = {"model_config": vars(config), "model": build_model(config).state_dict(), "evil": Payload(marker)}
    path = plant(tmp_path / "evil.ckpt", state)
    with pytest.raises(UnsafeCheckpoint, match=r"refused to load checkpoint .*evil\.ckpt.*could run code"):
        load_model(path)
    assert not marker.exists()


def test_a_weight_file_with_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    net = create_backbone("small")
    path = plant(tmp_path / "weights.pt", {**net.state_dict(), "evil": Payload(marker)})
    with pytest.raises(UnsafeCheckpoint, match=r"refused to load weights file .*weights\.pt"):
        load_state_dict_file(net, path)  # what create_backbone(..., weights=path) does for pretrained/ files
    assert not marker.exists()


def test_resuming_from_a_planted_last_checkpoint_is_refused(tmp_path, tiny_synth):
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    plant(out / "last.ckpt", {"model_config": {}, "model": {}, "train_config": {}, "evil": Payload(marker)})
    cfg = TrainConfig.from_dict({
        "out_dir": str(out), "epochs": 1, "data": {"root": str(tiny_synth), "train_pairs": None, "val_pairs": None,
                                                   "test_pairs": None, "cache": str(tmp_path / "cache")},
    })  # fmt: skip
    with pytest.raises(UnsafeCheckpoint, match="last.ckpt"):
        train(cfg, progress=False)
    assert not marker.exists()


def test_checkpoints_written_here_load_safely(tmp_path):
    config = ModelConfig(embedding_dim=16)
    save_model(build_model(config), config, tmp_path / "m.ckpt", extra={"epoch": 1, "history": [{"loss": 0.5}]})
    assert torch.load(tmp_path / "m.ckpt", weights_only=True)["epoch"] == 1
    assert load_model(tmp_path / "m.ckpt")[1] == config


def test_weights_that_do_not_fit_the_saved_config_name_the_checkpoint_and_keys(tmp_path):
    config = ModelConfig(embedding_dim=16)
    state = build_model(config).state_dict()
    state["net.head.linear.weight"] = torch.zeros(8, 3)
    state["extra.weight"] = torch.zeros(1)
    del state["net.head.bn.bias"]
    path = plant(tmp_path / "mixed.ckpt", {"model_config": vars(config), "model": state})
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "mixed.ckpt does not fit SiameseNet" in message
    assert "1 missing (e.g. net.head.bn.bias)" in message and "1 unexpected (e.g. extra.weight)" in message
    assert "1 of the wrong shape (e.g. net.head.linear.weight (8, 3) vs (16," in message


@pytest.mark.parametrize(
    ("model_config", "expected"),
    [
        ({"embedding_dim": "big"}, "model.embedding_dim must be an integer, got 'big'"),
        ({"depth": 3}, r"unknown settings \['model.depth'\]"),
        ({"attention": "nope"}, "unknown attention 'nope'"),
        ("not a mapping", "must be a mapping"),
    ],
)
def test_errors_about_a_checkpoints_config_name_the_file(tmp_path, model_config, expected):
    path = plant(tmp_path / "odd.ckpt", {"model_config": model_config, "model": {}})
    with pytest.raises(CheckpointError, match=rf"checkpoint .*odd\.ckpt: .*{expected}"):
        load_model(path)


class BlockedModule:
    """A global whose module torch's weights-only reader blocks outright (posix), not just does not allow."""

    def __reduce__(self):
        import posix

        return posix.system, ("true",)


@pytest.mark.parametrize("how", ["blocked module", "plain pickle"])
def test_every_refused_file_gets_the_same_refusal_never_not_a_torch_file(tmp_path, how):
    """Issue 30, defect D: a global of a blocked module, or a raw pickle (opcodes a file of weights never
    holds), was reported as "not a torch file, or damaged", which invites the unsafe retry."""
    path = tmp_path / "evil.ckpt"
    if how == "blocked module":
        torch.save({"model": BlockedModule()}, path)
    else:
        path.write_bytes(pickle.dumps(BlockedModule(), protocol=4))
    with pytest.raises(UnsafeCheckpoint, match=r"refused to load checkpoint .*evil\.ckpt: .*could run code") as info:
        load_model(path)
    assert "posix.system" in str(info.value) or "pickle" in str(info.value)
    assert "damaged" not in str(info.value)


def test_damaged_and_foreign_files_name_themselves(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*junk\.ckpt"):
        load_model(tmp_path / "junk.ckpt")
    plant(tmp_path / "tensor.pt", torch.zeros(3))
    with pytest.raises(CheckpointError, match=r"weights file .*tensor\.pt holds no state dict"):
        load_state_dict_file(create_backbone("small"), tmp_path / "tensor.pt")


def test_a_checkpoint_of_an_earlier_version_is_refused_with_a_hint_and_upgrades(tmp_path, capsys):
    import random

    import numpy as np

    from backbone.cli import main
    from backbone.training.trainer import rng_state, set_rng_state

    config = ModelConfig(embedding_dim=16)
    earlier_rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    path = plant(tmp_path / "old.ckpt", {"model_config": vars(config), "model": build_model(config).state_dict(),
                                         "rng": earlier_rng, "best": np.float64(0.5)})  # fmt: skip
    with pytest.raises(UnsafeCheckpoint, match="upgrade-checkpoint FILE --trust"):
        load_model(path)
    assert main(["upgrade-checkpoint", str(path)]) == 1  # --trust is required
    assert main(["upgrade-checkpoint", str(path), "--trust"]) == 0
    ckpt = load_model(path)[2]
    assert ckpt["best"] == 0.5 and type(ckpt["best"]) is float
    set_rng_state(ckpt["rng"])
    expected = np.random.RandomState()
    expected.set_state(earlier_rng["numpy"])
    # the earlier checkpoint holds no CUDA state; this machine's adds a "cuda" entry when it has a GPU
    assert np.random.rand() == expected.rand() and set(ckpt["rng"]) == set(rng_state()) - {"cuda"}
