"""The training loop: it learns, resumes exactly, guards against NaN, stops early, freezes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning_fabric import Fabric

from backbone.data import generate_pairs, load_index, split_identities, write_pairs
from backbone.data.errors import DataError
from backbone.data.faces.cache import open_faces
from backbone.data.faces.transforms import eval_transform
from backbone.data.lists.pairs import Pair
from backbone.data.synth import SynthConfig, generate
from backbone.evaluation.embeddings import evaluate_pairs
from backbone.models import build_model, load_model
from backbone.settings import ConfigError
from backbone.training.config import TrainConfig
from backbone.training.regimes import pairs as regimes_pairs
from backbone.training.trainer import TrainingDiverged, train

pytestmark = pytest.mark.slow  # every test here trains a model for a few epochs


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """60 identities x 6 images at 64 px, with easy (non-twin) train/val pairs and twin test pairs."""
    base = tmp_path_factory.mktemp("small")
    root = generate(
        SynthConfig(twin_pairs=20, singletons=40, images_per_identity=6, size=64, seed=3),
        base / "synth",
        workers=2,
        progress=False,
    )
    parts = split_identities(load_index(root), {"train": 0.6, "val": 0.4}, seed=0)
    write_pairs(generate_pairs(parts["train"], 600, seed=0, twin_share=0.0), base / "train.tsv")
    write_pairs(generate_pairs(parts["val"], 300, seed=0, twin_share=0.0), base / "val.tsv")
    write_pairs(generate_pairs(parts["val"], 200, seed=1, twin_share=0.5), base / "test.tsv")
    return base


def config(small, out, **overrides) -> TrainConfig:
    d = {
        "out_dir": str(out), "epochs": 3, "batch_size": 32, "seed": 0,
        "data": {"root": str(small / "synth"), "train_pairs": str(small / "train.tsv"), "val_pairs": str(small / "val.tsv"),
                 "test_pairs": None, "align": {"size": 64, "detector": "none"}, "cache": str(small / "cache"), "workers": 0},
        "model": {"input_size": 64, "embedding_dim": 64},
        "optim": {"lr": 3e-3},
    }  # fmt: skip
    cfg = TrainConfig.from_dict(d)
    return cfg.with_overrides([f"{k}={v}" for k, v in overrides.items()])


def untrained_val_auc(cfg: TrainConfig) -> float:
    Fabric.seed_everything(cfg.seed, workers=False, verbose=False)
    model = build_model(cfg.model)
    index = load_index(cfg.data.root)
    from backbone.data import read_pairs

    pairs = read_pairs(cfg.data.val_pairs, root=index.root)
    faces = open_faces(
        index.only_paths({p for x in pairs for p in (x.path_a, x.path_b)}),
        cfg.data.align,
        cache_root=cfg.data.cache,
        progress=False,
    )
    return evaluate_pairs(model, pairs, faces, eval_transform(64), progress=False).metrics["auc"]


def test_a_short_run_lowers_the_loss_and_raises_validation_auc(small, tmp_path):
    cfg = config(small, tmp_path / "run", epochs=4, **{"data.test_pairs": str(small / "test.tsv")})
    before = untrained_val_auc(cfg)
    result = train(cfg, progress=False)
    losses = [h["train_loss"] for h in result.history]
    aucs = [h["val_auc"] for h in result.history]
    print(f"untrained val AUC {before:.3f}; per epoch loss {losses}, val AUC {aucs}")
    assert losses[-1] < 0.8 * losses[0]
    assert max(aucs) > 0.8 and max(aucs) > before + 0.05  # random conv features alone already see skin and hair
    assert result.best_metric == max(aucs) and result.history[result.best_epoch - 1]["val_auc"] == max(aucs)
    for name in ("config.yaml", "history.json", "last.ckpt", "best.ckpt", "metrics.json", "test_scores.tsv"):
        assert (tmp_path / "run" / name).is_file(), name
    assert list((tmp_path / "run" / "tensorboard").iterdir())
    assert result.test_metrics["summary"]["auc"] > 0.5 and "twin_negatives" in result.test_metrics
    model, model_config, ckpt = load_model(tmp_path / "run" / "best.ckpt")
    assert model_config == cfg.model and ckpt["epoch"] == result.best_epoch


def test_resume_after_a_kill_equals_an_uninterrupted_run(small, tmp_path, monkeypatch):
    whole = train(config(small, tmp_path / "whole"), progress=False)
    calls = {"n": 0}
    real = regimes_pairs.Contrastive.forward

    def dies_in_epoch_three(self, *batch):
        calls["n"] += 1
        if calls["n"] == 2 * 18 + 5:  # 18 batches an epoch: killed in the middle of epoch 3
            raise KeyboardInterrupt
        return real(self, *batch)

    monkeypatch.setattr(regimes_pairs.Contrastive, "forward", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train(config(small, tmp_path / "killed"), progress=False)
    assert torch.load(tmp_path / "killed" / "last.ckpt", weights_only=True)["epoch"] == 2
    monkeypatch.undo()
    resumed = train(config(small, tmp_path / "killed"), progress=False)
    a = torch.load(tmp_path / "whole" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "last.ckpt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    timing = ("images_per_s", "train_seconds", "train_minutes")

    def strip(h):
        return [{k: v for k, v in r.items() if k not in timing} for r in h]

    assert strip(whole.history) == strip(resumed.history)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(small, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = regimes_pairs.Contrastive.forward

    def nan_in_epoch_two(self, *batch):
        calls["n"] += 1
        loss = real(self, *batch)
        return loss * float("nan") if calls["n"] > 18 else loss

    monkeypatch.setattr(regimes_pairs.Contrastive, "forward", nan_in_epoch_two)
    with pytest.raises(
        TrainingDiverged, match=r"loss became nan at epoch 2, step 1; the last good checkpoint .*last.ckpt is kept"
    ):
        train(config(small, tmp_path / "run"), progress=False)
    model, _, ckpt = load_model(tmp_path / "run" / "last.ckpt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping_follows_the_monitored_metric(small, tmp_path, monkeypatch):
    from backbone.training import trainer

    aucs = iter([0.70, 0.80, 0.75, 0.79, 0.95])
    monkeypatch.setattr(trainer, "validate", lambda *a: {"val_auc": next(aucs)})
    result = train(
        config(small, tmp_path / "run", epochs=5, steps_per_epoch=2, early_stopping_patience=2), progress=False
    )
    assert result.stopped_early and result.epochs_run == 4 and result.best_epoch == 2 and result.best_metric == 0.80
    assert torch.load(tmp_path / "run" / "best.ckpt", weights_only=True)["epoch"] == 2


def test_a_frozen_backbone_does_not_move(small, tmp_path):
    cfg = config(small, tmp_path / "run", epochs=1, steps_per_epoch=5, freeze_trunk_epochs=1)
    train(cfg, progress=False)
    Fabric.seed_everything(cfg.seed, workers=False, verbose=False)
    initial = build_model(cfg.model).state_dict()
    trained = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)["model"]
    trunk = [k for k in initial if k.startswith("net.trunk.")]
    assert trunk and all(torch.equal(initial[k], trained[k]) for k in trunk)  # batch-norm statistics too
    assert not torch.equal(initial["net.head.linear.weight"], trained["net.head.linear.weight"])


def test_a_resumed_run_must_have_the_same_config(small, tmp_path):
    train(config(small, tmp_path / "run", epochs=1), progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(config(small, tmp_path / "run", epochs=2, **{"optim.lr": 0.1}), progress=False)
    more = train(config(small, tmp_path / "run", epochs=2), progress=False)  # more epochs is fine
    assert more.epochs_run == 2 and len(more.history) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"loss.regime": "triplet", "loss.m_per_class": 4},
        {"loss.regime": "triplet", "loss.mining": "semi-hard", "model.attention": "cbam", "model.branch_dim": 32},
        {"loss.regime": "pair-bce"},
        {"loss.regime": "pair-bce", "model.attention": "spatial", "model.branch_dim": 32},
        {"loss.regime": "arcface", "optim.name": "sgd", "optim.scheduler": "step"},
        {
            "loss.regime": "cosface",
            "loss.scale": 16,
            "optim.name": "sgd",
            "optim.scheduler": "cosine-steps",
            "optim.warmup_steps": 2,
            "data.batch_augment": "true",
            "data.hflip": 0.5,
        },
        {
            "loss.regime": "arcface",
            "model.attention": "transformer",
            "model.branch_dim": 32,
            "optim.scheduler": "plateau",
        },
        {"model.attention": "cbam", "model.branch_dim": 32, "optim.name": "adam", "optim.scheduler": "none"},
    ],
)
def test_every_regime_trains_and_checkpoints(small, tmp_path, overrides):
    cfg = config(small, tmp_path / "run", epochs=1, steps_per_epoch=3, **overrides)
    result = train(cfg, progress=False)
    assert len(result.history) == 1 and result.history[0]["train_loss"] > 0
    model, model_config, _ = load_model(tmp_path / "run" / "best.ckpt")
    assert model_config == cfg.model


def test_a_time_budget_sets_the_steps_once_and_a_resume_keeps_them(small, tmp_path):
    """``budget_minutes``: the steps of each epoch come from timing the first steps, are recorded in
    the checkpoint, and a resumed run takes them from there (not from a new timing); the per-step
    cosine schedule then ends at zero on the budget's last step."""
    cfg = config(small, tmp_path / "run", epochs=1, budget_minutes=0.05, **{"optim.scheduler": "cosine-steps"})
    first = train(cfg, progress=False)
    ckpt = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)
    steps = ckpt["steps_per_epoch"]
    assert steps == ckpt["calibration"]["steps_per_epoch"] and steps >= 1
    assert steps == max(1, round(3.0 / ckpt["calibration"]["step_seconds"]))  # 0.05 min in one epoch
    assert first.history[0]["images"] == first.history[0]["images_seen"] == steps * 32 * 2  # two images a pair
    assert first.history[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # the cosine reached 0 at the last step
    more = train(config(small, tmp_path / "run", epochs=2, budget_minutes=0.05, **{"optim.scheduler": "cosine-steps"}),
                 progress=False)  # fmt: skip
    assert torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)["steps_per_epoch"] == steps
    assert more.history[1]["images"] == steps * 64 and more.history[1]["images_seen"] == 2 * steps * 64


