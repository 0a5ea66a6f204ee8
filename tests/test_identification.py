"""``backbone identify``: 1:N search of a gallery folder, its embeddings cached on disk."""

from __future__ import annotations

import shutil

import pytest

from backbone.cli import main
from backbone.data.errors import DataError
from backbone.evaluation.identification import identify
from backbone.evaluation.pretrained import pretrained_checkpoint
from backbone.evaluation.verification import Verifier
from backbone.labels import SAME
from backbone.models.build import load_model, save_model

from conftest import needs_dlib_models

PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder"]


def gallery_of(root, people, photos, out):
    """``out/<person>/`` holding each person's photos numbered ``photos`` (copies)."""
    for person in people:
        (out / person).mkdir(parents=True)
        for n in photos:
            name = f"{person}_{n:04d}"
            source = next(root.glob(f"{person}/{name}.*"))
            shutil.copy(source, out / person / source.name)
    return out


@needs_dlib_models
def test_identify_ranks_the_right_person_first_on_lfw(lfw_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BACKBONE_CACHE", str(tmp_path / "cache" / "faces"))
    photos = lfw_root / "lfw-deepfunneled"
    gallery = gallery_of(photos, PEOPLE, (2, 3, 4), tmp_path / "gallery")
    verifier = Verifier.pretrained()
    for person in PEOPLE:
        found = identify(verifier, photos / person / f"{person}_0001.jpg", gallery, top_k=3, progress=False)
        assert found.best is not None and found.best.person == person, found.text()
        assert len(found.matches) == 3 and found.matches[1].score <= found.matches[0].score
    assert found.embedded == 0 and found.images == 15 and found.people == 5  # the first search embedded them
    stranger = identify(verifier, photos / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg", gallery, progress=False)
    assert stranger.best is None and "nobody in the gallery reaches the threshold" in stranger.text()
    assert main(["identify", str(photos / "Tony_Blair" / "Tony_Blair_0005.jpg"), str(gallery), "--top", "2",
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "most like Tony_Blair" in out and "1. Tony_Blair" in out and "0 embedded now, 15 from the cache" in out


@needs_dlib_models
def test_identify_on_synthetic_faces_and_a_growing_gallery(tiny_synth, tmp_path):
    """dlib's network on centre crops (the synthetic photos are aligned already): each singleton's
    fourth photo finds its person among the singletons' first three photos; a person added to the
    gallery is embedded alone."""
    model, config, ckpt = load_model(pretrained_checkpoint(directory=tmp_path / "pretrained"))
    ckpt["train_config"]["data"]["align"] = {"size": 64, "detector": "none"}
    save_model(model, config, tmp_path / "crops.ckpt", {"train_config": ckpt["train_config"], "val_threshold": 0.9})
    verifier = Verifier.from_checkpoint(tmp_path / "crops.ckpt")
    people = sorted(p.name for p in tiny_synth.iterdir() if p.name.startswith("solo"))
    gallery = tmp_path / "gallery"
    for person in people[:-1]:
        (gallery / person).mkdir(parents=True)
        for n in (1, 2, 3):
            shutil.copy(tiny_synth / person / f"{person}_{n:04d}.png", gallery / person)
    cache = tmp_path / "cache" / "faces"
    for person in people[:-1]:
        found = identify(verifier, tiny_synth / person / f"{person}_0004.png", gallery, cache=cache, progress=False)
        assert found.matches[0].person == person, found.text()
    shutil.copytree(tiny_synth / people[-1], gallery / people[-1])
    found = identify(verifier, tiny_synth / people[-1] / f"{people[-1]}_0004.png", gallery, cache=cache, progress=False)
    assert found.embedded == 4 and found.matches[0].person == people[-1] and found.matches[0].same == SAME


def test_a_gallery_photo_without_a_face_is_named(lfw_root, tmp_path, monkeypatch):
    from PIL import Image

    from backbone.data.errors import NoFaceError
    from backbone.data.faces.align import AlignConfig
    from backbone.models.build import ModelConfig, build_model

    config = ModelConfig(embedding_dim=16, input_size=64)  # untrained: only the faces matter here
    save_model(build_model(config).eval(), config, tmp_path / "m.ckpt",
               {"train_config": {"data": {"align": AlignConfig(size=64).__dict__}}})  # fmt: skip
    gallery = gallery_of(lfw_root / "lfw-deepfunneled", PEOPLE[:1], (2,), tmp_path / "gallery")
    (gallery / "wall").mkdir()
    Image.new("RGB", (120, 120), (128, 128, 128)).save(gallery / "wall" / "grey.png")
    verifier = Verifier.from_checkpoint(tmp_path / "m.ckpt")
    probe = lfw_root / "lfw-deepfunneled" / PEOPLE[0] / f"{PEOPLE[0]}_0001.jpg"
    cache = tmp_path / "cache" / "faces"
    with pytest.raises(NoFaceError, match=r"1 photos without a face(.|\n)*--no-face fallback(.|\n)*wall/grey\.png"):
        identify(verifier, probe, gallery, cache=cache, progress=False)
    found = identify(verifier, probe, gallery, cache=cache, policy="fallback", progress=False)
    assert {m.person for m in found.matches} == {PEOPLE[0], "wall"}
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        identify(verifier, probe, gallery, top_k=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        identify(verifier, probe, tmp_path / "empty")
