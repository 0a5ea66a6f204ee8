"""``make gpu-check``: the workbook on a CUDA GPU in one command, with one Markdown report.

    python3 benchmarks/gpu_check.py [--out build/gpu-check] [--jobs 8] [--grid] [--twins]

It runs with the Python that starts it and the PyTorch that Python has, whatever its version (on
the lent H200: torch 2.11 with CUDA 13, not the CPU setup's pin), and installs nothing (the
Makefile's ``WHEELS=DIR`` installs missing packages from a folder of wheels first). Each step is
timed, and the report is rewritten after each one, so a check cut short still says how far it got:

1. the environment: Python, PyTorch, CUDA, the GPU and its driver, the CPU, missing packages;
2. the synthetic twins data (``make data-files`` with this Python; the generator uses every core);
3. the ``gpu``-marked tests, then the suite's non-slow tests (in parallel with pytest-xdist);
4. one default-grid experiment (``triplet-cbam-s0``: notebook 03 through papermill) on the GPU;
5. its checkpoint evaluated on the GPU and on the CPU, each embedding afresh: time and agreement;
6. ``benchmarks/throughput.py``: each model alone (fp32, bf16, the other memory layout, compiled)
   and data-fed, CPU and GPU;
7. with ``--grid``: the whole default grid (its trainings and references, and ``dlib-as-is`` where
   dlib's weights are installed), ``--jobs`` at a time, then its analysis: the wall time;
8. with ``--twins``: the twins GPU grid (experiments/twins-gpu) into the project, then its
   analysis, while the tests run (its results do not depend on time: its steps are fixed); the
   timed steps (4-7) wait for it, so nothing else runs while they are measured.

Without a GPU it says so and runs the CPU half: steps 1, 2, 4, 5 and 6 on the CPU (the test suite
is ``make test``'s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from backbone.data.synth import available_cores

PROJECT = Path(__file__).resolve().parents[1]
EXPERIMENT = "triplet-cbam-s0"
PACKAGES = ("torch", "torchvision", "lightning_fabric", "facenet_pytorch", "pytorch_metric_learning", "timm",
            "papermill", "ipykernel", "sklearn", "onnxruntime", "onnx", "fastapi", "uvicorn", "dlib",
            "face_recognition_models", "xdist")  # fmt: skip


class Report:
    """The check's findings, as Markdown sections, written out after every step."""

    def __init__(self, out: Path):
        self.out, self.sections, self.figures = out, [], {}

    def add(self, title: str, body: str, **figures) -> None:
        self.sections.append(f"## {title}\n\n{body.strip()}\n")
        self.figures.update(figures)
        self.write()

    def write(self) -> None:
        text = "# GPU check\n\n" + "\n".join(self.sections)
        (self.out / "REPORT.md").write_text(text)
        (self.out / "figures.json").write_text(json.dumps(self.figures, indent=1, default=str) + "\n")


def run(cmd: list[str], log: Path, timeout: float | None = None, env: dict | None = None) -> tuple[int, float, str]:
    """Run ``cmd`` in the project, its output to ``log``; (exit code, seconds, the output's last lines)."""
    start = time.perf_counter()
    with open(log, "w") as f:
        f.write(f"$ {shlex.join(cmd)}\n")
        f.flush()
        try:
            code = subprocess.run(cmd, cwd=PROJECT, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = 124
    return code, time.perf_counter() - start, last_lines(log)


def backbone(*args: str) -> list[str]:
    return [sys.executable, "-m", "backbone", *args]


def fenced(text: str) -> str:
    return f"```\n{text}\n```"


def environment(cuda: bool) -> tuple[str, dict]:
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "cpu_cores": available_cores(),
        "cpu": platform.processor() or platform.machine(),
        "missing_packages": [m for m in PACKAGES if importlib.util.find_spec(m) is None],
    }
    if cuda:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"],
                             capture_output=True, text=True)  # fmt: skip
        found["driver"] = smi.stdout.strip() or smi.stderr.strip()
    lines = [f"- {k}: {v}" for k, v in found.items()]
    if not cuda:
        lines.insert(0, "**No CUDA GPU here**: the CPU half of the check runs (the test suite is `make test`'s).\n")
    return "\n".join(lines), found


