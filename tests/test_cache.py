import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2.functional import resize

from backbone.data import DataError, load_index
from backbone.data.faces.align import FACE, FALLBACK, NO_FACE, AlignConfig
from backbone.data.faces.cache import CachedFaces, FaceCache, NoFaceError, align_index, alignment_status

CROP = AlignConfig(size=32, detector="none")


@pytest.fixture
def data(tiny_synth, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_synth, root)
    return root


def test_hit_miss_and_reading_through_cached_faces(data, tmp_path):
    index = load_index(data)
    cache = FaceCache(tmp_path / "cache", CROP)
    first = align_index(index, cache, workers=0, progress=False)
    assert first.aligned_now == 48 and first.counts == {FACE: 48}
    again = align_index(index, FaceCache(tmp_path / "cache", CROP), workers=0, progress=False)
    assert again.aligned_now == 0 and again.counts == {FACE: 48}
    faces = CachedFaces(index, FaceCache(tmp_path / "cache", CROP))
    x = faces(index.records[0].path)
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8
    expected = np.array(Image.open(data / index.records[0].path).resize((32, 32), Image.BILINEAR))
    assert torch.equal(x, torch.from_numpy(expected).permute(2, 0, 1))


def test_a_changed_file_or_changed_parameters_invalidate_just_that(data, tmp_path):
    index = load_index(data)
    align_index(index, FaceCache(tmp_path / "cache", CROP), workers=0, progress=False)
    target = data / index.records[5].path
    Image.new("RGB", (64, 64), (1, 2, 3)).save(target)
    cache = FaceCache(tmp_path / "cache", CROP)
    assert align_index(index, cache, workers=0, progress=False).aligned_now == 1
    assert CachedFaces(index, cache)(index.records[5].path)[:, 0, 0].tolist() == [1, 2, 3]
    bigger = FaceCache(tmp_path / "cache", AlignConfig(size=48, detector="none"))
    assert align_index(index, bigger, workers=2, progress=False).aligned_now == 48
    assert len(alignment_status(index, tmp_path / "cache")) == 2


def test_resume_after_a_crash_mid_write(data, tmp_path, monkeypatch):
    index = load_index(data)
    cache = FaceCache(tmp_path / "cache", CROP)
    real_save = Image.Image.save
    calls = {"n": 0}

    def dying_save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            real_save(self, fp, *args, **kwargs)
            with open(fp, "r+b") as f:  # half a PNG on disk, then the process dies
                f.truncate(100)
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        align_index(index, cache, workers=0, progress=False)
    monkeypatch.undo()
    with open(cache.dir / "records.jsonl", "a") as log:
        log.write('{"sha1": "abc", "sta')  # and a torn last line
    assert not list(cache.dir.rglob("*.tmp"))
    resumed = FaceCache(tmp_path / "cache", CROP)
    assert len(resumed.records) == 19  # the torn line and the half-written crop do not count
    summary = align_index(index, resumed, workers=0, progress=False)
    assert summary.aligned_now == 48 - 19 and summary.counts == {FACE: 48}
    faces = CachedFaces(index, FaceCache(tmp_path / "cache", CROP))
    assert all(faces(r.path).shape == (3, 32, 32) for r in index.records)


def _blank_set(root, tiny_synth):
    shutil.copytree(tiny_synth, root)
    Image.new("RGB", (64, 64), (128, 128, 128)).save(root / "solo000" / "solo000_0001.png")  # no face here
    return load_index(root)


def test_no_face_policy_fallback_and_report(tiny_synth, tmp_path):
    index = _blank_set(tmp_path / "data", tiny_synth)
    blank = "solo000/solo000_0001.png"
    detect = AlignConfig(size=64, margin=6, min_face_size=10)
    reported = FaceCache(tmp_path / "cache", detect, policy="report")
    summary = align_index(index, reported, workers=0, batch_size=8, progress=False)
    assert summary.counts.get(NO_FACE, 0) >= 1 and str(index.absolute(blank)) in summary.no_face
    with pytest.raises(NoFaceError, match="no face found in .*solo000_0001.png"):
        CachedFaces(index, reported)(blank)
    fallback = FaceCache(tmp_path / "cache", detect, policy="fallback")
    summary = align_index(index, fallback, workers=0, batch_size=8, progress=False)
    assert summary.aligned_now == summary.counts[FALLBACK] >= 1 and NO_FACE not in summary.counts
    assert summary.no_face == []
    assert CachedFaces(index, fallback)(blank).shape == (3, 64, 64)
    # Back under 'report', the fallbacks are refused again, without re-running detection.
    again = FaceCache(tmp_path / "cache", detect, policy="report")
    summary = align_index(index, again, workers=0, progress=False)
    assert summary.aligned_now == 0 and str(index.absolute(blank)) in summary.no_face
    with pytest.raises(NoFaceError):
        CachedFaces(index, again)(blank)


def test_unreadable_images_are_listed_and_the_rest_cached(data, tmp_path):
    (data / "solo001" / "solo001_0002.png").write_bytes(b"garbage")
    index = load_index(data)
    cache = FaceCache(tmp_path / "cache", CROP)
    summary = align_index(index, cache, workers=0, progress=False)
    assert [p.path.rsplit("/", 1)[-1] for p in summary.unreadable] == ["solo001_0002.png"]
    assert summary.counts == {FACE: 47, "unreadable": 1}
    with pytest.raises(DataError, match="1 of 48 images .* not in the face cache"):
        CachedFaces(index, cache)


def test_config_is_recorded_next_to_the_crops(data, tmp_path):
    cache = FaceCache(tmp_path / "cache", CROP)
    align_index(load_index(data), cache, workers=0, progress=False)
    assert AlignConfig(**json.loads((cache.dir / "config.json").read_text())) == CROP
    assert cache.dir.name.startswith("none-32px-")


def test_preloaded_faces_equal_per_sample_reads(data, tmp_path):
    index = load_index(data)
    cache = FaceCache(tmp_path / "cache", CROP)
    align_index(index, cache, workers=0, progress=False)
    lazy, eager = CachedFaces(index, cache), CachedFaces(index, cache, preload=True)
    for r in index.records:
        assert torch.equal(lazy(r.path), eager(r.path))
    eager(index.records[0].path).zero_()  # callers may write into what they get...
    assert torch.equal(lazy(index.records[0].path), eager(index.records[0].path))  # ...without touching the cache
    # resized as read (once, preloaded): what batch augmentation trains on, equal either way
    small, small_eager = CachedFaces(index, cache, size=16), CachedFaces(index, cache, preload=True, size=16)
    for r in index.records:
        expected = resize(lazy(r.path), [16, 16], antialias=True)
        assert torch.equal(small(r.path), expected) and torch.equal(small_eager(r.path), expected)
