"""A bounded load test of the verification service on 127.0.0.1: requests/s and p50/p95/p99
latency of ``POST /verify`` at concurrency 1, 4 and 16, with the ONNX Runtime backend and the
PyTorch one, against the raw model measured in the same run.

.venv/bin/python benchmarks/serve_load.py [--checkpoint CKPT] [--requests 400] [--limit 90] [--out docs/serve_load]

For each backend the script exports or opens the model, starts ``python -m backbone.deploy serve``
on a free port of 127.0.0.1, waits for ``/health``, sends a warm-up, then at each concurrency a
fixed number of ``/verify`` requests (``--requests``, pairs of the synthetic test set, from a
small async httpx client) and stops after ``--time-limit`` seconds whatever happens; then it
stops the server. The client runs on the same 2 cores as the server, as a caller on this machine would.

The goals, from the raw model timed in this run with the same engine (ONNX Runtime): throughput
at concurrency 16 at least 0.8 x (embeddings/s at batch 32) / 2, as a verify embeds two images;
and p95 latency at concurrency 1 at most 1.5 x the single-pair time (one forward pass of the
two crops). Writes ``OUT.json``, ``OUT.md`` (docs/serving.md's table) and ``OUT.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from timing import per_second, seconds_per_call

from backbone.atomic import atomic_write_json, atomic_write_text
from backbone.data import load_index, read_pairs
from backbone.data.images import decode_rgb
from backbone.deploy.export import export_model
from backbone.deploy.runtime import FaceModel, as_batch, load_engine
from backbone.deploy.serving import ServiceProcess
from backbone.paths import project_path, project_relative
from backbone.provenance import code_commit

CONCURRENCY = (1, 4, 16)
TWINS_CHECKPOINT = "experiments/twins/runs/marks-s0/best.ckpt"
DATA, PAIRS = "data/synthetic", "files/synthetic_test_pairs.tsv"


def pair_bytes(n: int) -> list[tuple[tuple[str, bytes], tuple[str, bytes]]]:
    """The files of the first ``n`` pairs of the synthetic test list, in memory."""
    index = load_index(project_path(DATA))
    pairs = read_pairs(project_path(PAIRS), root=index.root)[:n]
    read = {p: (index.root / p).read_bytes() for pair in pairs for p in (pair.path_a, pair.path_b)}
    return [((p.path_a, read[p.path_a]), (p.path_b, read[p.path_b])) for p in pairs]


def verify_request(pair) -> tuple[bytes, dict]:
    """The body and headers of one ``/verify`` (multipart, made once: the client's CPU is the server's too)."""
    (na, a), (nb, b) = pair
    request = httpx.Request(
        "POST", "http://x/verify", files={"image_a": (na, a, "image/png"), "image_b": (nb, b, "image/png")}
    )
    return request.read(), {"content-type": request.headers["content-type"]}


async def load(
    url: str, pairs: list, concurrency: int, requests: int, limit: float, server_pid: int | None = None
) -> dict:
    """``requests`` verifies from ``concurrency`` clients (stopping after ``limit`` seconds), and
    the CPU time the client and the server took meanwhile (in cores: 2 is all of this machine)."""
    import psutil

    server = psutil.Process(server_pid) if server_pid else None
    cpu = (time.process_time(), sum(server.cpu_times()[:2]) if server else 0.0)
    latencies: list[float] = []
    errors: list[str] = []
    todo = iter(range(requests))
    deadline = time.monotonic() + limit

    async def client(http: httpx.AsyncClient) -> None:
        for i in todo:
            if time.monotonic() > deadline:
                return
            body, headers = pairs[i % len(pairs)]
            start = time.perf_counter()
            try:
                response = await http.post(url + "/verify", content=body, headers=headers)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - start)

    before = httpx.get(url + "/version").json()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    client_cores = (time.process_time() - cpu[0]) / wall
    server_cores = (sum(server.cpu_times()[:2]) - cpu[1]) / wall if server else None
    after = httpx.get(url + "/version").json()
    return {"concurrency": concurrency, "images_per_forward": (after["embedded"] - before["embedded"]) / max(1, after["batches"] - before["batches"]), "requests": len(latencies), "seconds": round(wall, 2),
            "requests_per_s": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)),
            "client_cores": round(client_cores, 2), "server_cores": None if server_cores is None else round(server_cores, 2),
            "errors": len(errors), "first_errors": errors[:3], "stopped_by_time_limit": len(latencies) < requests}  # fmt: skip


def raw_model(onnx: Path, seconds: float) -> dict:
    """The model alone, with the engine the service uses: embeddings/s at batch 32, and the
    time of one pair (both crops in one forward pass)."""

    model = FaceModel(load_engine(onnx))
    batch = as_batch([model.face(decode_rgb(b, n), n).crop for pr in pair_bytes(16) for n, b in pr])
    return {"embeddings_per_s_batch32": per_second(lambda: model.engine.embed(batch), len(batch), seconds, 5),
            "single_pair_ms": 1000 * seconds_per_call(lambda: model.engine.embed(batch[:2]), seconds, 20)}  # fmt: skip


def plot(results: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    from backbone.plots import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for backend, rows in results["backends"].items():
        c = [r["concurrency"] for r in rows]
        left.plot(c, [r["requests_per_s"] for r in rows], "o-", label=backend)
        right.plot(c, [r["p95_ms"] for r in rows], "o-", label=f"{backend} p95")
        right.fill_between(c, [r["p50_ms"] for r in rows], [r["p99_ms"] for r in rows], alpha=0.15)
    raw = results["raw_model"]
    left.axhline(0.8 * raw["embeddings_per_s_batch32"] / 2, color="grey", ls="--", label="goal at 16: 0.8 x raw / 2")
    right.axhline(1.5 * raw["single_pair_ms"], color="grey", ls="--", label="goal at 1: 1.5 x single pair")
    for ax, title, unit in ((left, "throughput", "verifies/s"), (right, "latency (band: p50 to p99)", "ms")):
        ax.set(
            xscale="log",
            xticks=CONCURRENCY,
            xticklabels=CONCURRENCY,
            xlabel="concurrent clients",
            ylabel=unit,
            title=title,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is left else "upper left")
    right.set_yscale("log")
    fig.suptitle(f"POST /verify on 127.0.0.1, {results['model']} ({results['machine']['cores']} cores)", fontsize=10)
    save_figure(fig, out, formats=("png",), close=True)


def table(results: dict) -> str:
    raw = results["raw_model"]
    lines = [
        "| backend | clients | verifies/s | p50 ms | p95 ms | p99 ms | errors | images a forward pass | CPU cores: server, client |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, rows in results["backends"].items():
        lines += [f"| {backend} | {r['concurrency']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                  f"{r['p99_ms']:.1f} | {r['errors']} | {r['images_per_forward']:.1f} | {r['server_cores']:.2f}, {r['client_cores']:.2f} |" for r in rows]  # fmt: skip
    g = results["goals"]
    lines += ["", f"Raw model (ONNX Runtime, same run): {raw['embeddings_per_s_batch32']:.0f} embeddings/s at batch 32, "
              f"{raw['single_pair_ms']:.2f} ms a pair. Throughput at 16 clients (ONNX Runtime): {g['throughput_16']:.1f} "
              f"verifies/s against the goal of {g['throughput_goal']:.1f} ({'met' if g['throughput_met'] else 'not met'}); "
              f"p95 at 1 client: {g['p95_1']:.2f} ms against {g['p95_goal']:.2f} ({'met' if g['p95_met'] else 'not met'}). "
              f"Ratios: throughput {g['throughput_ratio']:.2f} x its goal (1 or more meets it), p95 "
              f"{g['p95_ratio']:.2f} x its goal (1 or less meets it)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=project_path(TWINS_CHECKPOINT),
                        help=f"the model (default {TWINS_CHECKPOINT}: `make twins`)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=400, help="requests at each concurrency")
    parser.add_argument("--time-limit", type=float, default=90, help="seconds at most at each concurrency")
    parser.add_argument("--seconds", type=float, default=5, help="timing of the raw model")
    parser.add_argument("--out", type=Path, default=project_path("docs/serve_load"))
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        sys.exit(f"{args.checkpoint} is missing: `make twins` trains it, or pass --checkpoint")
    pairs = [verify_request(pair) for pair in pair_bytes(200)]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / "model.onnx"
        export_model(args.checkpoint, "onnx", onnx)
        raw = raw_model(onnx, args.seconds)
        backends = {}
        for backend, model in (("ONNX Runtime", onnx), ("PyTorch", args.checkpoint)):
            with ServiceProcess(model, "--log-level", "warning") as server:
                asyncio.run(load(server.url, pairs, 4, 40, 60))  # warm-up
                backends[backend] = [asyncio.run(load(server.url, pairs, c, args.requests, args.time_limit, server.process.pid))
                                     for c in CONCURRENCY]  # fmt: skip
                print(f"{backend}: {[round(r['requests_per_s'], 1) for r in backends[backend]]} verifies/s", flush=True)
    onnx_rows = {r["concurrency"]: r for r in backends["ONNX Runtime"]}
    goals = {"throughput_16": onnx_rows[16]["requests_per_s"], "throughput_goal": 0.8 * raw["embeddings_per_s_batch32"] / 2,
             "p95_1": onnx_rows[1]["p95_ms"], "p95_goal": 1.5 * raw["single_pair_ms"]}  # fmt: skip
    goals["throughput_met"] = goals["throughput_16"] >= goals["throughput_goal"]
    goals["p95_met"] = goals["p95_1"] <= goals["p95_goal"]
    goals["throughput_ratio"] = goals["throughput_16"] / goals["throughput_goal"]
    goals["p95_ratio"] = goals["p95_1"] / goals["p95_goal"]
    import onnxruntime
    import torch

    results = {
        "model": project_relative(args.checkpoint),
        "raw_model": raw,
        "backends": backends,
        "goals": goals,
        "errors": sum(r["errors"] for rows in backends.values() for r in rows),
        "machine": {
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "commit": code_commit(),
            "date": time.strftime("%Y-%m-%d"),
        },  # fmt: skip
    }
    atomic_write_json(args.out.with_suffix(".json"), results)
    atomic_write_text(args.out.with_suffix(".md"), table(results))
    plot(results, args.out)
    print(table(results))
    print(json.dumps(goals, indent=1))


if __name__ == "__main__":
    main()
