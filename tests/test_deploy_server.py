"""The real server: ``python -m backbone.deploy serve`` on an exported ONNX model, over HTTP."""

from __future__ import annotations

import re

import httpx
import pytest
import torch

from backbone.deploy.export import export_model
from backbone.deploy.serving import ServiceProcess
from backbone.models.build import ModelConfig, build_model, save_model

KEY = "served-k3y-7d1e0b5a"


def test_served_model_verifies_over_http_and_keeps_its_key_secret(tmp_path, tiny_synth):
    torch.manual_seed(0)
    config = ModelConfig(input_size=64, embedding_dim=16)
    save_model(build_model(config, load_pretrained=False).eval(), config, tmp_path / "m.ckpt",
               extra={"val_threshold": 0.7, "train_config": {"data": {"align": {"size": 64, "detector": "none"}}}})  # fmt: skip
    export_model(tmp_path / "m.ckpt", "onnx", tmp_path / "m.onnx")
    with ServiceProcess(tmp_path / "m.onnx", "--log-level", "debug", env={"BACKBONE_API_KEY": KEY}) as server:
        with httpx.Client(trust_env=False, timeout=30) as http:  # no proxy between us and 127.0.0.1
            url = server.url
            images = [(tiny_synth / p / f"{p}_0001.png").read_bytes() for p in ("twin000a", "twin000b")]
            files = {"image_a": ("a.png", images[0], "image/png"), "image_b": ("b.png", images[1], "image/png")}
            verified = http.post(f"{url}/verify", files=files, headers={"X-API-Key": KEY})
            assert verified.status_code == 200, verified.text
            result = verified.json()
            assert result["threshold"] == 0.7 and -1 <= result["similarity"] <= 1 and len(result["faces"]) == 2
            version = http.get(f"{url}/version", headers={"X-API-Key": KEY}).json()
            assert version["model"]["file"] == "m.onnx" and version["model"]["backend"] == "onnxruntime"
            assert version["embedded"] == 2
            refused = http.post(f"{url}/verify", files=files)
            assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    output = server.output
    assert re.search(
        r"serving m\.onnx \(onnxruntime on (cpu|cuda:0)\), threshold 0\.7000 \(validation\), API key required", output
    )
    assert "POST /verify" in output  # the access log ran, at debug level
    assert KEY not in output


def test_a_service_that_does_not_start_says_why(tmp_path):
    with pytest.raises(RuntimeError, match=r"did not answer /health \(exit code 1\)(.|\n)*no such model file"):
        with ServiceProcess(tmp_path / "missing.onnx"):
            pytest.fail("a service without its model answered /health")