def pytest_summary(tail: str) -> str:
    lines = [line for line in tail.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    return lines[-1].strip("= ") if lines else "(no summary line: see the log)"


def run_summary(run_dir: Path) -> dict:
    history = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    done = json.loads((run_dir / "done.json").read_text())
    data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]
    setting = {f"data.{k}": data[k] for k in ("loader", "batch_augment")}
    return {
        "notebook_seconds": round(done["seconds"], 1),
        "images_per_s": [round(h["images_per_s"]) for h in history],
        "train_seconds": round(sum(h["train_seconds"] for h in history), 2),
        "gpu_peak_mib": max((h.get("gpu_peak_mib", 0) for h in history), default=0),
        "test_auc": metrics["auc"],
        "twin_auc": metrics.get("twin_negatives", {}).get("auc"),
        **setting,
    }


def evaluation(run_dir: Path, device: str, out: Path) -> dict:
    """``backbone evaluate`` of the run's checkpoint on ``device``, embedding afresh (its own caches)."""
    metrics = out / f"eval-{device}.json"
    code, seconds, tail = run(backbone("evaluate", "--checkpoint", str(run_dir / "best.ckpt"), "--pairs",
                                       "files/synthetic_test_pairs.tsv", "--device", device, "--out", str(metrics),
                                       "--cache", str(out / f"cache-{device}" / "faces"), "--no-progress"),
                              out / f"eval-{device}.log")  # fmt: skip
    if code:
        return {"device": device, "exit": code, "tail": tail}
    found = json.loads(metrics.read_text())
    embedded = re.search(r"embedded (\d+) images now on (\S+);", tail)
    return {"device": device, "seconds": round(seconds, 1), "auc": found["auc"], "ran_on": embedded.group(2),
            "embedded": int(embedded.group(1))}  # fmt: skip


