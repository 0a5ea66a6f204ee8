"""The verification service (backbone.deploy.service) through FastAPI's test client: every endpoint,
every refusal as a JSON error, and the service still serving after each."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from backbone.data.errors import NoFaceError
from backbone.data.faces.quality import face_quality
from backbone.data.images import decode_rgb, load_rgb
from backbone.deploy.export import export_model
from backbone.deploy.runtime import Engine, FaceModel, file_sha256, load_engine
from backbone.deploy.service import ServiceSettings, create_app
from backbone.labels import DIFFERENT, SAME
from backbone.models.build import ModelConfig, build_model, save_model

KEY = "k3y-for-the-tests-0c4f9e"


def make_checkpoint(path: Path, align: dict, **extra) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(input_size=64, embedding_dim=16)
    save_model(build_model(config, load_pretrained=False).eval(), config, path,
               extra={"train_config": {"data": {"align": align}}, **extra})  # fmt: skip
    return path


def encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def noise(size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


GREY = encode(np.full((120, 160, 3), 128, np.uint8))


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    """An exported ONNX model: centre crops at 64 px, validation threshold 0.7."""
    base = tmp_path_factory.mktemp("service")
    ckpt = make_checkpoint(base / "m.ckpt", {"size": 64, "detector": "none"}, val_threshold=0.7)
    export_model(ckpt, "onnx", base / "m.onnx")
    return base / "m.onnx"


@pytest.fixture(scope="module")
def model(onnx_file) -> FaceModel:
    return FaceModel(load_engine(onnx_file))


@pytest.fixture(scope="module")
def mtcnn_model(tmp_path_factory) -> FaceModel:
    """A checkpoint aligned by MTCNN, as trained on photos."""
    ckpt = make_checkpoint(tmp_path_factory.mktemp("mtcnn") / "mtcnn.ckpt", {"size": 64, "detector": "mtcnn"})
    return FaceModel(load_engine(ckpt))


@pytest.fixture(scope="module")
def faces(tiny_synth) -> list[bytes]:
    """Two face images of different people, as PNG bytes."""
    return [(tiny_synth / person / f"{person}_0001.png").read_bytes() for person in ("twin000a", "solo000")]


@pytest.fixture(scope="module")
def detected(tiny_synth, mtcnn_model) -> bytes:
    """A synthetic face that MTCNN finds."""
    for path in sorted(tiny_synth.glob("*/*.png")):
        try:
            mtcnn_model.face(load_rgb(path), path.name)
        except NoFaceError:
            continue
        return path.read_bytes()
    pytest.fail("MTCNN finds no face in the synthetic set")


def serve(model: FaceModel, **settings) -> TestClient:
    return TestClient(create_app(model, ServiceSettings(**settings)))


def pair(a: bytes, b: bytes, kind_a: str = "image/png", kind_b: str = "image/png") -> dict:
    return {"image_a": ("a.png", a, kind_a), "image_b": ("b.png", b, kind_b)}


def assert_error(response, status: int, code: str, field: str | None = None, says: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["error"], body["field"]) == (code, field) and says in body["message"]
    return body


def assert_still_serving(client: TestClient, a: bytes, b: bytes, headers: dict | None = None) -> None:
    response = client.post("/verify", files=pair(a, b), headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["faces"]) == 2


def test_health(model):
    with serve(model) as client:
        health = client.get("/health").json()
    expected = "cuda:0" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    assert health == {"status": "ok", "backend": "onnxruntime", "device": expected,  # a GPU when ONNX Runtime has one
                      "memory_budget_mb": 1024, "memory_in_use_mb": 0, "waiting_for_memory": 0, "max_side": 1600}  # fmt: skip


def test_version_names_the_model_its_threshold_and_backend(model, onnx_file, faces):
    with serve(model) as client:
        before = client.get("/version").json()
        client.post("/verify", files=pair(*faces))
        after = client.get("/version").json()
    assert before["model"]["file"] == "m.onnx" and before["model"]["format"] == "onnx"
    assert before["model"]["backend"] == "onnxruntime" and before["model"]["sha256"] == file_sha256(onnx_file)
    assert (before["threshold"], before["threshold_source"]) == (0.7, "validation")
    assert before["model"]["alignment"]["detector"] == "none" and before["model"]["embedding_dim"] == 16
    assert after["embedded"] == before["embedded"] + 2 and after["batches"] == before["batches"] + 1
    # issue 30, defect J: the checkpoint lay outside the project (a temporary folder): only its name is said,
    # in the response and in the sidecar that travels with the model
    assert before["model"]["checkpoint"] == {"name": "m.ckpt", "sha256": file_sha256(onnx_file.with_suffix(".ckpt"))}
    assert str(onnx_file.parent) not in json.dumps(before)
    sidecar = onnx_file.with_name("m.onnx.json").read_text()
    assert str(onnx_file.parent) not in sidecar and json.loads(sidecar)["checkpoint"]["path"] == "m.ckpt"


def test_verify_scores_as_the_model_does(model, faces):
    with serve(model) as client:
        response = client.post("/verify", files=pair(*faces))
    assert response.status_code == 200, response.text
    result = response.json()
    a, b = (model.face(decode_rgb(data, "x"), "x") for data in faces)
    want = model.score(model.embed([a.crop]), model.embed([b.crop]))[0]
    assert result["similarity"] == pytest.approx(want, abs=1e-5) and result["threshold"] == 0.7
    assert result["same"] == (SAME if result["similarity"] >= 0.7 else DIFFERENT)
    assert result["verdict"] == {SAME: "same", DIFFERENT: "different"}[result["same"]]
    assert [{k: f[k] for k in ("box", "detector", "prob")} for f in result["faces"]] == [
        {"box": [0.0, 0.0, 64.0, 64.0], "detector": "none", "prob": None}
    ] * 2
    assert [f["quality"] for f in result["faces"]] == [face_quality(x.crop).as_dict() for x in (a, b)]
    assert result["trusted"] is True


def test_verify_says_a_dark_face_is_not_to_be_trusted(model, faces):
    dark = np.asarray(decode_rgb(faces[1], "b")).astype(np.float32) * 0.15  # a synthetic face, underexposed
    buffer = io.BytesIO()
    Image.fromarray(dark.round().astype(np.uint8)).save(buffer, format="PNG")
    with serve(model) as client:
        result = client.post("/verify", files=pair(faces[0], buffer.getvalue())).json()
    assert result["trusted"] is False and result["faces"][0]["quality"]["ok"] is True
    (problem,) = result["faces"][1]["quality"]["problems"]
    assert problem.startswith("too dark: mean brightness") and "(under 40)" in problem


def test_verify_says_same_at_the_threshold_and_different_above_it(model, faces):
    with serve(model) as client:
        similarity = client.post("/verify", files=pair(*faces)).json()["similarity"]
    just_above = float(np.nextafter(similarity, 2.0))
    for threshold, same, verdict in [(similarity, SAME, "same"), (just_above, DIFFERENT, "different")]:
        with serve(FaceModel(model.engine, threshold=threshold)) as client:
            result = client.post("/verify", files=pair(*faces)).json()
        assert (result["similarity"], result["same"], result["verdict"]) == (similarity, same, verdict)


def test_the_same_image_twice_is_the_same_person(model, faces):
    with serve(model) as client:
        result = client.post("/verify", files=pair(faces[0], faces[0])).json()
    assert result["similarity"] == pytest.approx(1.0, abs=1e-5) and result["verdict"] == "same"


def test_embed_gives_a_unit_embedding_of_the_models_dimension(model, faces):
    with serve(model) as client:
        response = client.post("/embed", files={"image": ("a.png", faces[0], "image/png")})
    assert response.status_code == 200, response.text
    result = response.json()
    embedding = np.array(result["embedding"])
    assert result["dim"] == len(embedding) == 16 and np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    want = model.embed([model.face(decode_rgb(faces[0], "x"), "x").crop])[0]
    assert np.abs(embedding - want).max() < 1e-5
    assert {k: result["face"][k] for k in ("box", "detector", "prob")} == {
        "box": [0.0, 0.0, 64.0, 64.0],
        "detector": "none",
        "prob": None,
    }
    assert result["face"]["quality"]["face_px"] is None


def test_octet_stream_parts_are_accepted(model, faces):
    """curl -F sends a part without a known extension as application/octet-stream."""
    with serve(model) as client:
        response = client.post("/verify", files=pair(*faces, "application/octet-stream", "image/jpeg"))
    assert response.status_code == 200, response.text


def test_docs_and_openapi_are_reachable(model):
    with serve(model) as client:
        docs, schema = client.get("/docs"), client.get("/openapi.json")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {"/verify", "/embed", "/health", "/version"} <= set(schema.json()["paths"])


TRUNCATED_JPEG = encode(noise(), "JPEG")[:400]
TRUNCATED_PNG = encode(noise())[:6000]


@pytest.mark.parametrize(
    "part, status, code, says",
    [
        (("a.jpg", b"hello, I am not a picture", "image/jpeg"), 400, "unreadable-image", "a.jpg"),
        (("a.jpg", TRUNCATED_JPEG, "image/jpeg"), 400, "unreadable-image", "a.jpg"),
        (("a.png", TRUNCATED_PNG, "image/png"), 400, "unreadable-image", "a.png"),
        (("a.png", b"", "image/png"), 400, "unreadable-image", "zero-byte"),
        (("a.png", b"plain words", "text/plain"), 415, "unsupported-media-type", "text/plain"),
    ],
    ids=["not-an-image", "truncated-jpeg", "truncated-png", "empty", "text-part"],
)
def test_a_bad_image_is_refused_naming_its_field_and_the_service_goes_on(model, faces, part, status, code, says):
    with serve(model) as client:
        response = client.post("/verify", files={"image_a": part, "image_b": ("b.png", faces[1], "image/png")})
        body = assert_error(response, status, code, "image_a", says)
        assert "image_a" in body["message"]
        assert_still_serving(client, *faces)


def test_an_image_without_a_face_is_refused_for_an_mtcnn_model(mtcnn_model, detected):
    with serve(mtcnn_model) as client:
        assert_error(client.post("/embed", files={"image": ("wall.png", GREY, "image/png")}),
                     422, "no-face", "image", "no face found in image (wall.png) by mtcnn")  # fmt: skip
        assert_error(client.post("/verify", files=pair(detected, GREY)), 422, "no-face", "image_b")
        assert_still_serving(client, detected, detected)


def test_an_image_without_a_face_is_its_centre_under_the_fallback_policy(mtcnn_model, detected):
    fallback = FaceModel(mtcnn_model.engine, no_face="fallback")
    with serve(fallback) as client:
        result = client.post("/verify", files=pair(detected, GREY)).json()
    assert [f["detector"] for f in result["faces"]] == ["mtcnn", "fallback"]
    assert result["faces"][1]["box"] == [20.0, 0.0, 140.0, 120.0]


def bomb(side: int) -> bytes:
    """A ``side`` x ``side`` PNG of one colour: tens of kB on the wire, hundreds of MB decoded."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, "PNG")
    return buf.getvalue()