@pytest.mark.parametrize("regime, least, expected", [("cosface", 1, ["a", "b", "c"]), ("cosface", 2, ["b", "c"]),
                                                     ("cosface", 3, ["c"]), ("triplet", 1, ["b", "c"])])  # fmt: skip
def test_data_min_images_leaves_out_identities_with_fewer_images(small, tmp_path, monkeypatch, regime, least, expected):
    """``data.min_images`` thins the identity regimes' classes; triplet mining needs two images anyway."""
    from backbone.data.index import IdentityIndex, ImageRecord
    from backbone.training.regimes import REGIMES, TrainingInputs

    index = IdentityIndex.from_records("/d", [ImageRecord(f"{n}/{i}.jpg", n) for n, k in
                                              [("a", 1), ("b", 2), ("c", 3)] for i in range(k)])  # fmt: skip
    monkeypatch.setattr(TrainingInputs, "faces", lambda self, subset: subset)  # no image is read
    cfg = config(
        small, tmp_path, batch_size=4, **{"loss.regime": regime, "data.min_images": least, "loss.m_per_class": 2}
    )
    pairs = [Pair("a/0.jpg", "b/0.jpg", 0), Pair("c/0.jpg", "c/1.jpg", 1)]
    inputs = TrainingInputs(cfg, index, pairs, lambda x: x, torch.Generator(), progress=False)
    assert REGIMES.get(regime).training_set(inputs).dataset.classes == expected


