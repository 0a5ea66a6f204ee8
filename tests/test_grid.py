import json
import re

import pytest

from backbone.experiments.grid import Experiment, load_grid, merge_parameters, parse_shard
from backbone.models.attention import feature_map_attention
from backbone.training.config import TrainConfig

from conftest import PROJECT

NOTEBOOK = "notebooks/02_pair_training.ipynb"


def write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_the_default_grid_compares_every_attention_over_three_seeds_at_one_budget():
    """The twins question: triplet mining over family batches, global only and each feature-map
    attention, seeds 0-2, one budget; dlib as it is; the two references."""
    grid = load_grid(PROJECT / "experiments" / "grid.yaml", PROJECT)
    models = [e for e in grid.experiments if "07_reference" not in e.notebook]
    trained = [e for e in models if e.parameters["epochs"]]
    settings = {(e.parameters.get("attention"), e.parameters["seed"]) for e in trained}
    assert settings == {(a, s) for a in (None, *feature_map_attention()) for s in (0, 1, 2)}
    assert {e.notebook for e in trained} == {"notebooks/03_triplet_training.ipynb"}
    assert len({(e.parameters["epochs"], e.parameters["budget_images"], tuple(e.parameters["overrides"]))
                for e in trained}) == 1 and trained[0].parameters["overrides"] == ["loss.family_batches=true"]  # fmt: skip
    untrained = [e.name for e in models if not e.parameters["epochs"]]
    assert untrained == ["dlib-as-is"] and models[-1].parameters["config_file"] == "experiments/dlib.yaml"
    references = {e.name: e.parameters for e in grid.experiments if e not in models}
    assert references == {"mark-oracle": {"method": "mark-oracle"}, "local-detail-baseline": {"method": "local-detail"}}
    assert grid.analysis_notebook == "notebooks/05_experiment_analysis.ipynb"


def test_the_losses_grid_compares_losses_with_and_without_attention():
    grid = load_grid(PROJECT / "experiments" / "losses" / "grid.yaml", PROJECT)
    small = [e for e in grid.experiments if "config_file" not in e.parameters]
    regimes = {(e.parameters.get("regime", "triplet"), e.parameters.get("attention")) for e in small}
    assert regimes == {(r, a) for r in ("contrastive", "triplet", "pair-bce") for a in (None, "cbam")}
    assert len({(e.parameters["epochs"], e.parameters["budget_images"], e.parameters["seed"]) for e in small}) == 1


def test_the_twins_grid_pairs_the_mark_map_with_global_only_by_seed():
    """The same config, budget and pinned steps; only the mark-map rows learn from the masks."""
    grid = load_grid(PROJECT / "experiments" / "twins" / "grid.yaml", PROJECT)
    rows = {(e.parameters["attention"], e.parameters["seed"]): e.parameters for e in grid.experiments}
    assert set(rows) == {(a, s) for a in ("marks", None) for s in (0, 1, 2)}
    assert {p["config_file"] for p in rows.values()} == {"experiments/twins/config.yaml"}
    for (attention, _), p in rows.items():
        assert "steps_per_epoch=100" in p["overrides"] and ("loss.branch.marks=1" in p["overrides"]) == bool(attention)
    cfg = TrainConfig.load(PROJECT / "experiments" / "twins" / "config.yaml")
    assert cfg.data.train_root == "data/synthetic-train" and cfg.loss.family_batches and cfg.monitor == "val_twin_auc"


def test_the_twins_gpu_grid_is_the_default_grids_trainings_at_twenty_times_the_images():
    default = load_grid(PROJECT / "experiments" / "grid.yaml", PROJECT)
    gpu = load_grid(PROJECT / "experiments" / "twins-gpu" / "grid.yaml", PROJECT)

    def images(e) -> int:
        return e.parameters["epochs"] * e.parameters["budget_images"]

    trained = {e.name: e for e in default.experiments if e.parameters.get("epochs")}
    assert {e.name for e in gpu.experiments} == set(trained)
    for e in gpu.experiments:
        same = trained[e.name].parameters
        assert (e.notebook, e.parameters["attention"], e.parameters["seed"]) == (
            trained[e.name].notebook, same.get("attention"), same["seed"])  # fmt: skip
        assert images(e) >= 20 * images(trained[e.name])
        assert e.parameters["overrides"] == ["loss.family_batches=true", "batch_size=256", "optim.lr=0.002"]


