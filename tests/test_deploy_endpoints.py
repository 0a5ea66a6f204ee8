"""The endpoints users of deepface's and CompreFace's APIs expect (issue 30): base64 JSON bodies beside
multipart, /verify/batch, /identify against a gallery, /model, and configuration by environment variables.
The same validation as the rest: every error a JSON 4xx naming its field."""

from __future__ import annotations

import base64
import json
import shutil

import httpx
import numpy as np
import pytest
import test_deploy_service as service_tests
import yaml
from fastapi.testclient import TestClient
from test_deploy_service import assert_error, encode, noise, pair

from backbone.deploy.service import ServiceSettings, create_app
from backbone.deploy.serving import ServiceProcess
from backbone.labels import SAME

from conftest import PROJECT


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """Three people of two photos each; each person's photos are one noise image and its copy shifted a little."""
    root = tmp_path_factory.mktemp("gallery")
    for k, person in enumerate(("ann", "bob", "cyd")):
        (root / person).mkdir()
        face = noise(64, seed=10 + k)
        (root / person / "1.png").write_bytes(encode(face))
        (root / person / "2.png").write_bytes(encode(np.roll(face, 1, axis=1)))
    return root


onnx_file, model = service_tests.onnx_file, service_tests.model  # the same fixtures: an exported centre-crop model


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def faces():
    return encode(noise(64, seed=1)), encode(noise(64, seed=2))


def test_json_bodies_with_base64_score_as_multipart_does(model, faces):
    a, b = faces
    with TestClient(create_app(model)) as client:
        multipart = client.post("/verify", files=pair(a, b)).json()
        as_json = client.post("/verify", json={"image_a": b64(a), "image_b": f"data:image/png;base64,{b64(b)}"}).json()
        embedded = client.post("/embed", json={"image": b64(a)}).json()
        assert as_json["similarity"] == pytest.approx(multipart["similarity"], abs=1e-6)
        assert embedded["dim"] == 16 and embedded["face"]["detector"] == "none"
        assert_error(client.post("/verify", json={"image_a": b64(a)}), 422, "missing-field", "image_b", "image_b")
        assert_error(client.post("/verify", json={"image_a": b64(a), "image_b": "not base64!"}), 400, "bad-base64",
                     "image_b", "not base64")  # fmt: skip
        assert_error(client.post("/verify", json={"image_a": 5, "image_b": b64(b)}), 422, "invalid-field", "image_a")
        assert_error(client.post("/verify", content=b"{not json", headers={"content-type": "application/json"}),
                     400, "bad-json")  # fmt: skip
        assert_error(client.post("/verify", json={"image_a": b64(b"junk"), "image_b": b64(b)}), 400,
                     "unreadable-image", "image_a")  # fmt: skip
        assert_error(client.post("/verify", content=b"x", headers={"content-type": "text/plain"}), 415,
                     "unsupported-media-type", None, "application/json")  # fmt: skip
        assert client.post("/verify", files=pair(a, b)).status_code == 200  # and it goes on serving


def test_a_batch_of_pairs_answers_each_in_order_with_errors_in_place(model, faces):
    a, b = faces
    pairs = [{"image_a": b64(a), "image_b": b64(a)}, {"image_a": b64(a), "image_b": b64(b"junk")},
             {"image_a": b64(a), "image_b": b64(b)}, {"image_a": b64(a)}]  # fmt: skip
    with TestClient(create_app(model, ServiceSettings(max_batch_pairs=4))) as client:
        single = client.post("/verify", files=pair(a, b)).json()
        batch = client.post("/verify/batch", json={"pairs": pairs}).json()
        assert batch["failed"] == 2 and len(batch["results"]) == 4
        same, junk, other, missing = batch["results"]
        assert same["same"] == SAME and same["similarity"] == pytest.approx(1.0, abs=1e-5)
        assert (junk["index"], junk["error"], junk["field"]) == (1, "unreadable-image", "pairs[1].image_b")
        assert other["similarity"] == pytest.approx(single["similarity"], abs=1e-6)
        assert (missing["index"], missing["error"], missing["field"]) == (3, "missing-field", "pairs[3].image_b")
        assert_error(client.post("/verify/batch", json={"pairs": pairs * 2}), 413, "too-many-pairs", "pairs", "4")
        assert_error(client.post("/verify/batch", json={"pairs": "no"}), 422, "invalid-field", "pairs")
        assert_error(client.post("/verify/batch", files=pair(a, b)), 415, "unsupported-media-type")