def test_a_budget_with_steps_per_epoch_pins_the_steps_of_a_timed_run_and_repeats_it(small, tmp_path, monkeypatch):
    """A committed run pins its budget's steps (``steps_per_epoch``): the re-run times nothing,
    says the steps were pinned, and draws the very batches the timed run drew (same losses)."""
    import backbone.training.trainer as trainer

    cosine = {"optim.scheduler": "cosine-steps"}
    timed = train(config(small, tmp_path / "timed", epochs=2, budget_minutes=0.02, **cosine), progress=False)
    steps = torch.load(tmp_path / "timed" / "last.ckpt", weights_only=True)["steps_per_epoch"]
    monkeypatch.setattr(trainer, "calibrate", lambda *a, **k: pytest.fail("a pinned budget must not be timed"))
    pinned = train(config(small, tmp_path / "pinned", epochs=2, budget_minutes=0.02, steps_per_epoch=steps, **cosine),
                   progress=False)  # fmt: skip
    ckpt = torch.load(tmp_path / "pinned" / "last.ckpt", weights_only=True)
    assert ckpt["calibration"] == {"steps_per_epoch": steps, "pinned": True, "budget_minutes": 0.02}
    assert [r["images"] for r in pinned.history] == [steps * 32 * 2] * 2
    assert [r["train_loss"] for r in pinned.history] == pytest.approx(
        [r["train_loss"] for r in timed.history], rel=1e-6
    )
    assert [r["val_auc"] for r in pinned.history] == pytest.approx([r["val_auc"] for r in timed.history], rel=1e-6)