def test_shared_parameters_go_to_the_notebooks_that_define_them(tmp_path):
    """A grid's defaults (and ``--param``) set what each notebook has: the training notebooks'
    epochs, not the reference notebook's; a shared parameter that no notebook has is misspelt."""
    path = write(
        tmp_path,
        f"""
defaults: {{parameters: {{epochs: 2, seed: 1}}}}
experiments:
  - {{name: a, notebook: {NOTEBOOK}}}
  - {{name: r, notebook: notebooks/07_reference_scores.ipynb, parameters: {{method: local-detail}}}}
""",
    )
    a, r = load_grid(path, PROJECT).experiments
    assert a.parameters == {"epochs": 2, "seed": 1} and r.parameters == {"method": "local-detail"}
    path.write_text(path.read_text().replace("seed: 1", "sed: 1"))
    with pytest.raises(ValueError, match=r"defaults: parameters \['sed'\] are defined by none of the notebooks"):
        load_grid(path, PROJECT)


def test_defaults_merge_and_selection(tmp_path):
    path = write(
        tmp_path,
        f"""
defaults: {{parameters: {{epochs: 2, seed: 1}}}}
experiments:
  - {{name: a, notebook: {NOTEBOOK}, parameters: {{epochs: 3}}}}
  - {{name: b, notebook: {NOTEBOOK}}}
  - {{name: c, notebook: {NOTEBOOK}}}
""",
    )
    grid = load_grid(path, PROJECT)
    assert grid.experiments[0].parameters == {"epochs": 3, "seed": 1}
    assert [e.name for e in grid.select(only=["c", "a"])] == ["a", "c"]
    assert [e.name for e in grid.select(shard="1/2")] == ["a", "c"] and [e.name for e in grid.select(shard="2/2")] == [
        "b"
    ]
    with pytest.raises(ValueError, match="no experiments named \\['zz'\\]"):
        grid.select(only=["zz"])


@pytest.mark.parametrize(
    "body, message",
    [
        (
            f"experiments:\n  - {{name: a, notebook: {NOTEBOOK}}}\n  - {{name: a, notebook: {NOTEBOOK}}}\n",
            "must be unique",
        ),
        ("experiments:\n  - {name: a, notebook: notebooks/nope.ipynb}\n", "does not exist"),
        (f"experiments:\n  - {{name: 'a b', notebook: {NOTEBOOK}}}\n", "must be unique and made of"),
        (f"experiments:\n  - {{name: a, notebook: {NOTEBOOK}, params: {{}}}}\n", "unknown keys \\['params'\\]"),
        ("experiments:\n  - {name: a}\n", "needs a name and a notebook"),
        ("experiments: []\n", "lists no experiments"),
    ],
)
def test_bad_grids_say_what_is_wrong(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        load_grid(write(tmp_path, body), PROJECT)


def test_shards_and_fingerprints():
    assert parse_shard("3/4") == (3, 4)
    for bad in ("0/4", "5/4", "x"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)
    a = Experiment("a", NOTEBOOK, {"epochs": 1})
    assert a.fingerprint(PROJECT) == Experiment("b", NOTEBOOK, {"epochs": 1}).fingerprint(PROJECT)
    assert a.fingerprint(PROJECT) != Experiment("a", NOTEBOOK, {"epochs": 2}).fingerprint(PROJECT)


def test_a_notebooks_prose_and_outputs_leave_its_fingerprint_alone_and_its_code_does_not(tmp_path):
    nb = json.loads((PROJECT / NOTEBOOK).read_text())
    (tmp_path / "notebooks").mkdir()
    copy = tmp_path / NOTEBOOK
    copy.write_text(json.dumps(nb))
    before = Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(tmp_path)
    assert before == Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(PROJECT)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = ["Reworded: what this notebook asks.\n"]
        else:
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["an old run's output\n"]}]
    copy.write_text(json.dumps(nb, indent=2))
    assert Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(tmp_path) == before
    parameters = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    parameters["source"] = ['out_dir = "scratch/elsewhere"  # the runner always sets it\n'] + [
        line for line in parameters["source"] if not line.startswith("out_dir")
    ]
    copy.write_text(json.dumps(nb))
    assert Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(tmp_path) == before
    report = {"cell_type": "code", "metadata": {"tags": ["report"]}, "outputs": [], "source": ["show(findings)\n"]}
    nb["cells"].append(report)
    copy.write_text(json.dumps(nb))
    assert Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(tmp_path) == before
    report["metadata"]["tags"] = []
    copy.write_text(json.dumps(nb))
    assert Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(tmp_path) != before
    nb["cells"].pop()
    code = next(
        c for c in nb["cells"] if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])
    )
    code["source"] = ["print('changed')\n"]
    copy.write_text(json.dumps(nb))
    assert Experiment("a", NOTEBOOK, {"epochs": 1}).fingerprint(tmp_path) != before
    copy.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable notebook"):
        Experiment("a", NOTEBOOK, {}).fingerprint(tmp_path)


