import hashlib
import json
import time

import numpy as np
import pytest
from scipy import ndimage

from backbone.cli import main
from backbone.data.checks.analyze import pixel_baseline
from backbone.data.checks.validate import validate_dataset
from backbone.data.layouts.ndtwin import read_twin_folders
from backbone.data.synth import (
    MARKS_FILE,
    MASKS_FILE,
    SynthConfig,
    generate,
    identity_traits,
    mark_boxes,
    nuisances,
    render,
    render_masks,
)

from conftest import PROJECT, TINY


def digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_twin_list(tiny_synth):
    index = read_twin_folders(tiny_synth)
    assert len(index.by_identity) == 12 and len(index) == 48
    assert index.by_identity["twin000a"][0] == "twin000a/twin000a_0001.png"
    assert json.loads((tiny_synth / "pairs.json").read_text())[0] == ["twin000a", "twin000b"]
    assert json.loads((tiny_synth / "synth.json").read_text())["config"]["seed"] == TINY.seed


def test_same_seed_same_bytes_whatever_the_worker_count(tiny_synth, tmp_path):
    serial_again = generate(TINY, tmp_path / "again", workers=2, progress=False)
    assert digest(serial_again) == digest(tiny_synth)
    other = generate(
        SynthConfig(**{**TINY.__dict__, "seed": TINY.seed + 1}), tmp_path / "other", workers=1, progress=False
    )
    assert digest(other) != digest(tiny_synth)


def test_twins_share_global_traits_and_differ_in_local_marks():
    traits = identity_traits(SynthConfig(twin_pairs=20, singletons=5))
    for p in range(20):
        a, b = traits[f"twin{p:03d}a"], traits[f"twin{p:03d}b"]
        assert a["global"] == b["global"] and a["twin_of"] == f"twin{p:03d}b"
        assert a["local"]["moles"] != b["local"]["moles"] and len(a["local"]["moles"]) >= 1
    globals_ = [json.dumps(t["global"], sort_keys=True) for t in traits.values()]
    assert len(set(globals_)) == 20 + 5  # every family differs


def test_rerun_is_free_other_config_needs_force_and_partial_runs_never_count(tiny_synth, tmp_path):
    out = tmp_path / "set"
    generate(TINY, out, workers=1, progress=False)
    stamp = (out / "synth.json").stat().st_mtime_ns
    generate(TINY, out, workers=1, progress=False)
    assert (out / "synth.json").stat().st_mtime_ns == stamp
    small = SynthConfig(twin_pairs=1, singletons=1, images_per_identity=2, size=32)
    with pytest.raises(FileExistsError, match="--force"):
        generate(small, out, workers=1, progress=False)
    (tmp_path / "new.partial" / "junk").mkdir(parents=True)  # an interrupted earlier run
    generate(small, tmp_path / "new", workers=1, progress=False)
    assert not (tmp_path / "new.partial").exists()
    assert len(read_twin_folders(tmp_path / "new")) == 6
    generate(small, out, workers=1, progress=False, force=True)
    assert len(read_twin_folders(out)) == 6


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    start = time.perf_counter()
    root = generate(SynthConfig(), tmp_path_factory.mktemp("default") / "synthetic", workers=2, progress=False)
    print(f"default synthetic set: {time.perf_counter() - start:.1f} s")
    return root


@pytest.mark.slow
def test_default_set_is_valid_and_twins_are_hard_for_a_low_resolution_whole_face_model(default_set):
    report = validate_dataset(default_set, progress=False)
    assert report.ok(strict=True) and report.images == 3000 and report.identities == 300
    base = pixel_baseline(read_twin_folders(default_set), progress=False)
    print(base)
    assert base["auc_twin_negatives"] < 0.6  # twins: barely above chance
    assert base["auc_random_negatives"] > 0.65  # other families: the same features work


