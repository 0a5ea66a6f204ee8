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


def test_a_checkpoint_brings_the_threshold_its_run_chose_on_validation(tiny_synth, tmp_path):
    """``backbone verify``, ``evaluate`` and the explorer use a training run's validation threshold
    (saved in its checkpoints) instead of the fixed 0.6, unless a threshold is given."""
    from backbone.data import generate_pairs, load_index, write_pairs
    from backbone.evaluation.checkpoints import evaluate_checkpoint
    from backbone.evaluation.metrics import confusion_at

    path = tmp_path / "m.ckpt"
    torch.manual_seed(0)
    config = ModelConfig(embedding_dim=16, input_size=64)
    align = AlignConfig(size=64, detector="none")
    train_config = {"data": {"align": align.__dict__, "root": str(tiny_synth), "cache": str(tmp_path / "cache")}}
    save_model(build_model(config).eval(), config, path, extra={"train_config": train_config, "val_threshold": 0.93})
    assert Verifier.from_checkpoint(path).threshold == 0.93
    assert Verifier.from_checkpoint(path, threshold=0.5).threshold == 0.5
    write_pairs(generate_pairs(load_index(tiny_synth), 40, seed=0), tmp_path / "pairs.tsv")
    result = evaluate_checkpoint(path, tmp_path / "pairs.tsv", progress=False)
    m = result.evaluation.metrics
    labels = [p.same for p in result.pairs]
    assert m["at_threshold"]["threshold"] == 0.6 and m["val_threshold"]["threshold"] == 0.93
    assert m["at_val_threshold"] == confusion_at(result.evaluation.scores, labels, 0.93)
