"""Bad input, case by case: each defect found by trying the workbook as a demanding user would
(decompression bombs, tiny images, unreadable files, contradicting labels, non-UTF-8 lists, mistyped
config values, damaged caches, concurrent alignment, misspelt grid parameters, stale temporary
files, empty lists, paths leaving the data root) gets a clear error naming the file or setting,
and loses nothing else. docs/reliability.md lists the same cases."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backbone.atomic import atomic_write_text
from backbone.cli import main
from backbone.data.checks.analyze import image_properties
from backbone.data.checks.validate import validate_dataset
from backbone.data.errors import DataError, DataWarning, ImageReadError
from backbone.data.faces.align import AlignConfig, FaceAligner
from backbone.data.faces.cache import CachedFaces, FaceCache, align_index
from backbone.data.images import load_rgb
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import read_pairs
from backbone.evaluation.checkpoints import evaluate_checkpoint
from backbone.experiments.grid import load_grid
from backbone.settings import ConfigError
from backbone.training.config import TrainConfig

from conftest import PROJECT, write_image

NONE_64 = AlignConfig(size=64, detector="none")


def bomb_png(side: int = 20000) -> bytes:
    """A real, valid PNG of side x side 1-bit pixels (all black) in about 48 KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes((side + 7) // 8 + 1)  # filter byte + packed bits
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def bomb_bytes() -> bytes:
    return bomb_png()


@pytest.fixture
def synth_copy(tiny_synth, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_synth, tmp_path / "synth"))


def first_images(root: Path, n: int) -> list[str]:
    return [r.path for r in load_index(root).records[:n]]


# ---- 2. decompression bombs and oversized images


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, bomb_bytes):
    assert len(bomb_bytes) < 50_000
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_bytes)
    with pytest.raises(ImageReadError, match=r"bomb\.png: 400 megapixels, above the limit of 40 "):
        load_rgb(path)


