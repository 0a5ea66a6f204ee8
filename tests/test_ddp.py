"""Several processes: two CPU processes under torchrun (DDP on gloo) train one model.

Each process draws its own shard of the training pairs, both hold the same parameters after every
epoch, process 0 alone writes checkpoints, history and metrics and prints, and a resumed run ends
where an uninterrupted one does (``tests/ddp_run.py`` records what each process saw).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from backbone.data import generate_pairs, load_index, write_pairs

pytestmark = pytest.mark.slow  # three torchrun launches of two processes each, about a minute

HERE = Path(__file__).resolve().parent
STEPS, BATCH = 3, 8


def torchrun(config: dict, base: Path, name: str, stop_after: int | None = None) -> tuple[str, list[dict]]:
    """Launch 2 processes on this machine; their console output and each process's record
    (``stop_after``: both exit after that epoch, as if killed)."""
    logs = base / f"logs-{name}"
    logs.mkdir()
    path = base / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_run.py"), str(path), str(logs)] + ([str(stop_after)] if stop_after else [])  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if stop_after:
        assert done.returncode != 0 and not list(logs.iterdir()), done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout, []
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, [json.loads((logs / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def setup(tiny_synth, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    index = load_index(tiny_synth)
    write_pairs(generate_pairs(index, 120, seed=0, twin_share=0.0), base / "train.tsv")
    write_pairs(generate_pairs(index, 40, seed=1, twin_share=0.5), base / "val.tsv")

    def config(out: str, epochs: int) -> dict:
        return {
            "out_dir": str(base / out), "epochs": epochs, "batch_size": BATCH, "steps_per_epoch": STEPS, "seed": 0,
            "accelerator": "cpu", "devices": 2,
            "data": {"root": str(tiny_synth), "train_pairs": str(base / "train.tsv"), "val_pairs": str(base / "val.tsv"),
                     "test_pairs": str(base / "val.tsv"), "align": {"size": 64, "detector": "none"},
                     "cache": str(base / "cache"), "workers": 0},
            "model": {"input_size": 64, "embedding_dim": 32},
        }  # fmt: skip

    return base, config


def test_two_processes_share_the_data_agree_on_the_weights_and_one_writes(setup):
    base, config = setup
    out, (r0, r1) = torchrun(config("run", 1), base, "first")
    assert (r0["world_size"], r1["world_size"], r0["global_zero"], r1["global_zero"]) == (2, 2, True, False)
    # each process its own shard: STEPS batches of BATCH pairs, no pair drawn by both
    assert len(r0["drawn"]) == len(r1["drawn"]) == STEPS * BATCH
    assert not set(r0["drawn"]) & set(r1["drawn"])
    # the same parameters in both after the epoch (at each checkpoint save: best, then last)
    assert len(r0["digests"]) == 2 and r0["digests"] == r1["digests"]
    # one process reports and writes
    assert out.count("epoch 1/1:") == 1 and out.count("summary:") == 1
    run = base / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["best.ckpt", "config.yaml", "history.json", "last.ckpt", "metrics.json", "tensorboard", "test_scores.tsv"]
    )
    assert len(list((run / "tensorboard").rglob("events.out.tfevents.*"))) == 1
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and history[0]["images"] == 2 * STEPS * BATCH * 2  # two processes, two images a pair


def test_a_resumed_two_process_run_ends_where_an_uninterrupted_one_does(setup):
    base, config = setup
    torchrun(config("resumed", 2), base, "killed", stop_after=1)
    assert torch.load(base / "resumed" / "last.ckpt", weights_only=True)["epoch"] == 1
    out, (r0, r1) = torchrun(config("resumed", 2), base, "resumed")
    assert out.count("resuming") == 1 and r0["epochs_run"] == r1["epochs_run"] == 2
    _, (w0, w1) = torchrun(config("whole", 2), base, "whole")
    assert r0["digests"][-1] == r1["digests"][-1] == w0["digests"][-1] == w1["digests"][-1]
    resumed, whole = (json.loads((base / d / "history.json").read_text()) for d in ("resumed", "whole"))
    timing = ("images_per_s", "train_seconds", "train_minutes")
    assert [{k: v for k, v in h.items() if k not in timing} for h in resumed] == [
        {k: v for k, v in h.items() if k not in timing} for h in whole
    ]