@pytest.mark.slow
def test_committed_pair_files_are_what_make_reproduce_writes(default_set, tmp_path):
    makefile = (PROJECT / "Makefile").read_text()
    commands = [
        line.split("$(BACKBONE) ", 1)[1]
        for line in makefile.splitlines()
        if "$(BACKBONE) data pairs $(SYNTH_DIR)" in line
    ]
    assert len(commands) == 3
    for command in commands:
        words = command.replace("$(SYNTH_DIR)", str(default_set)).replace("$(SEED)", "0").split()
        words = [str(tmp_path / w) if w.startswith("files/") else w for w in words]
        assert main(words) == 0
    committed = sorted((PROJECT / "files").glob("synthetic_*.tsv"))
    assert len(committed) == 4
    for path in committed:
        assert (tmp_path / "files" / path.name).read_bytes() == path.read_bytes(), path.name


def test_mark_masks_and_boxes_line_up_with_the_drawn_marks():
    """Every pixel the marks change lies on the marks mask (give or take the blur), the mask
    covers them, lies on the face, and each box holds its mark."""
    config = SynthConfig(twin_pairs=2, singletons=2, size=112)
    traits = identity_traits(config)
    unmarked_checked = 0
    for k, (name, _, _) in enumerate(config.identities()):
        g, loc = traits[name]["global"], traits[name]["local"]
        bare = {**loc, "moles": [], "scar": None, "freckles": None}
        for i in range(2):
            nu = nuisances(np.random.default_rng([config.seed, 4, k, i]))
            nu["blur"] = 0.0  # blur spreads a mark over its neighbours: compare the sharp photos
            photo = np.asarray(render(g, loc, nu, config.size, np.random.default_rng(1)), np.float32)
            plain = np.asarray(render(g, bare, nu, config.size, np.random.default_rng(1)), np.float32)
            changed = np.abs(photo - plain).sum(-1)
            marks, face = render_masks(g, loc, nu, config.size)
            near = ndimage.binary_dilation(marks > 0, iterations=1)  # the downsampling filter's reach
            assert changed[~near].sum() <= 0.02 * changed.sum(), f"{name} photo {i}: marks drawn off the mask"
            assert (changed[marks >= 128] > 0).all(), f"{name} photo {i}: a mask pixel the marks left unchanged"
            assert (face[marks > 0] > 0).all(), f"{name} photo {i}: a mark off the face"
            boxes = np.array([b["box"] for b in mark_boxes(loc, nu, config.size)])
            ys, xs = np.nonzero(marks)  # each mask pixel's centre lies in a box (give or take a pixel)
            inside = ((boxes[:, None, 0] - 1 <= xs + 0.5) & (xs + 0.5 <= boxes[:, None, 2] + 1)
                      & (boxes[:, None, 1] - 1 <= ys + 0.5) & (ys + 0.5 <= boxes[:, None, 3] + 1))  # fmt: skip
            assert inside.any(0).all(), f"{name} photo {i}: mask pixels outside every box"
            assert inside.any(1).all(), f"{name} photo {i}: a box without its mark"
            unmarked_checked += 1
    assert unmarked_checked == 12


def test_the_data_set_records_every_photos_marks(tiny_synth):
    records = json.loads((tiny_synth / MARKS_FILE).read_text())
    index = read_twin_folders(tiny_synth)
    assert sorted(records) == sorted(r.path for r in index.records)
    with np.load(tiny_synth / MASKS_FILE) as masks:
        assert sorted(masks.files) == sorted(records)
        first = masks[index.records[0].path]
    assert first.shape == (2, TINY.size, TINY.size) and first.dtype == np.uint8
    assert all(m["kind"] in {"mole", "freckle", "scar"} for r in records.values() for m in r["marks"])
    # the recorded pose maps the face's centre into the photo, near its middle
    x, y = np.array(records[index.records[0].path]["pose"]) @ (0.0, 0.0, 1.0)
    assert abs(x - TINY.size / 2) < TINY.size * 0.15 and abs(y - TINY.size / 2) < TINY.size * 0.15


def test_a_set_from_the_previous_generator_version_is_made_again(tmp_path):
    small = SynthConfig(twin_pairs=1, singletons=1, images_per_identity=2, size=32)
    out = generate(small, tmp_path / "set", workers=1, progress=False)
    (out / MASKS_FILE).unlink()
    meta = json.loads((out / "synth.json").read_text())
    (out / "synth.json").write_text(json.dumps({**meta, "version": meta["version"] - 1}))
    generate(small, out, workers=1, progress=False)
    assert (out / MASKS_FILE).is_file() and json.loads((out / "synth.json").read_text()) == meta