# 64 megapixels: over the service's limit (40); 400: over Pillow's own too, refused as the file opens
@pytest.mark.parametrize("side, says", [(8000, "8000x8000 is 64 megapixels"), (20000, "400 megapixels")])
def test_a_decompression_bomb_is_refused_before_it_is_decoded(model, faces, side, says):
    data = bomb(side)
    assert len(data) < 100_000
    with serve(model) as client:
        response = client.post("/verify", files=pair(faces[0], data))
        assert_error(response, 413, "image-too-large", "image_b", says)
        assert_still_serving(client, *faces)


def test_an_image_over_the_pixel_limit_is_refused(model, faces, monkeypatch):
    monkeypatch.setenv("BACKBONE_MAX_IMAGE_PIXELS", "4000")  # a 64 x 64 face has 4096
    with serve(model) as client:
        assert_error(client.post("/verify", files=pair(*faces)), 413, "image-too-large", "image_a", "BACKBONE_MAX_IMAGE_PIXELS")  # fmt: skip
        monkeypatch.delenv("BACKBONE_MAX_IMAGE_PIXELS")
        assert_still_serving(client, *faces)


def test_an_upload_over_the_size_limit_is_refused(model, faces):
    big = encode(noise(96))  # ~27 kB of incompressible pixels
    assert len(big) > 20_000 > max(len(f) for f in faces)
    with serve(model, max_upload_bytes=20_000) as client:
        assert_error(client.post("/verify", files=pair(big, faces[1])), 413, "upload-too-large", "image_a", "image_a")
        assert_still_serving(client, *faces)


