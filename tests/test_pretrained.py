"""The default pretrained model: its recipe says what the committed LFW run measured, its checkpoint
is written once, and it verifies real photos with no other argument (CLI, Python API, service)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from PIL import Image

import backbone
import backbone.api
from backbone.cli import main
from backbone.data.errors import NoFaceError
from backbone.evaluation.pretrained import DEFAULT_MODEL, RECIPES, get_pretrained, pretrained_checkpoint, write_recipes
from backbone.evaluation.verification import Verifier
from backbone.models.build import read_checkpoint

from conftest import needs_dlib_models


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """Pretrained checkpoints, faces and embeddings in a fresh cache (not the project's)."""
    monkeypatch.setenv("BACKBONE_CACHE", str(tmp_path / "cache" / "faces"))
    backbone.api.verifier.cache_clear()
    yield tmp_path / "cache"
    backbone.api.verifier.cache_clear()


def test_the_recipe_says_what_the_committed_run_measured(tmp_path):
    """pretrained.json is what `make pretrained` writes from experiments/lfw/runs/dlib-as-is-tta:
    the threshold chosen on the validation pairs, and the accuracy on the held-out pairs."""
    write_recipes(tmp_path / "pretrained.json")
    assert json.loads((tmp_path / "pretrained.json").read_text()) == json.loads(RECIPES.read_text())
    recipe = get_pretrained()
    metrics = json.loads((backbone.paths.project_path(recipe.run) / "metrics.json").read_text())
    assert recipe.threshold == metrics["val_threshold"]["threshold"] and recipe.chosen_on == "files/lfw_val_pairs.tsv"
    assert (
        recipe.model["flip_average"] and recipe.model["tta_zoom"] == 0.9 and recipe.model["backbone"] == "dlib_resnet"
    )
    assert recipe.align["chip"] == "dlib" and recipe.align["retry_dark"]
    acc = metrics["at_val_threshold"]["accuracy"]
    assert recipe.test_accuracy == pytest.approx(acc, abs=1e-6) and recipe.test_pair_count == 1000
    assert recipe.test_accuracy_se == pytest.approx(np.sqrt(acc * (1 - acc) / 1000), abs=1e-6)
    with pytest.raises(ValueError, match="no pretrained model 'nope'; known: dlib-resnet, dlib-resnet-flip"):
        get_pretrained("nope")


@needs_dlib_models
def test_the_checkpoint_is_written_once_with_the_recipe(tmp_path):
    path = pretrained_checkpoint(directory=tmp_path)
    stamp = path.stat().st_mtime_ns
    assert pretrained_checkpoint(directory=tmp_path) == path and path.stat().st_mtime_ns == stamp
    ckpt = read_checkpoint(path)
    recipe = get_pretrained()
    assert ckpt["val_threshold"] == recipe.threshold and ckpt["train_config"]["data"]["align"] == recipe.align
    assert ckpt["pretrained"]["name"] == DEFAULT_MODEL and path.name.startswith(f"{DEFAULT_MODEL}-{recipe.digest()}")
    verifier = Verifier.from_checkpoint(path)
    assert verifier.threshold == recipe.threshold and verifier.description == recipe.summary()
    assert "as given" in Verifier.from_checkpoint(path, threshold=0.5).description


def lfw_photo(root, person: str, number: int):
    return root / "lfw-deepfunneled" / person / f"{person}_{number:04d}.jpg"


@needs_dlib_models
def test_verify_with_no_other_argument_on_lfw(lfw_root, own_cache, capsys):
    same = [lfw_photo(lfw_root, "George_W_Bush", 1), lfw_photo(lfw_root, "George_W_Bush", 2)]
    other = [lfw_photo(lfw_root, "George_W_Bush", 1), lfw_photo(lfw_root, "Colin_Powell", 1)]
    assert main(["verify", *map(str, same)]) == 0
    out = capsys.readouterr().out
    threshold = f"threshold {get_pretrained().threshold:.4f}"
    assert "SAME person" in out and "model dlib-resnet" in out and threshold in out and "one face" in out
    assert main(["verify", *map(str, other)]) == 0
    assert "DIFFERENT people" in capsys.readouterr().out
    assert backbone.verify(*same).is_same and not backbone.verify(*other).is_same
    assert list(own_cache.glob("pretrained/dlib-resnet-*.ckpt"))  # written where the cache is


@needs_dlib_models
def test_several_faces_say_which_was_used_and_none_says_why(lfw_root, own_cache, tmp_path):
    a, b = (Image.open(lfw_photo(lfw_root, p, 1)) for p in ("Tony_Blair", "Colin_Powell"))
    both = Image.new("RGB", (500, 250))
    both.paste(a, (0, 0))
    both.paste(b.resize((200, 200)), (280, 25))
    both.save(tmp_path / "two.jpg")
    verdict = backbone.verify(tmp_path / "two.jpg", lfw_photo(lfw_root, "Tony_Blair", 2))
    assert verdict.faces[0].faces == 2 and "2 faces found; used the largest nearest the centre" in verdict.text()
    assert verdict.is_same  # Tony Blair's face is the larger one
    Image.new("RGB", (200, 200), (128, 128, 128)).save(tmp_path / "wall.jpg")
    with pytest.raises(NoFaceError, match=r"no face found in .*wall\.jpg by mtcnn"):
        backbone.verify(tmp_path / "wall.jpg", tmp_path / "two.jpg")
    assert main(["verify", str(tmp_path / "wall.jpg"), str(tmp_path / "two.jpg")]) == 1


@needs_dlib_models
@pytest.mark.slow
def test_the_service_needs_no_model_argument(lfw_root, own_cache):
    from backbone.deploy.serving import ServiceProcess

    photos = [lfw_photo(lfw_root, "George_W_Bush", n) for n in (1, 2)] + [lfw_photo(lfw_root, "Colin_Powell", 1)]
    data = [p.read_bytes() for p in photos]
    env = {"BACKBONE_CACHE": str(own_cache / "faces")}
    threshold = get_pretrained().threshold
    with ServiceProcess(None, env=env) as server, httpx.Client(trust_env=False, timeout=60) as http:

        def verify(x: bytes, y: bytes) -> dict:
            files = {"image_a": ("a.jpg", x, "image/jpeg"), "image_b": ("b.jpg", y, "image/jpeg")}
            response = http.post(f"{server.url}/verify", files=files)
            assert response.status_code == 200, response.text
            return response.json()

        same, other = verify(data[0], data[1]), verify(data[0], data[2])
    assert same["verdict"] == "same" and other["verdict"] == "different"
    assert same["similarity"] == pytest.approx(backbone.verify(photos[0], photos[1]).score, abs=1e-4)
    assert "serving dlib-resnet-" in server.output and f"threshold {threshold:.4f} (validation)" in server.output
