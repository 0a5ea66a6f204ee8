import numpy as np
import pytest
import torch
from PIL import Image

from backbone.data import load_index, load_rgb
from backbone.data.faces.align import (
    LANDMARK_TEMPLATE,
    AlignConfig,
    FaceAligner,
    center_crop,
    landmark_chip,
    similarity_transform,
)

from conftest import needs_dlib_models


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


def test_dlib_chips_need_the_detector_and_leave_existing_cache_keys_alone():
    assert AlignConfig().key() == "mtcnn-160px-c2d83c4cae"  # the folder of every cache made before chips existed
    assert AlignConfig(size=112, detector="none").key() == "none-112px-c2ea22f499"
    assert AlignConfig(size=150, chip="dlib").key() != AlignConfig(size=150).key()
    with pytest.raises(ValueError, match="chip 'dlib' .* needs detector 'mtcnn'"):
        AlignConfig(detector="none", chip="dlib")
    with pytest.raises(ValueError, match="chip must be one of"):
        AlignConfig(chip="tight")


@needs_dlib_models
def test_dlib_chips_of_faces_and_blanks(tiny_synth):
    index = load_index(tiny_synth)
    faces = [load_rgb(index.absolute(r.path)).resize((160, 160)) for r in index.records[:4]]
    out = FaceAligner(AlignConfig(size=150, chip="dlib")).align([Image.new("RGB", (160, 160), (120, 120, 120)), *faces])
    assert out[0].crop is None
    assert all(d.crop is not None and d.crop.shape == (150, 150, 3) and d.crop.dtype == np.uint8 for d in out[1:])


@needs_dlib_models
def test_dlib_chips_agree_with_dlibs_own_pipeline(lfw_root):
    """Our chip (dlib's landmarks inside MTCNN's box) against dlib's whole pipeline (its HOG detector, the
    same landmarks and get_face_chip), compared by the descriptors of dlib's ResNet."""
    import dlib

    from backbone.models.dlib_resnet import default_model_path, load_dlib_resnet

    index = load_index(lfw_root)
    paths = index.by_identity["Aaron_Eckhart"] + index.by_identity["Aaron_Peirsol"] + index.by_identity["Abba_Eban"]
    images = [load_rgb(index.absolute(p)) for p in paths]
    ours = [d.crop for d in FaceAligner(AlignConfig(size=150, chip="dlib")).align(images)]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(default_model_path().parent / "shape_predictor_5_face_landmarks.dat"))
    theirs = []
    for img in map(np.asarray, images):
        (box,) = detector(img, 1)[:1]
        theirs.append(np.array(dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25)))
    net = load_dlib_resnet()
    with torch.no_grad():
        a, b = (torch.nn.functional.normalize(net(torch.from_numpy(np.stack(c)).permute(0, 3, 1, 2).float()), dim=1)
                for c in (ours, theirs))  # fmt: skip
    similarity = (a * b).sum(1)
    assert similarity.min() > 0.97, similarity


def test_a_dlib_chips_cache_key_ignores_the_margin_it_does_not_use():
    assert AlignConfig(size=150, chip="dlib", margin=0).key() == AlignConfig(size=150, chip="dlib", margin=14).key()
    assert AlignConfig(size=150, chip="landmarks").key() not in (AlignConfig(size=150, chip="dlib").key(),
                                                                  AlignConfig(size=150).key())  # fmt: skip
    assert AlignConfig(size=150, margin=0).key() != AlignConfig(size=150, margin=14).key()