def test_a_request_body_over_its_limit_is_a_json_error(model, faces):
    with serve(model, max_upload_bytes=20_000) as client:
        # each part under the per-file limit, the whole body over 2 x 20 kB + 64 kB
        response = client.post("/verify", files=pair(*faces), data={"padding": "x" * 200_000})
        assert_error(response, 413, "upload-too-large", None, "request body")
        assert_still_serving(client, *faces)


def test_a_request_body_over_its_limit_is_refused_with_413(model, faces):
    with serve(model, max_upload_bytes=20_000) as client:
        response = client.post("/verify", files=pair(*faces), data={"padding": "x" * 200_000})
        assert response.status_code == 413
        assert_still_serving(client, *faces)


def test_a_request_that_is_neither_multipart_nor_json_is_refused_and_a_path_is_never_read(model, faces):
    with serve(model) as client:
        form = {"data": {"image_a": "a.png", "image_b": "b.png"}}
        assert_error(client.post("/verify", **form), 415, "unsupported-media-type", None, "application/x-www-form-urlencoded")  # fmt: skip
        paths = {"json": {"image_a": "a.png", "image_b": "b.png"}}  # file names where images belong: not base64
        assert_error(client.post("/verify", **paths), 400, "bad-base64", "image_a", "not base64")
        assert_still_serving(client, *faces)


