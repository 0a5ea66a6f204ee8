import numpy as np
import pytest
from PIL import Image

from backbone.data import load_index, load_rgb
from backbone.data.faces.align import AlignConfig, FaceAligner, center_crop


def test_config_key_is_stable_and_tracks_every_parameter():
    assert AlignConfig().key() == AlignConfig().key()
    keys = {
        AlignConfig(size=112).key(),
        AlignConfig(margin=0).key(),
        AlignConfig(detector="none").key(),
        AlignConfig(crop=0.5).key(),
        AlignConfig().key(),
    }
    assert len(keys) == 5
    with pytest.raises(ValueError, match="detector"):
        AlignConfig(detector="dlib")
    with pytest.raises(ValueError, match="crop"):
        AlignConfig(crop=0)


def test_center_crop_keeps_the_middle():
    arr = np.zeros((100, 200, 3), np.uint8)
    arr[40:60, 90:110] = 255  # a white square in the centre
    crop = center_crop(Image.fromarray(arr), 20, fraction=0.2)
    assert crop.shape == (20, 20, 3) and crop.min() == 255
    assert center_crop(Image.fromarray(arr), 50).shape == (50, 50, 3)


def test_mixed_batch_of_faces_and_blanks_does_not_fail(tiny_synth):
    # facenet-pytorch's own batched selection fails on such batches; ours reports None per blank.
    index = load_index(tiny_synth)
    faces = [load_rgb(index.absolute(r.path)).resize((160, 160)) for r in index.records[:6]]
    blanks = [Image.new("RGB", (160, 160), (120, 120, 120)) for _ in range(3)]
    batch = [blanks[0]] + faces[:3] + [blanks[1]] + faces[3:] + [blanks[2]]
    out = FaceAligner(AlignConfig(size=64, margin=6)).align(batch)
    assert len(out) == len(batch)
    assert [d.crop is None for d in out] == [True, False, False, False, True, False, False, False, True]
    for d in out:
        assert d.crop is None or (d.crop.shape == (64, 64, 3) and d.crop.dtype == np.uint8 and d.prob > 0.5)


def test_real_faces_are_found_and_cropped(lfw_root):
    index = load_index(lfw_root)
    images = [
        load_rgb(index.absolute(p)) for p in index.by_identity["Aaron_Eckhart"] + index.by_identity["Aaron_Peirsol"]
    ]
    out = FaceAligner(AlignConfig()).align(images)
    assert all(d.crop is not None and d.crop.shape == (160, 160, 3) and d.prob > 0.95 for d in out)
    for d in out:  # deep-funneled faces sit near the centre of the 250 px image
        x0, y0, x1, y1 = d.box
        assert abs((x0 + x1) / 2 - 125) < 30 and abs((y0 + y1) / 2 - 125) < 40 and 60 < x1 - x0 < 160


def test_the_central_face_wins_over_a_larger_one_at_the_edge(lfw_root):
    index = load_index(lfw_root)
    big = load_rgb(index.absolute(index.by_identity["Aaron_Eckhart"][0])).crop((50, 40, 200, 210)).resize((180, 204))
    small = load_rgb(index.absolute(index.by_identity["Aaron_Peirsol"][0])).crop((50, 40, 200, 210)).resize((150, 170))
    canvas = Image.new("RGB", (600, 420), (90, 90, 90))
    canvas.paste(big, (0, 0))  # larger face, in a corner
    canvas.paste(small, (225, 125))  # smaller face, at the centre
    (d,) = FaceAligner(AlignConfig()).align([canvas])
    cx = (d.box[0] + d.box[2]) / 2
    assert 225 < cx < 375, d.box