def test_the_similarity_transform_recovers_rotation_scale_and_shift():
    angle, scale, shift = 0.3, 1.7, np.array([20.0, -30.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.array(LANDMARK_TEMPLATE)
    target = scale * source @ rotation.T + shift
    m = similarity_transform(source, target)
    assert np.allclose(m[:, :2], scale * rotation) and np.allclose(m[:, 2], shift)
    noisy = target + np.random.default_rng(0).normal(0, 0.5, target.shape)
    fitted = source @ similarity_transform(source, noisy)[:, :2].T + similarity_transform(source, noisy)[:, 2]
    assert np.abs(fitted - noisy).max() < 2.0  # least squares, not an exact fit
    mirrored = source * [-1, 1]
    assert np.linalg.det(similarity_transform(source, mirrored)[:, :2]) > 0  # never a reflection


@pytest.mark.parametrize("size", [150, 112])
def test_a_landmark_chip_puts_the_landmarks_on_the_template(size):
    """Five dots drawn where the landmarks of a rotated, shifted, enlarged face would be land on the
    template's points (scaled to ``size``) in the chip."""
    angle, scale = -0.25, 2.2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = scale * np.array(LANDMARK_TEMPLATE) @ rotation.T + [60.0, 110.0]
    canvas = np.zeros((500, 500, 3), np.uint8)
    for k, (x, y) in enumerate(landmarks.round().astype(int)):
        canvas[y - 8 : y + 9, x - 8 : x + 9, k % 3] = 255
    chip = landmark_chip(Image.fromarray(canvas), landmarks, size)
    assert chip.shape == (size, size, 3) and chip.dtype == np.uint8
    for k, (x, y) in enumerate(np.array(LANDMARK_TEMPLATE) * size / 150):
        patch = chip[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2, k % 3]
        assert patch.min() > 100, (k, patch)


def test_landmark_chips_of_faces_and_blanks(tiny_synth):
    index = load_index(tiny_synth)
    faces = [load_rgb(index.absolute(r.path)).resize((160, 160)) for r in index.records[:4]]
    out = FaceAligner(AlignConfig(size=150, chip="landmarks")).align(
        [Image.new("RGB", (160, 160), (90, 90, 90)), *faces]
    )
    assert out[0].crop is None
    assert all(d.crop is not None and d.crop.shape == (150, 150, 3) for d in out[1:])


def test_a_missing_or_damaged_shape_predictor_names_the_file(tmp_path, monkeypatch, tiny_synth):
    """Without dlib's shape predictor a dlib chip cannot be made: the whole alignment stops, naming
    the file and the package that installs it (not one "no face" per image)."""
    import backbone.models.dlib_resnet as dlib_resnet
    from backbone.data.errors import MissingInput

    monkeypatch.setattr(
        dlib_resnet, "default_model_path", lambda: tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    )
    face = load_rgb(load_index(tiny_synth).absolute(load_index(tiny_synth).records[0].path)).resize((160, 160))
    with pytest.raises(
        MissingInput, match=r"shape_predictor_5_face_landmarks\.dat \(chip 'dlib'\) is missing: pip install"
    ):
        FaceAligner(AlignConfig(size=150, chip="dlib")).align([face])
    (tmp_path / "shape_predictor_5_face_landmarks.dat").write_bytes(b"\x00not a shape predictor" * 50)
    with pytest.raises(
        MissingInput, match=r"shape_predictor_5_face_landmarks\.dat is not dlib's 5-point shape predictor"
    ):
        FaceAligner(AlignConfig(size=150, chip="dlib")).align([face])


def test_retry_dark_keeps_the_cache_folders_made_before_it():
    assert AlignConfig(size=150, chip="dlib").key() == "mtcnn-150px-0c6b0cf58d"  # the pretrained model's folder
    assert AlignConfig(size=150, chip="dlib", retry_dark=True).key() != AlignConfig(size=150, chip="dlib").key()


def test_a_face_too_dark_for_mtcnn_is_found_on_a_contrast_stretched_copy(lfw_root):
    index = load_index(lfw_root)
    paths = sorted(index.by_identity["Aaron_Eckhart"] + index.by_identity["Abdullah_Gul"])[:12]
    dark = [Image.fromarray((np.asarray(load_rgb(index.absolute(p)), np.float32) * 0.08).round().astype(np.uint8))
            for p in paths]  # the stress set's strongest under-exposure  # fmt: skip
    as_is = FaceAligner(AlignConfig(size=150)).align(dark)
    retried = FaceAligner(AlignConfig(size=150, retry_dark=True)).align(dark)
    missed = [i for i, d in enumerate(as_is) if d.crop is None]
    assert missed, "no image of the sample too dark for MTCNN: the test would show nothing"
    assert all(retried[i].crop is not None for i in missed)
    for i in missed:  # the crop is the dark photo's own pixels, placed where the stretched copy showed the face
        x0, y0, x1, y1 = retried[i].box
        assert abs((x0 + x1) / 2 - 125) < 30 and 60 < x1 - x0 < 160 and retried[i].crop.mean() < 40
    found = [i for i, d in enumerate(as_is) if d.crop is not None]
    assert all(np.array_equal(as_is[i].crop, retried[i].crop) for i in found)  # a face found as it is: unchanged