def test_the_pixel_limit_is_a_setting_and_large_jpegs_are_decoded_reduced(tmp_path, monkeypatch):
    write_image(tmp_path / "a.jpg", size=64)
    write_image(tmp_path / "a.png", size=64)
    monkeypatch.setenv("BACKBONE_MAX_IMAGE_PIXELS", "1000")
    assert load_rgb(tmp_path / "a.jpg").size == (16, 16)  # 1/4 scale: 256 pixels, the first reduction that fits
    with pytest.raises(ImageReadError, match="64x64 is 0 megapixels, above the limit of 0.001"):
        load_rgb(tmp_path / "a.png")
    monkeypatch.setenv("BACKBONE_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(DataError, match="BACKBONE_MAX_IMAGE_PIXELS must be a positive whole number"):
        load_rgb(tmp_path / "a.png")


def test_every_reader_follows_one_size_rule_analyze_included(tmp_path, monkeypatch):
    """Issue 30, defect I: `data analyze` called a large JPEG unreadable that every other reader decodes at
    reduced scale. The analysis now asks the same rule (``decoded_size``) as the decoder."""
    from backbone.data.checks.analyze import image_properties
    from backbone.data.images import decoded_size
    from backbone.data.layouts.load import load_index

    for person in ("ann", "bob"):
        (tmp_path / person).mkdir()
        write_image(tmp_path / person / "large.jpg", size=64)
        write_image(tmp_path / person / "large.png", size=64)
    monkeypatch.setenv("BACKBONE_MAX_IMAGE_PIXELS", "1000")
    props = image_properties(load_index(tmp_path, kind="folders"), progress=False)
    assert props["reduced"] == 2 and props["unreadable"] == 2  # the JPEGs decode at 1/4; the PNGs cannot
    assert all(name.endswith("large.png") for name in props["unreadable_files"])
    for path in sorted(tmp_path.rglob("large.*")):  # what analysis says is what loading does
        if path.suffix == ".jpg":
            assert load_rgb(path).size == decoded_size((64, 64), "JPEG", path) == (16, 16)
        else:
            with pytest.raises(ImageReadError):
                load_rgb(path)


def test_validate_reports_a_bomb_per_file_and_keeps_the_rest_of_the_report(synth_copy, bomb_bytes, tmp_path):
    person = sorted(p for p in synth_copy.iterdir() if p.is_dir())[0]
    (person / "bomb.png").write_bytes(bomb_bytes)
    (person / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (tmp_path / "latin1.tsv").write_bytes("path_a\tpath_b\tsame\ttwins\nJos\xe9.jpg\tb.jpg\t1\t0\n".encode("latin-1"))
    report = validate_dataset(synth_copy, [tmp_path / "latin1.tsv"], workers=1, progress=False)
    errors = {(f.kind, Path(f.problem.path).name): f.problem for f in report.errors}
    assert "megapixels" in errors["unreadable", "bomb.png"].message
    assert ("unreadable", "broken.jpg") in errors
    assert errors["malformed-line", "latin1.tsv"].line == 2
    assert "not UTF-8" in errors["malformed-line", "latin1.tsv"].message
    assert report.images == len(load_index(synth_copy))


def test_analyze_lists_a_bomb_with_its_reason(synth_copy, bomb_bytes):
    person = sorted(p for p in synth_copy.iterdir() if p.is_dir())[0]
    (person / "bomb.png").write_bytes(bomb_bytes)
    props = image_properties(load_index(synth_copy), progress=False)
    assert props["unreadable"] == 1
    ((path, reason),) = props["unreadable_files"].items()
    assert path.endswith("bomb.png") and "400 megapixels" in reason


def test_align_reports_a_bomb_and_aligns_the_others(synth_copy, bomb_bytes, tmp_path):
    person = sorted(p for p in synth_copy.iterdir() if p.is_dir())[0]
    (person / "bomb.png").write_bytes(bomb_bytes)
    index = load_index(synth_copy)
    summary = align_index(index, FaceCache(tmp_path / "cache", NONE_64), workers=0, progress=False)
    assert [Path(p.path).name for p in summary.unreadable] == ["bomb.png"]
    assert "megapixels" in summary.unreadable[0].message
    assert summary.counts == {"face": len(index) - 1, "unreadable": 1}


def test_verify_and_evaluate_name_a_bomb(tiny_run, synth_copy, bomb_bytes, tmp_path, capsys):
    person = sorted(p for p in synth_copy.iterdir() if p.is_dir())[0]
    (person / "bomb.png").write_bytes(bomb_bytes)
    other = load_index(synth_copy).records[-1].path  # another person
    ckpt = str(tiny_run / "best.ckpt")
    assert main(["verify", "--checkpoint", ckpt, str(person / "bomb.png"), str(synth_copy / other)]) == 1
    assert "bomb.png: 400 megapixels" in capsys.readouterr().err
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"path_a\tpath_b\tsame\ttwins\n{person.name}/bomb.png\t{other}\t0\t0\n{other}\t{other}\t1\t0\n")
    args = ["evaluate", "--checkpoint", ckpt, "--pairs", str(pairs), "--root", str(synth_copy), "--no-progress"]
    assert main([*args, "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "m.json")]) == 1
    err = capsys.readouterr().err
    assert "1 unreadable images" in err and "bomb.png: 400 megapixels" in err


# ---- 3. images too small for the detector; failures inside batched detection


def test_images_below_the_detectors_size_are_no_face_and_the_batch_still_aligns(tiny_synth):
    aligner = FaceAligner(AlignConfig(size=64, margin=8))
    face = load_rgb(tiny_synth / first_images(tiny_synth, 1)[0])
    tiny = Image.new("RGB", (15, 15), (128, 100, 90))
    detections = aligner.align([tiny, tiny.copy(), face])
    assert [d.crop is None and d.error is None for d in detections[:2]] == [True, True]
    assert detections[2].error is None


def test_a_detection_failure_names_the_image_and_the_rest_is_aligned(synth_copy, tmp_path, monkeypatch):
    cache = FaceCache(tmp_path / "cache", AlignConfig(size=64, margin=8))
    detect = type(cache.aligner.mtcnn).detect

    def failing(self, images, landmarks=False):
        if any(getattr(img, "info", {}).get("poison") for img in images):
            raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
        return detect(self, images, landmarks=landmarks)

    import backbone.data.faces.cache as cache_module

    real_load = cache_module.load_rgb
    target = synth_copy / first_images(synth_copy, 1)[0]

    def load(path):
        img = real_load(path)
        if Path(path) == target:
            img.info["poison"] = True
        return img

    monkeypatch.setattr(type(cache.aligner.mtcnn), "detect", failing)
    monkeypatch.setattr(cache_module, "load_rgb", load)
    index = load_index(synth_copy)
    summary = align_index(index, cache, workers=0, progress=False)
    assert [Path(p.path) for p in summary.unreadable] == [target]
    assert "face detection failed (RuntimeError: torch.cat()" in summary.unreadable[0].message
    assert summary.aligned_now == len(index) - 1


# ---- 4. unreadable source files


@pytest.fixture
def unreadable(monkeypatch):
    """Make a file unreadable: chmod 000, or (root reads anything) refuse to open it."""

    def make(path: Path) -> Path:
        if os.geteuid() != 0:
            path.chmod(0)
            return path
        real_open = builtins.open

        def guarded(file, *args, **kwargs):
            if isinstance(file, str | Path) and Path(file).resolve() == path.resolve():
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)
        return path

    return make


def test_a_file_that_cannot_be_read_is_permission_denied_not_corrupt(synth_copy, tmp_path, unreadable):
    index = load_index(synth_copy)
    locked = unreadable(index.absolute(index.records[0].path))
    with pytest.raises(ImageReadError, match="permission denied"):
        load_rgb(locked)
    summary = align_index(index, FaceCache(tmp_path / "cache", NONE_64), workers=0, progress=False)
    assert [(Path(p.path), p.message) for p in summary.unreadable] == [(locked, "permission denied")]
    assert summary.counts == {"face": len(index) - 1, "unreadable": 1}


# ---- 5. pair labels that contradict the identity folders


def test_evaluate_refuses_contradicting_labels_unless_told_to_trust_them(tiny_run, tiny_synth, tmp_path, capsys):
    a, b = first_images(tiny_synth, 2)  # the same person
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"path_a\tpath_b\tsame\ttwins\n{a}\t{b}\t0\t0\n{a}\t{b}\t1\t0\n")
    common = dict(cache=tmp_path / "cache", progress=False)
    with pytest.raises(DataError, match=r"1 pair labels contradict the identity folders") as info:
        evaluate_checkpoint(tiny_run / "best.ckpt", pairs, tiny_synth, **common)
    assert info.value.problems[0].line == 2
    with pytest.warns(DataWarning, match="1 of 2 pair labels contradict"):
        result = evaluate_checkpoint(tiny_run / "best.ckpt", pairs, tiny_synth, trust_labels=True, **common)
    assert result.evaluation.metrics["label_conflicts"] == 1
    args = ["evaluate", "--checkpoint", str(tiny_run / "best.ckpt"), "--pairs", str(pairs), "--no-progress"]
    assert main([*args, "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "m.json")]) == 1
    assert "contradict" in capsys.readouterr().err and not (tmp_path / "m.json").exists()


# ---- 6. text that is not UTF-8; a byte-order mark


def test_list_files_that_are_not_utf8_name_file_and_line_and_a_bom_is_accepted(tmp_path):
    good = "path_a\tpath_b\tsame\ttwins\na/1.jpg\tb/1.jpg\t0\t0\n"
    (tmp_path / "bom.tsv").write_bytes(b"\xef\xbb\xbf" + good.encode())
    assert len(read_pairs(tmp_path / "bom.tsv")) == 1
    (tmp_path / "latin.tsv").write_bytes((good + "Jos\xe9/1.jpg\tb/1.jpg\t0\t0\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.tsv: not UTF-8 text") as info:
        read_pairs(tmp_path / "latin.tsv")
    assert info.value.problems[0].line == 3 and "byte 0xe9 at column 4" in str(info.value)
    (tmp_path / "people.txt").write_bytes(b"2\nAnn\t1\nJos\xe9\t1\n")
    from backbone.data.layouts.lfw import read_lfw_people

    with pytest.raises(DataError, match=r"people\.txt:3: not UTF-8"):
        read_lfw_people(tmp_path / "people.txt")
    (tmp_path / "people_bom.txt").write_bytes(b"\xef\xbb\xbf1\nAnn\t1\n")
    assert read_lfw_people(tmp_path / "people_bom.txt") == [{"Ann": 1}]


# ---- 8. config values are type-checked


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=three", "epochs must be an integer, got 'three'"),
        ("epochs=1.5", "epochs must be an integer, got 1.5"),
        ("epochs=-1", r"epochs must be at least 0, got -1"),
        ("optim.lr=fast", "optim.lr must be a finite number, got 'fast'"),
        ("data.align.size=big", "data.align.size must be an integer, got 'big'"),
        ("model.dropout=[1]", r"model.dropout must be a finite number, got \[1\]"),
        ("data.preload=maybe", "data.preload must be true or false, got 'maybe'"),
    ],
)
def test_config_values_of_the_wrong_type_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_overrides([override])


def test_a_config_file_with_a_wrong_type_fails_before_any_data_loads(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("epochs: three\ndata:\n  root: does/not/exist\noptim:\n  lr: 1e-3\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: epochs must be an integer, got 'three'"):
        TrainConfig.load(tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml")]) == 1
    err = capsys.readouterr().err
    assert "epochs must be an integer" in err and "does/not/exist" not in err
    (tmp_path / "ok.yaml").write_text("epochs: 3\noptim:\n  lr: 1e-3\n")  # YAML 1.1 reads 1e-3 as text
    assert TrainConfig.load(tmp_path / "ok.yaml").optim.lr == 0.001


# ---- 9. a cached face damaged outside the program


def test_a_damaged_cached_face_is_found_named_and_aligned_again(synth_copy, tmp_path):
    index = load_index(synth_copy)
    cache = FaceCache(tmp_path / "cache", NONE_64)
    align_index(index, cache, workers=0, progress=False)
    faces = CachedFaces(index, cache)
    path = index.records[0].path
    before = faces(path).clone()
    crop = cache.face_path(faces.hashes[path])
    crop.write_bytes(crop.read_bytes()[:100])  # truncated on disk
    fresh = CachedFaces(index, FaceCache(tmp_path / "cache", NONE_64))
    with pytest.warns(DataWarning, match=rf"cached face of .*{Path(path).name} was damaged"):
        assert (fresh(path) == before).all()
    crop.write_bytes(b"garbage")
    summary = align_index(index, FaceCache(tmp_path / "cache", NONE_64), workers=0, progress=False, verify=True)
    assert [Path(p).name for p in summary.damaged] == [Path(path).name] and summary.aligned_now == 1
    assert np.array_equal(np.array(Image.open(crop)), before.permute(1, 2, 0).numpy())


def test_evaluate_survives_a_damaged_cached_face(tiny_run, tiny_synth, tmp_path):
    a, b = first_images(tiny_synth, 2)
    c = load_index(tiny_synth).records[-1].path  # another person
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"path_a\tpath_b\tsame\ttwins\n{a}\t{b}\t1\t0\n{a}\t{c}\t0\t0\n")
    first = evaluate_checkpoint(tiny_run / "best.ckpt", pairs, tiny_synth, cache=tmp_path / "cache", progress=False)
    for crop in (tmp_path / "cache").glob("*/faces/*/*.png"):
        crop.write_bytes(b"\x89PNG damaged")
    shutil.rmtree(tmp_path / "embeddings")  # embed again from the (damaged) crops
    with pytest.warns(DataWarning, match="was damaged"):
        again = evaluate_checkpoint(tiny_run / "best.ckpt", pairs, tiny_synth, cache=tmp_path / "cache", progress=False)
    assert again.evaluation.scores.tolist() == first.evaluation.scores.tolist()


# ---- 10. two alignment runs on one cache at once


def test_two_align_processes_on_one_cache_do_the_work_once(synth_copy, tmp_path):
    cmd = [sys.executable, "-m", "backbone", "data", "align", str(synth_copy), "--cache", str(tmp_path / "cache"),
           "--size", "64", "--margin", "8", "--workers", "0"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    outs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outs
    done_now = sorted(int(out.split("aligned ")[1].split(" now")[0]) for out, _ in outs)
    n = len(load_index(synth_copy))
    assert done_now == [0, n]
    (log,) = (tmp_path / "cache").glob("*/records.jsonl")
    shas = [json.loads(line)["sha1"] for line in log.read_text().splitlines()]
    assert len(shas) == len(set(shas)) == n


def test_a_record_log_with_repeated_and_torn_lines_is_compacted(synth_copy, tmp_path):
    index = load_index(synth_copy)
    align_index(index, FaceCache(tmp_path / "cache", NONE_64), workers=0, progress=False)
    (log,) = (tmp_path / "cache").glob("*/records.jsonl")
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines + lines[:3] + ["not json"]) + "\n" + lines[4][:10])
    summary = align_index(index, FaceCache(tmp_path / "cache", NONE_64), workers=0, progress=False)
    assert summary.aligned_now == 0
    assert sorted(log.read_text().splitlines()) == sorted(lines)


# ---- 11. a misspelt notebook parameter in a grid


def test_a_misspelt_grid_parameter_fails_before_anything_runs(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "experiments:\n  - {name: a, notebook: notebooks/02_pair_training.ipynb, parameters: {atention: cbam}}\n"
    )
    with pytest.raises(ValueError, match=r"unknown notebook parameters \['atention'\] .* defines \[.*'attention'"):
        load_grid(grid, PROJECT)
    assert main(["experiments", "run", "--grid", str(grid), "--runs", str(tmp_path / "runs")]) == 1
    assert "atention" in capsys.readouterr().err and not (tmp_path / "runs").exists()


# ---- also: stale temporary files, empty lists, paths leaving the data root


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".metrics.json.{dead.stdout.strip()}-abc123.tmp"
    stale.write_text('{"half": ')
    live = tmp_path / f".metrics.json.{os.getppid()}-def456.tmp"  # a live writer's file stays
    live.write_text("{}")
    atomic_write_text(tmp_path / "metrics.json", "{}\n")
    assert not stale.exists() and live.exists()


def test_an_empty_pair_file_warns_naming_it(tmp_path, tiny_synth):
    (tmp_path / "empty.tsv").write_text("path_a\tpath_b\tsame\ttwins\n")
    with pytest.warns(DataWarning, match=r"pair file .*empty\.tsv holds no pairs"):
        assert read_pairs(tmp_path / "empty.tsv") == []
    report = validate_dataset(tiny_synth, [tmp_path / "empty.tsv"], decode=False, progress=False)
    assert [(f.kind, Path(f.problem.path).name) for f in report.warnings if f.kind == "empty-file"] == [
        ("empty-file", "empty.tsv")
    ]


def test_pair_paths_leaving_the_data_root_are_refused_unless_allowed(tmp_path):
    text = "path_a\tpath_b\tsame\ttwins\na/1.jpg\t../secret/x.jpg\t0\t0\n/etc/passwd\ta/2.jpg\t0\t0\n"
    (tmp_path / "escape.tsv").write_text(text)
    with pytest.raises(DataError, match="2 image paths outside the data root") as info:
        read_pairs(tmp_path / "escape.tsv")
    assert [p.line for p in info.value.problems] == [2, 3]
    assert len(read_pairs(tmp_path / "escape.tsv", allow_outside_root=True)) == 2
    (tmp_path / "escape.txt").write_text("1\n..\t1\t2\nAnn\t1\tBob\t1\n")
    with pytest.raises(DataError, match=r"escape\.txt: 2 image paths outside"):
        read_pairs(tmp_path / "escape.txt")


def test_a_grid_file_that_is_not_yaml_or_not_utf8_names_file_and_line(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("experiments:\n  - {name: a, notebook: [unclosed\n")
    with pytest.raises(ConfigError, match=r"grid\.yaml:\d+: not valid YAML"):
        load_grid(grid, PROJECT)
    grid.write_bytes(b"experiments: []\n# caf\xe9\n")
    with pytest.raises(DataError, match=r"grid\.yaml: not UTF-8 text"):
        load_grid(grid, PROJECT)