def last_lines(log: Path, n: int = 12) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=PROJECT / "build" / "gpu-check")
    parser.add_argument("--jobs", type=int, default=8, help="pytest workers and experiments at a time")
    parser.add_argument("--grid", action="store_true", help="also the whole default grid, timed")
    parser.add_argument("--twins", action="store_true", help="also the twins GPU grid (experiments/twins-gpu)")
    parser.add_argument("--skip-suite", action="store_true", help="leave out the non-slow test suite")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    report = Report(out)
    start = time.perf_counter()

    text, env = environment(cuda)
    report.add("Environment", text, environment=env)

    make = ["make", "data-files", f"BACKBONE={sys.executable} -m backbone"]
    code, seconds, tail = run(make, out / "data.log")
    report.add("Data", f"`make data-files` with this Python: exit {code} in {seconds:.0f} s\n\n{fenced(tail)}",
               data={"exit": code, "seconds": seconds})  # fmt: skip
    if code:
        return 1

    twins = None
    if args.twins:  # beside the tests; waited for before anything is timed
        log = open(out / "twins-gpu.log", "w")  # closed once the grid is waited for
        grid = ["experiments", "run", "--grid", "experiments/twins-gpu/grid.yaml", "--jobs", "4"]
        twins = subprocess.Popen(backbone(*grid), cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"}), log, time.perf_counter()  # fmt: skip

    if cuda:
        xdist = ["-n", str(args.jobs)] if importlib.util.find_spec("xdist") else []
        suites = [("gpu-marked tests", ["-m", "gpu"])]
        if not args.skip_suite:
            suites.append(("non-slow tests", ["-m", "not slow and not browser", *xdist]))
        for title, selection in suites:
            # -v: each test's outcome as it ends, so a log cut short still names the failures so far
            code, seconds, tail = run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *selection],
                                      out / f"{title.split()[0]}-tests.log")  # fmt: skip
            summary = pytest_summary(tail)
            failed = [line for line in (out / f"{title.split()[0]}-tests.log").read_text().splitlines()
                      if re.search(r"(FAILED|ERROR)( |$)", line)]  # fmt: skip
            tail = "\n".join(dict.fromkeys(failed)) or tail
            report.add(f"Tests: {title}", f"{summary} (exit {code}, {seconds:.0f} s)\n\n{fenced(tail)}",
                       **{title: {"summary": summary, "exit": code, "seconds": seconds}})  # fmt: skip

    if twins is not None:
        process, log, began = twins
        code = process.wait()
        log.close()
        report.add("The twins GPU grid (experiments/twins-gpu), beside the tests",
                   f"exit {code}, wall {time.perf_counter() - began:.0f} s\n\n{fenced(last_lines(out / 'twins-gpu.log'))}",
                   twins={"exit": code, "seconds": time.perf_counter() - began})  # fmt: skip

    runs = out / "runs"
    code, seconds, tail = run(backbone("experiments", "run", "--only", EXPERIMENT, "--runs", str(runs),
                                       "--no-analysis", "--force"), out / "experiment.log")  # fmt: skip
    trained = run_summary(runs / EXPERIMENT) if code == 0 else {"exit": code, "tail": tail}
    report.add(f"One default-grid experiment on the {device.upper()}: {EXPERIMENT}",
               "\n".join(f"- {k}: {v}" for k, v in trained.items()) + f"\n- wall, with the notebook's start: {seconds:.0f} s",
               experiment=trained)  # fmt: skip

    if code == 0:
        evals = [evaluation(runs / EXPERIMENT, d, out) for d in dict.fromkeys([device, "cpu"])]
        rows = "\n".join(f"| {e['device']} | {e.get('ran_on')} | {e.get('embedded')} | {e.get('seconds')} | {e.get('auc')} |"
                         for e in evals)  # fmt: skip
        report.add("Evaluation of its checkpoint (`backbone evaluate`, 2,000 test pairs, embedding afresh)",
                   "| --device | ran on | images embedded | wall s (with start-up) | AUC |\n|---|---|---:|---:|---:|\n" + rows,
                   evaluation=evals)  # fmt: skip

    bench = out / "throughput.json"
    code, seconds, tail = run([sys.executable, "benchmarks/throughput.py", "--json", str(bench),
                               "--device", "auto" if cuda else "cpu", *(["--compile"] if cuda else [])], out / "throughput.log")  # fmt: skip
    lines = (out / "throughput.log").read_text(errors="replace").splitlines()
    table = [line for line in lines if line.startswith(("device", "cpu ", "cuda ", "  torch.compile"))]
    report.add("Throughput (benchmarks/throughput.py), images/s",
               f"exit {code} in {seconds:.0f} s\n\n{fenced(chr(10).join(table) or tail)}",
               throughput=json.loads(bench.read_text()) if bench.is_file() else None)  # fmt: skip

    if args.grid:
        names = ["--only", *[f"triplet-{a}-s{s}" for a in ("global", "cbam", "spatial", "transformer") for s in range(3)],
                 "mark-oracle", "local-detail-baseline"]  # fmt: skip
        if importlib.util.find_spec("face_recognition_models"):
            names.append("dlib-as-is")
        grid = ["experiments", "run", *names, "--runs", str(out / "grid" / "runs"), "--out", str(out / "grid"),
                "--jobs", str(min(args.jobs, 6))]  # fmt: skip
        code, seconds, tail = run(backbone(*grid), out / "default-grid.log")
        report.add(f"The default grid on the {device.upper()} (trainings, references, analysis)",
                   f"exit {code}, wall {seconds:.0f} s\n\n{fenced(tail)}", grid={"exit": code, "seconds": seconds})  # fmt: skip

    report.add("Total", f"{time.perf_counter() - start:.0f} s of wall time, from the data on")
    print((out / "REPORT.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