def test_identify_ranks_the_gallery_and_a_restart_embeds_nothing(model, gallery, tmp_path):
    probe = (gallery / "bob" / "1.png").read_bytes()
    (tmp_path / "gallery").mkdir()
    shutil.copytree(gallery, tmp_path / "gallery", dirs_exist_ok=True)
    (tmp_path / "gallery" / "cyd" / "broken.png").write_bytes(b"not an image")
    settings = ServiceSettings(gallery=str(tmp_path / "gallery"), gallery_cache=str(tmp_path / "cache"))
    with TestClient(create_app(model, settings)) as client:
        found = client.post("/identify?top=2", files={"image": ("p.png", probe, "image/png")}).json()
        by_json = client.post("/identify", json={"image": b64(probe)}).json()
    best = found["matches"][0]
    assert (best["person"], best["image"], best["same"]) == ("bob", "bob/1.png", SAME)
    assert best["score"] == pytest.approx(1.0, abs=1e-5) and found["matches"][1]["score"] < best["score"]
    assert len(found["matches"]) == 2 and len(by_json["matches"]) == 3
    assert found["gallery"] == {"people": 3, "images": 6, "skipped": 1, "embedded_at_start": 6}
    with TestClient(create_app(model, settings)) as client:  # a restart: every embedding from the cache
        again = client.post("/identify", files={"image": ("p.png", probe, "image/png")}).json()
    assert again["gallery"]["embedded_at_start"] == 0 and again["matches"] == by_json["matches"]
    with TestClient(create_app(model)) as client:
        assert_error(client.post("/identify", json={"image": b64(probe)}), 404, "no-gallery", None, "--gallery")


def test_model_says_what_is_served_and_no_path(model, onnx_file):
    with TestClient(create_app(model)) as client:
        info = client.get("/model").json()
    assert info["name"] == "m.onnx" and info["embedding_dim"] == 16 and info["distance"] == "cosine"
    assert info["threshold"] == 0.7 and "validation pairs" in info["threshold_chosen"]
    assert info["versions"]["served_by"] and info["versions"]["exported_with"]["torch"]
    assert info["alignment"]["detector"] == "none"
    assert str(onnx_file.parent) not in json.dumps(info)


def test_a_real_server_configured_by_environment_variables_answers_every_endpoint(onnx_file, faces, gallery):
    """On 127.0.0.1, started with no option at all: the model, gallery, threshold and limits come from the
    environment, as in a container."""
    a, b = faces
    probe = (gallery / "cyd" / "2.png").read_bytes()
    env = {"BACKBONE_MODEL": str(onnx_file), "BACKBONE_GALLERY": str(gallery), "BACKBONE_THRESHOLD": "0.25",
           "BACKBONE_MEMORY_MB": "300", "BACKBONE_MAX_BATCH_PAIRS": "2"}  # fmt: skip
    with ServiceProcess(None, env=env) as server, httpx.Client(trust_env=False, timeout=30) as http:
        health = http.get(f"{server.url}/health").json()
        model = http.get(f"{server.url}/model").json()
        verified = http.post(f"{server.url}/verify", json={"image_a": b64(a), "image_b": b64(b)}).json()
        pairs = [{"image_a": b64(a), "image_b": b64(b)}, {"image_a": b64(a), "image_b": b64(a)}]
        batch = http.post(f"{server.url}/verify/batch", json={"pairs": pairs}).json()
        too_many = http.post(f"{server.url}/verify/batch", json={"pairs": pairs * 2})
        found = http.post(f"{server.url}/identify", files={"image": ("p.png", probe, "image/png")}).json()
    assert health["memory_budget_mb"] == 300 and model["threshold"] == 0.25 and model["name"] == "m.onnx"
    assert verified["threshold"] == 0.25 and batch["failed"] == 0
    assert batch["results"][0]["similarity"] == pytest.approx(verified["similarity"], abs=1e-6)
    assert too_many.status_code == 413 and too_many.json()["error"] == "too-many-pairs"
    assert found["matches"][0]["person"] == "cyd" and found["gallery"]["people"] == 3


def test_the_compose_file_serves_a_mounted_model_folder_by_its_environment():
    compose = yaml.safe_load((PROJECT / "container" / "compose.yaml").read_text())
    service = compose["services"]["verify"]
    mounts = {m.split(":")[1]: m for m in service["volumes"]}
    assert service["environment"]["BACKBONE_MODEL"].startswith("/models/") and "/models" in mounts
    from backbone.deploy.serving import ENVIRONMENT

    assert set(service["environment"]) <= set(ENVIRONMENT.values()) | {"BACKBONE_API_KEY"}
