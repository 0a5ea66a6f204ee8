"""Opening an evaluation result for the explorer: a run folder, a score file, a checkpoint and a
pair list; and verifying two new images with clear errors."""

import dataclasses
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from backbone.data.errors import DataError, ImageReadError
from backbone.data.faces.align import AlignConfig
from backbone.data.faces.cache import NoFaceError
from backbone.evaluation.scores import read_scores
from backbone.explorer import open_checkpoint, open_run, open_scores, open_source
from backbone.labels import SAME

from conftest import needs_dlib_models


def png_bytes(path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_run_folder_opens_with_its_scores_threshold_faces_and_model(tiny_run):
    source = open_run(tiny_run, progress=False)
    scored = read_scores(tiny_run / "test_scores.tsv")
    np.testing.assert_array_equal(source.review.scores, scored.scores)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    chosen = metrics["at_val_threshold"]["threshold"]  # the run's operating threshold, chosen on validation
    assert source.review.threshold == chosen != 0.6 and source.has_attention and source.image_size == 64
    assert open_run(tiny_run, threshold=0.6, progress=False).review.threshold == 0.6
    view = source.review.current
    face = source.faces(view.pair.path_a)
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8
    maps = source.attention([face, source.faces(view.pair.path_b)])
    assert len(maps) == 2 and maps[0].shape == (64, 64) and maps[0].sum() == pytest.approx(1.0, abs=1e-3)


def test_a_run_without_its_checkpoint_still_opens_without_model(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.ckpt"))
    source = open_run(run, threshold=0.3, progress=False)
    assert source.model is None and not source.has_attention and "no best.ckpt" in source.title
    assert source.review.threshold == 0.3
    with pytest.raises(ValueError, match="local-global"):
        source.attention([])
    with pytest.raises(FileNotFoundError, match="other.ckpt does not exist"):
        open_run(run, checkpoint=tmp_path / "other.ckpt", progress=False)


@needs_dlib_models
def test_without_a_model_the_pretrained_one_verifies_and_scores_pair_lists(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("BACKBONE_CACHE", str(tmp_path / "cache" / "faces"))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.ckpt"))
    source = open_run(run, threshold=0.3, progress=False)
    assert source.verifier.description.startswith("model dlib-resnet") and source.verifier.threshold > 0.9
    with pytest.raises(ValueError, match="needs the data root"):
        open_source(pairs=tiny_run.parent / "test.tsv")


def test_checkpoint_and_pair_list_give_the_scores_training_wrote(tiny_run):
    pairs = tiny_run.parent / "test.tsv"
    source = open_checkpoint(tiny_run / "best.ckpt", pairs, progress=False)
    # the same checkpoint's scores in full fp32: ~1e-7 apart on one device; 1e-5 allows the embeddings
    # cached by an evaluation on the other device (the CPU and a GPU sum in different orders)
    np.testing.assert_allclose(source.review.scores, read_scores(tiny_run / "test_scores.tsv").scores, atol=1e-5)
    assert source.has_attention


def test_a_score_file_without_checkpoint_shows_whole_images(tiny_run, tiny_synth):
    source = open_source(scores=tiny_run / "test_scores.tsv", root=tiny_synth, progress=False)
    assert source.model is None and source.faces(source.review.current.pair.path_a).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="data root"):
        open_source(scores=tiny_run / "test_scores.tsv")
    with pytest.raises(ValueError, match="open a run folder"):
        open_source()


def test_missing_data_and_images_are_named(tiny_run, tiny_synth, tmp_path):
    with pytest.raises(DataError, match="data root .*nowhere.* does not exist"):
        open_scores(tiny_run / "test_scores.tsv", tmp_path / "nowhere", progress=False)
    lines = (tiny_run / "test_scores.tsv").read_text().splitlines()
    first = lines[1].split("\t")
    lines[1] = "\t".join(["ghost/ghost_0001.png", *first[1:]])
    (tmp_path / "s.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"s.tsv:2: image ghost/ghost_0001.png does not exist"):
        open_scores(tmp_path / "s.tsv", tiny_synth, progress=False)
    with pytest.raises(DataError, match="not a finished run"):
        open_run(tmp_path, progress=False)


def test_verify_paths_under_the_root_and_uploads(tiny_run, tiny_synth):
    source = open_run(tiny_run, progress=False)
    a = "twin000a/twin000a_0001.png"
    same = source.verify(a, ("upload.png", png_bytes(tiny_synth / a)))
    assert same.verdict.score == pytest.approx(1.0, abs=1e-5) and same.verdict.same == SAME
    assert same.faces[0].shape == (64, 64, 3)
    other = source.verify(str(tiny_synth / a), "twin000b/twin000b_0001.png")
    assert other.verdict.score < 1.0 - 1e-4 and other.verdict.threshold == source.review.threshold


def test_verify_errors_name_the_file(tiny_run, tmp_path):
    source = open_run(tiny_run, progress=False)
    with pytest.raises(ImageReadError, match="cannot read image holiday.jpg: not a recognised image format"):
        source.verify(("holiday.jpg", b"not an image"), "twin000a/twin000a_0001.png")
    with pytest.raises(ImageReadError, match="missing.png: no such file"):
        source.verify("missing.png", "twin000a/twin000a_0001.png")
    Image.new("RGB", (120, 120), (128, 128, 128)).save(tmp_path / "wall.png")
    detecting = dataclasses.replace(
        source, align=AlignConfig(size=64, margin=6)
    )  # MTCNN, whose weights ship with facenet-pytorch
    with pytest.raises(NoFaceError, match="no face found in .*wall.png"):
        detecting.verify(str(tmp_path / "wall.png"), str(tmp_path / "wall.png"))


def test_lfw_scores_name_images_under_the_deep_funneled_folder(lfw_root, tmp_path):
    from backbone.data.lists.pairs import read_pairs
    from backbone.evaluation.scores import write_scores

    pairs = read_pairs(lfw_root / "pairsDevTest.txt")[:3] + read_pairs(lfw_root / "pairsDevTest.txt")[-3:]
    write_scores(tmp_path / "s.tsv", pairs, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    source = open_scores(tmp_path / "s.tsv", lfw_root, progress=False)
    assert source.root.name == "lfw-deepfunneled"
    assert source.faces(pairs[0].path_a).shape == (250, 250, 3)