def test_channels_last_trains_the_same_model_in_another_memory_format(small, tmp_path):
    """``channels_last`` changes where the numbers sit in memory, not what is computed: the same
    losses (to float rounding) and a checkpoint that loads like any other."""
    runs = [train(config(small, tmp_path / f"cl-{cl}", epochs=1, steps_per_epoch=4, channels_last=cl,
                         **{"data.batch_augment": True}), progress=False) for cl in (False, True)]  # fmt: skip
    plain, last = (r.history[0] for r in runs)
    # rounding differs with the CPU's convolution kernels and grows over the 4 steps: 0.1% was seen on one
    # machine (AMD EPYC, oneDNN with AVX-512), under 0.1% on another
    assert last["train_loss"] == pytest.approx(plain["train_loss"], rel=3e-3)
    assert last["val_auc"] == pytest.approx(plain["val_auc"], abs=0.01)
    model, _, _ = load_model(tmp_path / "cl-True" / "best.ckpt")
    assert model.embed(torch.randn(2, 3, 64, 64)).shape == (2, 64)


def test_a_student_distilled_from_a_teacher_checkpoint_moves_towards_its_embeddings(small, tmp_path):
    """The distill regime on a tiny run: the teacher (a short contrastive run) embeds the training
    images once into the embedding cache, and the student's embeddings of them come closer to the
    teacher's (mean cosine) than the untrained student's; a second run embeds nothing new."""
    from backbone.evaluation.checkpoints import checkpoint_embeddings
    from backbone.evaluation.embeddings import EmbeddingStore, embed_paths
    from backbone.training.data import build_training_data

    train(config(small, tmp_path / "teacher", epochs=1, steps_per_epoch=4), progress=False)
    teacher = tmp_path / "teacher" / "best.ckpt"
    cfg = config(small, tmp_path / "student", epochs=3, steps_per_epoch=6, **{
        "loss.regime": "distill", "loss.teacher": str(teacher), "loss.identity_weight": 0.1, "optim.lr": 1e-2})  # fmt: skip
    dataset = build_training_data(cfg, progress=False).loader.dataset
    index, paths = load_index(cfg.data.root), dataset.faces.paths
    targets = checkpoint_embeddings(teacher, index, paths, cfg.data.cache, progress=False)
    assert torch.equal(targets, dataset.targets) and targets.shape == (len(paths), 64)
    store = EmbeddingStore.for_checkpoint(teacher, small / "embeddings", cfg.data.align.key()).path
    assert torch.load(store, weights_only=True)["vectors"].shape[0] == len(set(paths))

    def closeness(model) -> float:
        faces = open_faces(index.only_paths(set(paths)), cfg.data.align, cache_root=cfg.data.cache, progress=False)
        student = embed_paths(model, paths, faces, eval_transform(64), progress=False)
        return (student * targets).sum(dim=1).mean().item()

    Fabric.seed_everything(cfg.seed, workers=False, verbose=False)
    before = closeness(build_model(cfg.model))
    result = train(cfg, progress=False)
    after = closeness(load_model(tmp_path / "student" / "last.ckpt")[0])
    print(f"student-teacher cosine {before:.3f} -> {after:.3f}; losses {[h['train_loss'] for h in result.history]}")
    assert after > before + 0.1 and result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    stamp = store.stat().st_mtime_ns
    checkpoint_embeddings(teacher, index, paths, cfg.data.cache, progress=False)
    assert store.stat().st_mtime_ns == stamp  # cached: nothing embedded again


