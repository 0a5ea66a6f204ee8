from backbone.experiments.configs import experiment_config


def test_one_budget_of_images_for_every_regime(tmp_path):
    pairs = experiment_config(tmp_path / "a", regime="contrastive", budget_images=6144, check=False)
    triplets = experiment_config(tmp_path / "b", regime="triplet", budget_images=6144, attention="cbam", check=False)
    assert pairs.steps_per_epoch * 2 * pairs.batch_size == 6144
    assert triplets.steps_per_epoch * triplets.batch_size == 6144
    assert triplets.model.attention == "cbam" and pairs.model.attention is None
    assert pairs.name == "a" and pairs.out_dir == str(tmp_path / "a")


def test_overrides_come_last(tmp_path):
    cfg = experiment_config(tmp_path / "a", epochs=2, overrides=["epochs=5", "optim.lr=0.01"], check=False)
    assert cfg.epochs == 5 and cfg.optim.lr == 0.01
