"""The real server: ``python -m backbone.deploy serve`` on an exported ONNX model, over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

from backbone.deploy.export import export_model
from backbone.models.build import ModelConfig, build_model, save_model

from conftest import PROJECT

KEY = "served-k3y-7d1e0b5a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(http: httpx.Client, url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode} before it answered")
        try:
            if http.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not answer /health within {timeout:g} s")


def test_served_model_verifies_over_http_and_keeps_its_key_secret(tmp_path, tiny_synth):
    torch.manual_seed(0)
    config = ModelConfig(input_size=64, embedding_dim=16)
    save_model(build_model(config, load_pretrained=False).eval(), config, tmp_path / "m.ckpt",
               extra={"val_threshold": 0.7, "train_config": {"data": {"align": {"size": 64, "detector": "none"}}}})  # fmt: skip
    export_model(tmp_path / "m.ckpt", "onnx", tmp_path / "m.onnx")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    argv = [sys.executable, "-m", "backbone.deploy", "serve", "--model", str(tmp_path / "m.onnx"),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "debug"]  # fmt: skip
    env = {**os.environ, "BACKBONE_API_KEY": KEY}
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT, env=env)
    try:
        with httpx.Client(trust_env=False, timeout=30) as http:  # no proxy between us and 127.0.0.1
            wait_until_up(http, url, server)
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
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    output = log.read_text(errors="replace")
    assert "serving m.onnx (onnxruntime), threshold 0.7000 (validation), API key required" in output
    assert "POST /verify" in output  # the access log ran, at debug level
    assert KEY not in output