@pytest.mark.parametrize("regime", ["contrastive", "triplet", "arcface"])
def test_every_step_of_the_budget_runs_even_on_a_small_set(small, tmp_path, regime):
    cfg = config(small, tmp_path / "run", epochs=1, steps_per_epoch=30, **{"loss.regime": regime})
    from backbone.training.data import build_training_data

    loader = build_training_data(cfg, progress=False).loader
    assert len(loader) >= 30  # 30 batches of 32 exceed the identity regimes' ~216 training images


def test_the_pretrained_dlib_resnet_fine_tunes_and_reloads(small, tmp_path):
    """A tiny fine-tuning run on dlib's pretrained ResNet: 150 px crops, a low learning rate; the
    trained checkpoint rebuilds without the package's weights and gives the same embeddings."""
    cfg = config(small, tmp_path / "run", epochs=1, steps_per_epoch=2, batch_size=8, **{
        "model.backbone": "dlib_resnet", "model.pretrained": "true", "model.embedding_dim": 128,
        "model.input_size": "null", "data.align.size": 150, "optim.lr": 1e-5,
    })  # fmt: skip
    result = train(cfg, progress=False)
    assert result.epochs_run == 1 and all(np.isfinite(h["train_loss"]) for h in result.history)
    assert result.history[0]["val_auc"] > 0.75  # the pretrained face model already separates these faces
    model, config_, _ = load_model(tmp_path / "run" / "last.ckpt")
    pretrained = build_model(config_).eval()
    x = torch.randn(2, 3, 150, 150)
    with torch.no_grad():
        moved = (model.embed(x) - pretrained.embed(x)).abs().max()
    assert config_.backbone == "dlib_resnet" and 0 < moved < 0.1  # fine-tuned, gently


