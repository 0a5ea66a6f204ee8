import pytest

from backbone.training.config import TrainConfig


def test_yaml_and_json_round_trip(tmp_path):
    cfg = TrainConfig().with_overrides(
        ["model.attention=cbam", "epochs=7", "data.align.size=96", "optim.grad_clip=null"]
    )
    assert (
        cfg.model.attention == "cbam" and cfg.epochs == 7 and cfg.data.align.size == 96 and cfg.optim.grad_clip is None
    )
    for name in ("c.yaml", "c.json"):
        cfg.save(tmp_path / name)
        assert TrainConfig.load(tmp_path / name) == cfg


def test_errors_name_the_setting(tmp_path):
    with pytest.raises(ValueError, match="unknown setting 'model.depth'"):
        TrainConfig().with_overrides(["model.depth=3"])
    with pytest.raises(ValueError, match="key=value"):
        TrainConfig().with_overrides(["epochs"])
    (tmp_path / "bad.yaml").write_text("data:\n  rooot: x\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown settings \['data.rooot'\]"):
        TrainConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="loss.regime must be one of"):
        TrainConfig().with_overrides(["loss.regime=magic"])
    with pytest.raises(FileNotFoundError):
        TrainConfig.load(tmp_path / "none.yaml")


def test_pair_bce_implies_a_pair_head():
    assert TrainConfig().with_overrides(["loss.regime=pair-bce"]).model.pair_head
