"""One ``device`` setting (backbone.devices): what it accepts, what it refuses, and that every
inference path hands it to the model, its inputs and the face detector (the GPU check runs the
same paths on a real GPU: tests/test_gpu.py)."""

from __future__ import annotations

import pytest
import torch

import backbone.data.faces.cache as cache_module
import backbone.models.build as build_module
from backbone.cli import main
from backbone.devices import default_device, resolve_device
from backbone.evaluation.checkpoints import checkpoint_embeddings, evaluate_checkpoint
from backbone.evaluation.verification import Verifier
from backbone.explorer import open_source

from conftest import CUDA


def test_auto_is_the_default_device_and_names_are_checked():
    assert resolve_device("auto") == resolve_device(None) == default_device()
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("gpu0", "cuda:x", ""):
        with pytest.raises(ValueError, match="is not a device: use"):
            resolve_device(bad)


@pytest.mark.skipif(CUDA, reason="a machine with a GPU has CUDA")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="has no CUDA GPU"):
        resolve_device("cuda:0")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_gpu_that_is_not_there_says_how_many_there_are():
    with pytest.raises(ValueError, match="there are \\d+ CUDA GPUs"):
        resolve_device("cuda:99")


@pytest.fixture
def asked(monkeypatch) -> list:
    """Every device the model builder and the face cache are asked for; each then runs on the CPU."""
    calls: list = []

    def recorder(device="auto"):
        calls.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(build_module, "resolve_device", recorder)
    monkeypatch.setattr(cache_module, "resolve_device", recorder)
    return calls


def test_every_inference_path_takes_the_device_to_its_model(tiny_run, tiny_synth, asked):
    """evaluate, verify, the explorer and the teacher's embeddings each move their model (and the
    face cache its detector) to the device asked for (recorded); the model's parameters are then
    where it was moved."""
    from backbone.data import load_index

    ckpt, pairs = tiny_run / "best.ckpt", tiny_run.parent / "test.tsv"

    def devices_asked() -> set:
        found = set(asked)
        asked.clear()
        return found

    result = evaluate_checkpoint(ckpt, pairs, progress=False, device="cuda:3")
    assert devices_asked() == {"cuda:3"} and next(result.model.parameters()).device == torch.device("cpu")
    verifier = Verifier.from_checkpoint(ckpt, device="cuda:2")
    assert devices_asked() == {"cuda:2"} and verifier.device == torch.device("cpu") == verifier.aligner.device
    source = open_source(run=tiny_run, progress=False, device="cuda:1")
    assert devices_asked() == {"cuda:1"} and source.model is not None
    index = load_index(tiny_synth)
    paths = [r.path for r in index.records[:4]]
    embeddings = checkpoint_embeddings(ckpt, index, paths, tiny_run.parent / "cache", progress=False, device="cuda:4")
    assert devices_asked() == {"cuda:4"} and embeddings.shape == (4, 32)


def test_the_command_line_takes_a_device_and_says_where_it_ran(tiny_run, capsys):
    ckpt, pairs = tiny_run / "best.ckpt", tiny_run.parent / "test.tsv"
    out = tiny_run.parent / "device-metrics.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--pairs", str(pairs), "--out", str(out), "--device", "cpu",
                 "--no-progress"]) == 0  # fmt: skip
    assert "images now on cpu;" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(ckpt), "--pairs", str(pairs), "--out", str(out), "--device", "tpu",
                 "--no-progress"]) == 1  # fmt: skip
    assert "device 'tpu' is not a device" in capsys.readouterr().err


def test_the_parser_builds_without_the_heavy_stacks():
    """`backbone --help` and every command but `serve` work where FastAPI is missing, and building the
    parser imports none of PyTorch, scikit-learn, SciPy, matplotlib, seaborn or FastAPI: each command
    imports what it uses
    (benchmarks/cli_help.py times it)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['fastapi'] = None; from backbone.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', 'seaborn', 'fastapi', 'uvicorn') if sys.modules.get(m)))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