def test_zero_epochs_evaluates_the_initial_model_with_a_threshold_chosen_on_validation(small, tmp_path):
    """``epochs: 0`` (a pretrained model as it is): no step is taken, the initial weights are the
    run's best checkpoint, and the test pairs are also scored at the validation pairs' best-accuracy
    threshold, checked here against a hand computation from the two pair lists."""
    from backbone.data import read_pairs
    from backbone.evaluation.metrics import best_accuracy_threshold, confusion_at, far_threshold

    cfg = config(small, tmp_path / "run", epochs=0, **{"data.test_pairs": str(small / "test.tsv")})
    result = train(cfg, progress=False)
    assert result.epochs_run == 0 and result.best_epoch == 0 and result.history[0]["epoch"] == 0
    Fabric.seed_everything(cfg.seed, workers=False, verbose=False)
    initial = build_model(cfg.model).eval()
    saved, _, _ = load_model(tmp_path / "run" / "best.ckpt")
    for a, b in zip(initial.state_dict().values(), saved.state_dict().values()):
        assert torch.equal(a, b)

    index = load_index(cfg.data.root)

    def scored(name: str):
        pairs = read_pairs(small / name, root=index.root)
        faces = open_faces(index.only_paths({p for x in pairs for p in (x.path_a, x.path_b)}), cfg.data.align,
                           cache_root=cfg.data.cache, progress=False)  # fmt: skip
        ev = evaluate_pairs(initial, pairs, faces, eval_transform(64), progress=False)
        return ev.scores, np.array([p.same for p in pairs])

    threshold = best_accuracy_threshold(*scored("val.tsv"))
    val_scores, val_labels = scored("val.tsv")
    highest_negative = val_scores[val_labels == 0].max()  # 150 negatives: FAR <= 1e-3 accepts none of them
    m = result.test_metrics
    assert m["val_threshold"]["threshold"] == pytest.approx(threshold)
    assert m["at_val_threshold"] == pytest.approx(confusion_at(*scored("test.tsv"), threshold))
    assert far_threshold(val_scores, val_labels) == pytest.approx(highest_negative)
    assert confusion_at(val_scores, val_labels, m["val_far_threshold"]["threshold"])["fp"] == 0
    assert m["at_val_far_threshold"] == pytest.approx(
        confusion_at(*scored("test.tsv"), m["val_far_threshold"]["threshold"])
    )
    assert m["summary"]["accuracy_at_val_threshold"] == m["at_val_threshold"]["accuracy"]
    assert m["at_val_threshold"]["accuracy"] != m["best"]["accuracy"] or threshold == m["best"]["threshold"]
    assert train(cfg, progress=False).test_metrics["at_val_threshold"] == m["at_val_threshold"]  # a re-run resumes