def test_the_lfw_grid_and_config_load():
    from backbone.training.config import TrainConfig

    grid = load_grid(PROJECT / "experiments" / "lfw" / "grid.yaml", PROJECT)
    trained = [e for e in grid.experiments if e.notebook != "notebooks/07_reference_scores.ipynb"]
    files = {e.name: e.parameters["config_file"] for e in trained}
    assert set(files.values()) == {"experiments/lfw/config.yaml", "experiments/lfw/dlib.yaml", "experiments/lfw/recipe.yaml",
                                   "experiments/lfw/distill.yaml"}  # fmt: skip
    names = [e.name for e in grid.experiments]
    # the losses compared, each global and with CBAM, at one budget of minutes, their steps pinned
    losses = {
        "contrastive": "contrastive",
        "triplet": None,
        "pairbce": "pair-bce",
        "cosface": "cosface",
        "arcface": "arcface",
    }
    for loss, regime in losses.items():
        for attention in ("global", "cbam"):
            row = grid.experiments[names.index(f"{loss}-{attention}")].parameters
            assert row.get("regime") == regime and row["attention"] == (None if attention == "global" else "cbam")
            assert row["budget_images"] is None and row["epochs"] == 3 and row["overrides"][0] == "budget_minutes=3"
            assert re.fullmatch(r"steps_per_epoch=\d+", row["overrides"][1])
    # the recipe (30 minutes) and the distilled student (60): 5-minute marks, their steps pinned, every epoch tested
    for name, regime, minutes in (("recipe-cosface", "cosface", 30), ("distilled-from-dlib", "distill", 60)):
        row = grid.experiments[names.index(name)].parameters
        c = TrainConfig.load(PROJECT / row["config_file"])
        assert row["regime"] == regime and row["epochs"] == minutes // 5 and row["budget_images"] is None
        assert re.fullmatch(r"steps_per_epoch=\d+", row["overrides"][-1])
        assert (
            c.budget_minutes == minutes and c.test_every_epoch and c.data.train_people == "files/lfw_train_people.txt"
        )
    # dlib's own pipeline as a reference row, on the data the port's rows use
    native = grid.experiments[names.index("dlib-native")].parameters
    dlib = TrainConfig.load(PROJECT / "experiments" / "lfw" / "dlib.yaml")
    assert native["method"] == "dlib-native" and "config_file" not in native
    assert (native["val_pairs"], native["test_pairs"]) == (dlib.data.val_pairs, dlib.data.test_pairs)
    assert native["data_root"] == dlib.data.root
    distilled = TrainConfig.load(PROJECT / "experiments" / "lfw" / "distill.yaml")
    teacher = distilled.loss.teacher.split("/")[-2]
    assert names.index("distilled-from-dlib") > names.index(teacher)  # the teacher's run comes first
    cfg = TrainConfig.load(PROJECT / "experiments" / "lfw" / "config.yaml")
    assert cfg.data.align.detector == "mtcnn" and cfg.data.test_pairs.endswith("pairsDevTest.txt")
    assert cfg.model.image_size == 112
    dlib = TrainConfig.load(PROJECT / "experiments" / "lfw" / "dlib.yaml")
    assert dlib.model.backbone == "dlib_resnet" and dlib.model.pretrained is True and dlib.model.image_size == 150
    assert dlib.data.align.chip == "dlib" and dlib.data.align.size == 150
    dlib_rows = {e.name: e.parameters for e in grid.experiments if e.name.startswith("dlib-")}
    assert dlib_rows["dlib-as-is"]["epochs"] == 0 and dlib_rows["dlib-as-is-flip"]["epochs"] == 0
    assert dlib_rows["dlib-as-is-flip"]["overrides"] == ["model.flip_average=true"]
    assert dlib_rows["dlib-as-is-tta"]["overrides"] == ["model.flip_average=true", "model.tta_zoom=0.9"]
    for loss in ("contrastive", "triplet", "arcface"):  # each loss frozen and whole, at the grid's budget
        assert "freeze_trunk_epochs=3" in dlib_rows[f"dlib-{loss}-frozen"]["overrides"]
        assert "overrides" not in dlib_rows[f"dlib-{loss}-full"] and dlib_rows[f"dlib-{loss}-full"]["epochs"] == 3


