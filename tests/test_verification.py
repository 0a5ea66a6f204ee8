import pytest
import torch
from PIL import Image

from backbone.data.errors import ImageReadError
from backbone.data.faces.align import AlignConfig
from backbone.data.faces.cache import NoFaceError
from backbone.evaluation.verification import Verifier
from backbone.labels import DIFFERENT, SAME
from backbone.models import ModelConfig, build_model, save_model


def checkpoint(path, align: AlignConfig):
    torch.manual_seed(0)
    config = ModelConfig(embedding_dim=16, input_size=64)
    save_model(build_model(config).eval(), config, path, extra={"train_config": {"data": {"align": align.__dict__}}})
    return path


def test_verify_two_images(tiny_synth, tmp_path):
    verifier = Verifier.from_checkpoint(checkpoint(tmp_path / "m.ckpt", AlignConfig(size=64, detector="none")))
    a = tiny_synth / "twin000a" / "twin000a_0001.png"
    verdict = verifier.verify(a, a)
    assert verdict.score == pytest.approx(1.0, abs=1e-5) and verdict.same == SAME and "SAME person" in verdict.text()
    low = Verifier.from_checkpoint(tmp_path / "m.ckpt", threshold=1.1).verify(a, a)
    assert low.same == DIFFERENT and low.threshold == 1.1


def test_no_face_and_unreadable_images_are_clear_errors(tmp_path):
    verifier = Verifier.from_checkpoint(checkpoint(tmp_path / "m.ckpt", AlignConfig(size=64, margin=6)))
    Image.new("RGB", (120, 120), (128, 128, 128)).save(tmp_path / "wall.png")
    with pytest.raises(NoFaceError, match="no face found in .*wall.png"):
        verifier.verify(tmp_path / "wall.png", tmp_path / "wall.png")
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        verifier.verify(tmp_path / "bad.jpg", tmp_path / "wall.png")