def test_a_view2_shaped_pair_file_is_scored_with_the_10_fold_protocol(small, tmp_path):
    """What ``LFW_TEST_PAIRS=.../pairs.txt`` does: an LFW-named image folder and a View-2-shaped
    ``pairs.txt`` (10 identity-disjoint folds, ``10<TAB>N`` header) as a run's test pairs give the
    10-fold protocol (each fold at the best-accuracy threshold of the other nine, checked by hand)
    in the metrics and in the results table."""
    from PIL import Image

    from backbone.data import read_pairs
    from backbone.data.layouts.lfw import lfw_image_path
    from backbone.evaluation.metrics import best_accuracy_threshold, confusion_at
    from backbone.evaluation.scores import read_scores
    from backbone.experiments.analysis import Run, result_row

    synth = load_index(small / "synth")
    lfw = tmp_path / "lfw"
    for i, identity in enumerate(sorted(synth.by_identity)):
        for k, path in enumerate(sorted(synth.by_identity[identity]), start=1):
            target = lfw / lfw_image_path(f"Person_{i:03d}", k)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.open(synth.absolute(path)).convert("RGB").save(target, quality=95)
    index = load_index(lfw)
    write_pairs(generate_pairs(index, 200, seed=0, twin_share=0.0, folds=10), lfw / "pairs.txt", fmt="lfw")
    write_pairs(generate_pairs(index, 200, seed=1, twin_share=0.0), tmp_path / "val.tsv")
    assert (lfw / "pairs.txt").read_text().startswith("10\t10\n")
    cfg = config(small, tmp_path / "run", epochs=0, **{
        "data.root": str(lfw), "data.train_pairs": str(tmp_path / "val.tsv"), "data.val_pairs": str(tmp_path / "val.tsv"),
        "data.test_pairs": str(lfw / "pairs.txt"), "data.cache": str(tmp_path / "cache"),
    })  # fmt: skip
    m = train(cfg, progress=False).test_metrics

    pairs = read_pairs(lfw / "pairs.txt", root=lfw)
    scores = read_scores(tmp_path / "run" / "test_scores.tsv").scores
    labels, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    protocol = m["lfw_protocol"]
    assert protocol["folds"] == 10 and len(protocol["per_fold"]) == 10
    for k, fold in enumerate(protocol["per_fold"]):
        threshold = best_accuracy_threshold(scores[folds != k], labels[folds != k])
        assert fold["threshold"] == pytest.approx(threshold)
        assert fold["accuracy"] == pytest.approx(
            confusion_at(scores[folds == k], labels[folds == k], threshold)["accuracy"]
        )
    accuracies = [f["accuracy"] for f in protocol["per_fold"]]
    assert protocol["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    row = result_row(Run("run", tmp_path / "run", cfg, m, []))
    assert row["lfw_accuracy"] == f"{np.mean(accuracies):.4f} ± {np.std(accuracies, ddof=1) / np.sqrt(10):.4f}"


@pytest.mark.parametrize("regime", ["cosface", "triplet"])
def test_a_training_root_trains_on_its_identities_and_evaluates_on_the_root(small, tmp_path, monkeypatch, regime):
    """``data.train_root``: with no training pairs, the identity regimes train on every identity of
    that other data set; validation and test pairs still come from ``data.root``; and the twin
    negatives' AUC of both is in the history (``val_twin_auc`` can pick the best epoch)."""
    from backbone.training.regimes import REGIMES

    other = generate(
        SynthConfig(twin_pairs=6, singletons=0, images_per_identity=4, size=64, seed=11),
        tmp_path / "other",
        workers=1,
        progress=False,
    )
    seen = {}
    build = REGIMES.get(regime).training_set

    def spy(inputs):
        seen["root"], training = inputs.index.root, build(inputs)
        seen["classes"] = training.dataset.classes
        return training

    monkeypatch.setattr(REGIMES.get(regime), "training_set", staticmethod(spy))
    cfg = config(small, tmp_path / "run", epochs=2, steps_per_epoch=2, batch_size=8, test_every_epoch=True,
                 monitor="val_twin_auc", **{"loss.regime": regime, "loss.m_per_class": 2, "data.train_root": str(other),
                                            "data.train_pairs": "null", "data.val_pairs": str(small / "test.tsv"),
                                            "data.test_pairs": str(small / "test.tsv")})  # fmt: skip
    result = train(cfg, progress=False)
    assert seen["root"] == other and seen["classes"] == load_index(other).identities
    best = max(result.history, key=lambda h: h["val_twin_auc"])
    assert result.best_epoch == result.history.index(best) + 1 and result.best_metric == best["val_twin_auc"]
    assert all(0 <= h["test_twin_auc"] <= 1 for h in result.history)
    assert result.test_metrics["summary"]["twin_auc"] == pytest.approx(best["test_twin_auc"])  # the best epoch, tested


def test_monitoring_the_twin_auc_without_twin_negatives_in_validation_says_so(small, tmp_path):
    cfg = config(small, tmp_path / "run", epochs=1, steps_per_epoch=1, monitor="val_twin_auc")
    with pytest.raises(ConfigError, match=r"val_twin_auc needs twin negatives .*val\.tsv has none"):
        train(cfg, progress=False)


def test_identity_regimes_without_training_identities_say_what_they_need(small, tmp_path):
    cfg = config(
        small, tmp_path / "run", epochs=1, steps_per_epoch=1, **{"loss.regime": "cosface", "data.train_pairs": "null"}
    )
    with pytest.raises(DataError, match="need data.train_pairs, data.train_people or data.train_root"):
        train(cfg, progress=False)


def test_the_mark_map_network_trains_on_its_mark_masks_and_points_at_the_marks(small, tmp_path, monkeypatch):
    """Mined family batches carry each image's mark mask to the mark loss; the tested model has
    a pointing score (its attention is the mark map)."""
    from backbone import losses
    from backbone.models.mark_map import MarkMapNet

    seen = []
    mark_loss = losses.mark_loss
    monkeypatch.setattr(losses, "mark_loss", lambda logits, masks: seen.append(masks.shape) or mark_loss(logits, masks))
    cfg = config(small, tmp_path / "run", epochs=1, steps_per_epoch=3, batch_size=16,
                 **{"loss.regime": "triplet", "loss.m_per_class": 2, "loss.family_batches": "true",
                    "model.attention": "marks", "data.augment": "false", "loss.branch.marks": 1.0,
                    "data.test_pairs": str(small / "test.tsv")})  # fmt: skip
    result = train(cfg, progress=False)
    assert seen and all(shape == (16, 64, 64) for shape in seen)  # one uint8 mask per image, no channel axis
    assert result.test_metrics["pointing"]["images"] > 0
    model, _, _ = load_model(tmp_path / "run" / "best.ckpt")
    assert isinstance(model.net, MarkMapNet) and model.embedding_dim == 64 + 16 * 16


def test_the_loss_is_looked_at_every_few_steps_and_a_bad_one_names_its_step(tmp_path):
    """On a GPU the host looks at the loss every 25 steps (each look waits for the device): the mean
    is the same as looking every step, and a NaN between looks is still caught, naming its step."""
    from backbone.training.trainer import LossWatch, look_every

    assert look_every(torch.device("cpu")) == 1 and look_every(torch.device("cuda")) == 25
    every, each = LossWatch(3, 0, tmp_path / "last.ckpt"), LossWatch(1, 0, tmp_path / "last.ckpt")
    looked = [every.add(torch.tensor(v), 2, last=i == 4) for i, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])]
    for v in [1.0, 2.0, 3.0, 4.0, 5.0]:
        each.add(torch.tensor(v), 2)
    assert looked == [False, False, True, False, True] and every.mean == each.mean == 3.0
    bad = LossWatch(25, 1, tmp_path / "last.ckpt")
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 3; no checkpoint was written yet"):
        for i, v in enumerate([0.5, 0.4, float("nan"), 0.3]):
            bad.add(torch.tensor(v), 4, last=i == 3)


