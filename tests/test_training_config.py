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


def test_the_per_step_cosine_schedule_by_hand():
    """cosine-steps: linear warm-up over warmup_steps, then cosine to 0 at the last step."""
    import math

    import torch

    from backbone.training.optim import create_scheduler, steps_per_optimiser_step

    cfg = TrainConfig().with_overrides(["optim.scheduler=cosine-steps", "optim.warmup_steps=2", "optim.lr=1.0"])
    assert steps_per_optimiser_step(cfg.optim) and not steps_per_optimiser_step(TrainConfig().optim)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = create_scheduler(optimizer, cfg.optim, epochs=3, steps=6, mode="max")  # 6 steps in all
    rates = []
    for _ in range(7):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(5)]
    assert rates == [pytest.approx(e, abs=1e-12) for e in expected] and rates[-1] == pytest.approx(0, abs=1e-12)