def test_a_missing_field_is_named(model, faces):
    with serve(model) as client:
        response = client.post("/verify", files={"image_a": ("a.png", faces[0], "image/png")})
        assert_error(response, 422, "missing-field", "image_b", "missing field 'image_b'")
        assert_error(client.post("/embed", files={"picture": ("a.png", faces[0], "image/png")}),
                     422, "missing-field", "image")  # fmt: skip
        assert_still_serving(client, *faces)


def test_unknown_paths_and_methods_are_json_errors(model):
    with serve(model) as client:
        assert_error(client.get("/nowhere"), 404, "not-found")
        assert_error(client.get("/verify"), 405, "method-not-allowed")


class Flaky(Engine):
    """An engine that fails while ``broken`` is set."""

    backend = "flaky"

    def __init__(self, engine: Engine):
        super().__init__(engine.sidecar, engine.source)
        self.engine, self.broken = engine, True

    def embed(self, faces):
        if self.broken:
            raise RuntimeError("out of memory, say")
        return self.engine.embed(faces)


def test_a_failing_model_is_a_500_json_error_and_the_service_recovers(model, faces):
    engine = Flaky(model.engine)
    with TestClient(create_app(FaceModel(engine)), raise_server_exceptions=False) as client:
        assert_error(client.post("/verify", files=pair(*faces)), 500, "internal-error", None, "RuntimeError")
        engine.broken = False
        assert_still_serving(client, *faces)