def test_a_fresh_run_killed_before_its_first_checkpoint_leaves_the_old_run_as_it_was(small, tmp_path, monkeypatch):
    from backbone.training import trainer

    out = tmp_path / "run"
    train(config(small, out, epochs=1), progress=False)
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    real = trainer.save_checkpoint

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill before the first checkpoint of the fresh run

    monkeypatch.setattr(trainer, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        train(config(small, out, epochs=1, seed=7), resume=False, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == old  # no new config beside old results
    assert (trainer.fresh_folder(out) / "config.yaml").is_file()
    monkeypatch.setattr(trainer, "save_checkpoint", real)
    result = train(config(small, out, epochs=1, seed=7), resume=False, progress=False)
    assert result.out_dir == out and TrainConfig.load(out / "config.yaml").seed == 7
    assert load_model(out / "last.ckpt")[2]["train_config"]["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # neither the fresh folder nor the replaced run
    assert list((out / "tensorboard").iterdir())


def test_a_fresh_run_cut_between_its_two_renames_is_settled(tmp_path):
    from backbone.training.trainer import fresh_folder, settle_fresh

    out = tmp_path / "run"
    fresh, replaced = fresh_folder(out), tmp_path / ".run.replaced"
    for folder, name in ((fresh, "new"), (replaced, "old")):
        folder.mkdir()
        (folder / "last.ckpt").write_text(name)
    settle_fresh(out)  # the old run had moved aside, the new one not yet in: the new one goes in
    assert (out / "last.ckpt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    fresh.mkdir()
    (fresh / "config.yaml").write_text("no checkpoint yet")
    settle_fresh(out)  # killed before its first checkpoint: the run in place stays
    assert (out / "last.ckpt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