def test_a_grid_extends_another(tmp_path):
    (tmp_path / "base").mkdir()
    write(
        tmp_path / "base",
        f"""defaults: {{parameters: {{epochs: 3, seed: 0}}}}
experiments:
  - {{name: a, notebook: {NOTEBOOK}, parameters: {{regime: contrastive}}}}
  - {{name: b, notebook: {NOTEBOOK}, parameters: {{regime: pair-bce}}}}
analysis: {{notebook: {NOTEBOOK}}}
""",
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "grid.yaml").write_text(f"""extends: ../base/grid.yaml
defaults: {{parameters: {{config_file: other.yaml, seed: 1}}}}
experiments:
  - {{name: b, notebook: {NOTEBOOK}, parameters: {{regime: triplet}}}}
  - {{name: c, notebook: {NOTEBOOK}}}
""")
    grid = load_grid(tmp_path / "other" / "grid.yaml", PROJECT)
    assert [e.name for e in grid.experiments] == ["a", "b", "c"] and grid.analysis_notebook == NOTEBOOK
    assert grid.experiments[0].parameters == {
        "epochs": 3,
        "seed": 1,
        "config_file": "other.yaml",
        "regime": "contrastive",
    }
    assert grid.experiments[1].parameters["regime"] == "triplet"  # replaced by name
    (tmp_path / "base" / "grid.yaml").write_text("extends: ../other/grid.yaml\n")
    with pytest.raises(ValueError, match="loop"):
        load_grid(tmp_path / "other" / "grid.yaml", PROJECT)


def test_overrides_lists_are_joined_other_parameters_replaced(tmp_path):
    """A grid's default ``overrides`` (data.root=... for every run) and an experiment's own
    (optim.lr=...) both apply, the experiment's last; so do the command line's (``--param``), after both."""
    path = write(
        tmp_path,
        f"""
defaults: {{parameters: {{epochs: 2, overrides: ["data.root=x"]}}}}
experiments:
  - {{name: a, notebook: {NOTEBOOK}, parameters: {{epochs: 0, overrides: ["optim.lr=1e-5"]}}}}
  - {{name: b, notebook: {NOTEBOOK}}}
""",
    )
    a, b = load_grid(path, PROJECT).experiments
    assert a.parameters == {"epochs": 0, "overrides": ["data.root=x", "optim.lr=1e-5"]}
    assert b.parameters == {"epochs": 2, "overrides": ["data.root=x"]}
    extra = {"overrides": ["data.root=y"], "seed": 3}
    assert merge_parameters(a.parameters, extra) == {"epochs": 0, "seed": 3,
                                                     "overrides": ["data.root=x", "optim.lr=1e-5", "data.root=y"]}  # fmt: skip
    assert merge_parameters({"overrides": ["a=1"]}, {"overrides": None}) == {"overrides": None}
