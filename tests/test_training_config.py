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


BAD_VALUES = [  # each setting out of its range, and what the error says (issue 30, defects E, F and G)
    ("model.embedding_dim=0", "model.embedding_dim must be at least 1, got 0"),
    ("model.embedding_dim=-5", "model.embedding_dim must be at least 1, got -5"),
    ("devices=abc", "devices must be 'auto', a number of devices or device indices like '0,1', got 'abc'"),
    ("devices=0", "devices must be at least 1, got 0"),
    ("optim.lr=.inf", "optim.lr must be a finite number, got inf"),
    ("optim.lr=.nan", "optim.lr must be a finite number, got nan"),
    ("optim.lr=fast", "optim.lr must be a finite number, got 'fast'"),
    ("optim.lr=0", "optim.lr must be positive, got 0.0"),
    ("seed=-1", r"seed must be in \[0, 4294967295\], got -1"),
    ("steps_per_epoch=0", "steps_per_epoch must be at least 1, got 0"),
    ("budget_minutes=0", "budget_minutes must be positive, got 0.0"),
    ("epochs=-1", "epochs must be at least 0, got -1"),
    ("batch_size=1", "batch_size must be at least 2, got 1"),
    ("optim.momentum=1", r"optim.momentum must be in \[0, 1\), got 1.0"),
    ("model.dropout=1.5", r"model.dropout must be in \[0, 1\), got 1.5"),
    ("data.align.crop=0", r"data.align.crop must be in \(0, 1\], got 0.0"),
    ("data.workers=-1", "data.workers must be at least 0, got -1"),
    ("loss.branch.fused=-1", "loss.branch.fused must be at least 0, got -1.0"),
    ("loss.m_per_class=1", "loss.m_per_class must be at least 2, got 1"),
    ("loss.mining=hard", "loss.mining must be one of"),
    ("data.policy=skip", "data.policy must be one of"),
    ("accelerator=tpu", "accelerator must be one of"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_every_setting_out_of_its_range_is_refused_by_name(override, message):
    from backbone.settings import ConfigError

    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_overrides([override])


def test_the_edges_of_the_ranges_are_accepted():
    ok = ["seed=0", "seed=4294967295", "epochs=0", "devices=0,1", "devices=2", "devices=auto", "optim.momentum=0",
          "data.align.crop=1", "model.dropout=0", "steps_per_epoch=null", "budget_minutes=null", "data.workers=0"]  # fmt: skip
    TrainConfig().with_overrides(ok)


def test_a_range_reads_as_words():
    from backbone.settings import AT_LEAST_1, POSITIVE, SEED, Range

    assert [str(r) for r in (AT_LEAST_1, POSITIVE, SEED, Range(0, 1, high_open=True), Range(high=0.5))] == [
        "at least 1", "positive", "in [0, 4294967295]", "in [0, 1)", "at most 0.5"]  # fmt: skip


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


def test_a_setting_given_twice_is_refused_with_both_lines(tmp_path):
    (tmp_path / "twice.yaml").write_text("epochs: 1\nseed: 2\nepochs: 20\n")
    with pytest.raises(ValueError, match=r"twice.yaml:3: 'epochs' is given twice \(first on line 1\); keep one"):
        TrainConfig.load(tmp_path / "twice.yaml")
    (tmp_path / "flow.yaml").write_text("optim: {lr: 0.1, lr: 0.2}\n")
    with pytest.raises(ValueError, match=r"flow.yaml:1: 'lr' is given twice"):
        TrainConfig.load(tmp_path / "flow.yaml")
    (tmp_path / "merge.yaml").write_text("base: &b {lr: 0.1}\noptim:\n  <<: *b\n  lr: 0.2\n")  # a merge overrides
    from backbone.settings import load_yaml

    assert load_yaml(tmp_path / "merge.yaml")["optim"] == {"lr": 0.2}