def test_the_api_key_is_required_except_for_health_and_docs(model, faces):
    right, wrong = {"X-API-Key": KEY}, {"X-API-Key": "guess"}
    with serve(model, api_key=KEY) as client:
        for headers in (None, wrong):
            assert_error(client.post("/verify", files=pair(*faces), headers=headers), 401, "unauthorized")
            assert_error(client.post("/embed", files={"image": ("a.png", faces[0], "image/png")}, headers=headers),
                         401, "unauthorized")  # fmt: skip
            assert_error(client.get("/version", headers=headers), 401, "unauthorized", None, "X-API-Key")
        assert client.get("/health").status_code == 200
        assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200
        assert client.get("/version", headers=right).status_code == 200
        assert_still_serving(client, *faces, headers=right)


def test_the_api_key_is_in_no_log_record_and_no_response(model, faces, caplog):
    caplog.set_level(logging.DEBUG)
    right = {"X-API-Key": KEY}
    responses = []
    with serve(model, api_key=KEY) as client:
        responses.append(client.post("/verify", files=pair(*faces), headers=right))
        responses.append(client.post("/verify", files=pair(b"junk", faces[1]), headers=right))
        responses.append(client.post("/verify", files=pair(*faces), headers={"X-API-Key": KEY[:-1]}))
        responses.append(client.post("/embed", files={"image": ("a.png", faces[0], "image/png")}, headers=right))
        responses += [client.get(path, headers=right) for path in ("/version", "/health", "/openapi.json", "/nope")]
    assert [r.status_code for r in responses] == [200, 400, 401, 200, 200, 200, 200, 404]
    assert caplog.records  # the refusals are logged
    for record in caplog.records:
        assert KEY not in record.getMessage() and KEY not in (record.exc_text or "")
    for response in responses:
        assert KEY not in response.text and KEY not in str(response.headers)
    assert KEY not in repr(ServiceSettings(api_key=KEY))


# ---- the memory budget and the working size (issue 30, defect K)


def test_the_memory_budget_lets_in_at_most_what_it_holds():
    import asyncio

    from backbone.deploy.service import MemoryBudget

    budget, inside, most = MemoryBudget(100), 0, 0

    async def one(cost):
        nonlocal inside, most
        async with budget.hold(cost, "image"):
            inside += cost
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= cost

    async def many():
        await asyncio.gather(*(one(cost) for cost in [60, 30, 30, 60, 10, 100, 40] * 3))

    asyncio.run(many())
    assert most == 100 and budget.used == 0 and budget.waiting == 0


def test_an_image_alone_over_the_memory_budget_is_refused_naming_its_field(model):
    big = encode(np.zeros((600, 600, 3), np.uint8))  # about 8 x 0.36 + 64 x 0.36 = 26 MB to decode and align
    with serve(model, memory_budget_bytes=10 << 20) as client:
        assert_error(client.post("/verify", files=pair(big, big)), 413, "image-too-large", "image_a", "memory budget of 10 MB")  # fmt: skip
        assert client.get("/health").json()["memory_in_use_mb"] == 0  # nothing held after a refusal


def test_a_large_image_is_aligned_at_the_working_size_and_its_face_box_given_in_its_own_pixels(model):
    from PIL import Image as PILImage

    small = noise(64, seed=3)
    large = np.asarray(PILImage.fromarray(small).resize((256, 256), PILImage.Resampling.NEAREST))
    with serve(model, max_side=64) as client:
        a = client.post("/verify", files=pair(encode(large), encode(small))).json()
    assert a["faces"][0]["box"] == [0.0, 0.0, 256.0, 256.0] and a["faces"][1]["box"] == [0.0, 0.0, 64.0, 64.0]
    assert a["similarity"] > 0.99  # decoded at 64 px, the large copy is the small image again
