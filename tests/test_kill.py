"""Kill tests with real processes: ``backbone train``, ``backbone data align`` and ``backbone experiments run``
run as subprocesses, are SIGKILLed together with every process they started (the papermill kernel, DataLoader
workers), as a job scheduler or a cgroup OOM kill does, are started again, and must end with the results of an
uninterrupted run.

How: each command first runs uninterrupted in its own tiny workbook (the reference); its working window, from
a file that shows real work has begun (past interpreter start-up) to its exit, is timed. Each seed then runs
the command in a fresh workbook, kills it at a time drawn uniformly inside that window
(``random.Random(seed)``), for some seeds kills the restart too, and lets the last restart finish: three seeds
for ``train`` and ``data align``, one (two kills) for ``experiments run``, whose every start costs 20 s.

After every kill, every file a reader would accept must be whole and agree with the reference: checkpoints
load with ``load_model`` and hold a prefix of the reference's history, JSON/YAML/SVG parse, score files read,
PNGs decode, crops equal the reference's byte for byte, every complete record line parses and names a crop
that exists. At the end the results must equal the reference exactly (one thread and the same seed, so a
resumed run is bit-identical): training history (without timings), test metrics, best epoch, final weights,
test scores; the face cache's records (once each, none torn) and crop bytes; the experiment's done.json and
metrics. Two more tests SIGKILL training at chosen commit points, right after the best and the final epoch's
``last.ckpt`` is renamed into place, where a random kill rarely lands.

Temporary files ('.name.XXXX.tmp', '.name.partial', a notebook's '.name.partial.ipynb') left once the restart finished are reported as warnings.

About 3 minutes on 2 CPU cores (2 min 50 s to 3 min 5 s measured while other tests shared them): every
process runs alone, with OMP_NUM_THREADS=1; each start of a command costs 4-5 s of imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import psutil
import pytest
import torch
import yaml
from PIL import Image

from backbone.data.synth import SynthConfig, generate
from backbone.evaluation.scores import read_scores
from backbone.models.build import load_model

from conftest import PROJECT, TINY_TRAINING, make_workbook

pytestmark = pytest.mark.slow

SEEDS = [(0, 1), (1, 2), (5, 1)]  # (seed, kills before a restart may finish): late, early then restart, middle
EXPERIMENT_SEEDS = [(1, 2)]  # a run of the grid takes 20 s: one seed, two kills (in training, then its restart)
TIMINGS = ("images_per_s", "train_seconds", "train_minutes")  # the only history fields that may differ
# monitor val_eer: there the best epoch (the first) is not the final one, so the two can be killed apart
TRAIN_SETTINGS = [*TINY_TRAINING, "epochs=4", "steps_per_epoch=3", "monitor=val_eer"]
TRAIN = ["train", "--no-progress", "--out-dir", "runs/tiny"] + [w for s in TRAIN_SETTINGS for w in ("--set", s)]
EXPERIMENT = "contrastive-cbam"
GRID = f"""
defaults: {{parameters: {{epochs: 4, budget_images: 48, overrides: {json.dumps(TINY_TRAINING)}}}}}
experiments:
  - {{name: {EXPERIMENT}, notebook: notebooks/02_pair_training.ipynb, parameters: {{regime: contrastive, attention: cbam}}}}
"""
ALIGN_SET = SynthConfig(twin_pairs=12, singletons=16, images_per_identity=15, size=64, seed=11)  # 600 images
ALIGN = ["data", "align", "{data}", "--cache", "cache", "--size", "64", "--detector", "none"]

# `backbone` in a real process that SIGKILLs itself right after the n-th rename onto a file of a given name
KILL_AFTER_RENAME = """
import os, signal, sys
from backbone.cli import main
name, nth = sys.argv[1], int(sys.argv[2])
real, seen = os.replace, []
def replace(src, dst, *args, **kwargs):
    real(src, dst, *args, **kwargs)
    if os.path.basename(dst) == name:
        seen.append(dst)
        if len(seen) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
sys.exit(main(sys.argv[3:]))
"""


# ---- processes


@dataclass
class Job:
    """One command in its own workbook: what it runs, the file that shows its real work has begun (relative to
    ``home``), and the folders it writes."""

    home: Path
    args: list[str]
    marker: str
    outputs: tuple[str, ...]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBONE_")}
        env.update(BACKBONE_PROJECT=str(self.home), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
        return env

    def start(self, prefix: tuple[str, ...] = ("-m", "backbone")) -> subprocess.Popen:
        argv = [sys.executable, *prefix, *self.args]
        with open(self.home / "log.txt", "a") as log:
            log.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(argv[-len(self.args) :])}\n")
            log.flush()
            return subprocess.Popen(
                argv, cwd=self.home, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log_tail(self) -> str:
        return (self.home / "log.txt").read_text(errors="replace")[-3000:]

    def wipe(self) -> None:
        for folder in self.outputs:
            shutil.rmtree(self.home / folder, ignore_errors=True)


@dataclass
class Reference:
    job: Job
    startup: float  # seconds from the start to the marker
    window: float  # seconds from the marker to the exit


def wait_for_marker(job: Job, proc: subprocess.Popen, timeout: float = 120) -> float:
    """Wait until the marker exists (or the process ended); the monotonic time then."""
    deadline = time.monotonic() + timeout
    while not (job.home / job.marker).exists() and proc.poll() is None:
        assert time.monotonic() < deadline, f"no {job.marker} after {timeout} s\n{job.log_tail()}"
        time.sleep(0.005)
    return time.monotonic()


def finish(job: Job, proc: subprocess.Popen) -> None:
    assert proc.wait(timeout=600) == 0, f"{job.args[0]} failed (exit {proc.returncode}):\n{job.log_tail()}"


def run_through(job: Job) -> Reference:
    """Run ``job`` uninterrupted; its start-up and working window."""
    start = time.monotonic()
    proc = job.start()
    marked = wait_for_marker(job, proc)
    finish(job, proc)
    return Reference(job, marked - start, time.monotonic() - marked)


def gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started at one instant, as a job scheduler does: each is stopped
    first, top down, so that none starts another or runs on while the others die."""
    stopped, todo = [], [psutil.Process(proc.pid)]
    while todo:
        p = todo.pop()
        with contextlib.suppress(psutil.NoSuchProcess):
            p.suspend()
            todo += p.children()
            stopped.append(p)
    for p in stopped:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not all(gone(p) for p in stopped):  # grandchildren are not ours to reap: a zombie is dead enough
        assert time.monotonic() < deadline, "killed processes did not die"
        time.sleep(0.01)


def start_and_kill(job: Job, delay: float, after_marker: bool) -> bool:
    """Start ``job`` and SIGKILL it ``delay`` s after its marker appears (or after its start); whether it was
    still running then (else it must have succeeded)."""
    proc = job.start()
    if after_marker:
        wait_for_marker(job, proc)
    time.sleep(delay)
    if proc.poll() is not None:
        finish(job, proc)
        return False
    kill_tree(proc)
    return True


def kill_at_random(job: Job, ref: Reference, rng: random.Random) -> str:
    """Kill a fresh run at a uniformly drawn time of the reference's working window (drawn again, earlier, when
    the run was faster than the reference and ended first)."""
    fraction = rng.uniform(0.02, 0.9)
    for _ in range(3):
        if start_and_kill(job, fraction * ref.window, after_marker=True):
            return f"killed {fraction:.2f} into the working window ({fraction * ref.window:.2f} s)"
        job.wipe()
        fraction /= 2
    pytest.fail(f"{job.args[0]} always ended before its kill: the reference's timing does not hold")


def kill_restart(job: Job, ref: Reference, rng: random.Random) -> str:
    """Kill the restart at a random time past the reference's start-up (it may end first: then nothing to do)."""
    delay = ref.startup + rng.uniform(0.02, 0.35) * ref.window
    killed = start_and_kill(job, delay, after_marker=False)
    return f"restart {'killed' if killed else 'ended before its kill'} {delay:.2f} s after its start"


# ---- what a reader sees after a kill


def strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMINGS} for record in history]


def read_json(path: Path):
    return json.loads(path.read_text())


def check_checkpoint(path: Path, twin: Path) -> None:
    """It loads as a model, and it holds the reference's history up to its epoch (and its weights at the end)."""
    _, _, ckpt = load_model(path)
    reference = strip(read_json(twin.parent / "history.json"))
    assert strip(ckpt["history"]) == reference[: len(ckpt["history"])], f"{path}: history differs from the reference"
    if path.name == "last.ckpt" and ckpt["epoch"] == len(reference):
        _, _, final = load_model(twin)
        assert all(torch.equal(final["model"][k], ckpt["model"][k]) for k in final["model"]), f"{path}: weights"


def check_records(path: Path, twin: Path) -> None:
    """Every complete line parses, is one of the reference's records, and names a crop that is there; only the
    last line may be torn (the reader cuts it off)."""
    reference = set(twin.read_text().splitlines())
    for line in path.read_text().split("\n")[:-1]:
        record = json.loads(line)
        assert line in reference, f"{path}: record {line} is not the reference's"
        if record["status"] != "no_face":
            sha = record["sha1"]
            assert (path.parent / "faces" / sha[:2] / f"{sha}.png").is_file(), f"{path}: {sha} has no crop"


def check_png(path: Path, twin: Path) -> None:
    with Image.open(path) as img:
        img.load()
    if path.parent.parent.name == "faces":  # a crop (faces/ab/<sha1>.png): the same bytes as the reference's
        assert path.read_bytes() == twin.read_bytes(), f"{path} differs from the reference's crop"


def digests(sources: Path) -> list[str]:
    """The content hashes in a cache's sources.json (its keys are absolute paths: they differ between workbooks)."""
    return sorted(memo[2] for memo in read_json(sources).values())


def check_sources(path: Path, twin: Path) -> None:
    assert set(digests(path)) <= set(digests(twin)), f"{path}: content hashes the reference does not have"


SAME_BYTES = ("metrics.json", "test_scores.tsv", "config.yaml", "config.json", "started.json")  # written once, whole


def check_file(path: Path, twin: Path) -> None:
    """One file as its reader takes it: whole, and equal to the reference's ``twin`` where that is final."""
    name, suffix = path.name, path.suffix
    if suffix == ".ckpt":
        check_checkpoint(path, twin)
    elif name == "records.jsonl":
        check_records(path, twin)
    elif suffix == ".png":
        check_png(path, twin)
    elif name == "history.json":
        history = strip(read_json(path))
        assert history == strip(read_json(twin))[: len(history)], f"{path}: not the reference's history"
    elif name == "sources.json":
        check_sources(path, twin)
    elif name == "done.json":
        assert {k: v for k, v in read_json(path).items() if k != "seconds"} == {
            k: v for k, v in read_json(twin).items() if k != "seconds"
        }
    elif suffix in (".json", ".ipynb"):
        read_json(path)
    elif suffix == ".yaml":
        yaml.safe_load(path.read_text())
    elif suffix == ".svg":
        ElementTree.parse(path)
    elif suffix == ".tsv":
        read_scores(path)
    if name in SAME_BYTES:
        assert path.read_bytes() == twin.read_bytes(), f"{path} differs from the reference's"


def written(job: Job) -> list[Path]:
    """Every file ``job`` wrote but TensorBoard's append-only event logs (their reader skips a torn tail)."""
    paths = [p for folder in job.outputs for p in sorted((job.home / folder).rglob("*"))]
    return [p for p in paths if p.is_file() and "tfevents" not in p.name]


def check_outputs(job: Job, ref: Job) -> None:
    """Every file a reader would take is whole and agrees with the reference; hidden files (temporary files,
    the cache's .lock) are skipped: no reader takes them for a result."""
    for path in written(job):
        if not path.name.startswith("."):
            check_file(path, ref.home / path.relative_to(job.home))


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith((".tmp", ".partial", ".partial.ipynb"))


def state(job: Job) -> str:
    """What a kill left: epochs of checkpoints and history, records, results, temporary files."""
    parts = []
    for path in written(job):
        if path.suffix == ".ckpt":
            parts.append(f"{path.name} (epoch {load_model(path)[2]['epoch']})")
        elif path.name == "history.json":
            parts.append(f"history.json ({len(read_json(path))} epochs)")
        elif path.name == "records.jsonl":
            parts.append(f"records.jsonl ({path.read_text().count(chr(10))} lines)")
        elif path.name in ("metrics.json", "done.json") or is_temporary(path):
            parts.append(path.name)
    return ", ".join(parts) or "nothing"


def report_leftovers(job: Job) -> None:
    left = [p.relative_to(job.home).as_posix() for p in written(job) if is_temporary(p)]
    if left:
        warnings.warn(f"{len(left)} temporary files left after the restart finished: {', '.join(left)}", stacklevel=2)


# ---- final results


RESULTS = ("history.json", "metrics.json", "test_scores.tsv", "best.ckpt", "last.ckpt")


def run_differences(run: Path, ref: Path) -> list[str]:
    """How the run's results differ from the reference's: history (timings aside), test metrics and their best
    epoch, the checkpoint they were computed from, test scores, final weights. Exact: one thread, one seed."""
    missing = [f"{name} is missing" for name in RESULTS if not (run / name).is_file()]
    if missing:
        return missing
    found = []
    history, expected = strip(read_json(run / "history.json")), strip(read_json(ref / "history.json"))
    if history != expected:
        found.append(f"history.json holds epochs {[h['epoch'] for h in history]}, the reference {len(expected)}")
        found += [f"epoch {a['epoch']}: {a} != {b}" for a, b in zip(history, expected) if a != b]
    metrics, reference = read_json(run / "metrics.json"), read_json(ref / "metrics.json")
    if metrics != reference:
        found.append(f"metrics.json (epoch {metrics['epoch']}) {metrics['summary']} != (epoch {reference['epoch']}) "
                     f"{reference['summary']}")  # fmt: skip
    best = load_model(run / "best.ckpt")[2]["epoch"]
    if best != metrics["epoch"]:
        found.append(f"best.ckpt holds epoch {best}, but metrics.json names epoch {metrics['epoch']} as the best")
    if (run / "test_scores.tsv").read_bytes() != (ref / "test_scores.tsv").read_bytes():
        found.append("test_scores.tsv differs")
    last, final = load_model(run / "last.ckpt")[2]["model"], load_model(ref / "last.ckpt")[2]["model"]
    if not all(torch.equal(final[k], last[k]) for k in final):
        found.append("the final weights (last.ckpt) differ")
    return found


def crops(cache: Path) -> dict[str, str]:
    return {p.relative_to(cache).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in cache.rglob("faces/*/*.png")}  # fmt: skip


def assert_same_cache(cache: Path, ref: Path) -> None:
    """The reference's records, each once and none torn, and the same crop bytes, config and source hashes."""
    (folder,) = [p.parent for p in ref.glob("*/config.json")]
    log = (cache / folder.name / "records.jsonl").read_text()
    assert log.endswith("\n"), "a torn last record line"
    lines = log.splitlines()
    shas = [json.loads(line)["sha1"] for line in lines]
    assert len(shas) == len(set(shas)), "an image recorded twice"
    assert sorted(lines) == sorted((folder / "records.jsonl").read_text().splitlines())
    assert crops(cache) == crops(ref)
    assert read_json(cache / folder.name / "config.json") == read_json(folder / "config.json")
    assert digests(cache / "sources.json") == digests(ref / "sources.json")


# ---- the commands, each in its own workbook


@pytest.fixture(scope="module")
def homes(tmp_path_factory, tiny_synth):
    """A new workbook by name: the tiny synthetic set, its pair files, notebook 02 and a one-experiment grid."""
    base = tmp_path_factory.mktemp("kill")

    def make(name: str) -> Path:
        home = make_workbook(base / name, tiny_synth)
        shutil.copy(PROJECT / "notebooks" / "02_pair_training.ipynb", home / "notebooks")
        (home / "experiments").mkdir()
        (home / "experiments" / "grid.yaml").write_text(GRID)
        return home

    return make


@pytest.fixture(scope="module")
def align_data(tmp_path_factory) -> Path:
    return generate(ALIGN_SET, tmp_path_factory.mktemp("align") / "faces", workers=2, progress=False)


def train_job(home: Path) -> Job:
    return Job(home, TRAIN, ".cache/faces/sources.json", ("runs", ".cache"))


def align_job(home: Path, data: Path) -> Job:
    return Job(home, [a.format(data=data) for a in ALIGN], "cache/sources.json", ("cache",))


def experiment_job(home: Path) -> Job:
    args = ["experiments", "run", "--grid", "experiments/grid.yaml", "--no-analysis"]
    return Job(home, args, ".cache/faces/sources.json", ("experiments/runs", ".cache"))  # marker: the kernel trains


@pytest.fixture(scope="module")
def train_reference(homes) -> Reference:
    return run_through(train_job(homes("train-reference")))


@pytest.fixture(scope="module")
def align_reference(homes, align_data) -> Reference:
    return run_through(align_job(homes("align-reference"), align_data))


@pytest.fixture(scope="module")
def experiment_reference(homes) -> Reference:
    return run_through(experiment_job(homes("experiment-reference")))


def interrupt_and_finish(job: Job, ref: Reference, seed: int, kills: int) -> None:
    """Kill ``job`` ``kills`` times (checking its files after each), then let it finish."""
    rng = random.Random(seed)
    for k in range(kills):
        print(f"seed {seed}:", kill_at_random(job, ref, rng) if k == 0 else kill_restart(job, ref, rng))
        check_outputs(job, ref.job)
        print("  it left:", state(job))
    finish(job, job.start())


# ---- the tests


@pytest.mark.parametrize("seed, kills", SEEDS)
def test_training_killed_at_random_resumes_to_the_same_results(homes, train_reference, seed, kills):
    job = train_job(homes(f"train-{seed}"))
    interrupt_and_finish(job, train_reference, seed, kills)
    assert not run_differences(job.home / "runs" / "tiny", train_reference.job.home / "runs" / "tiny")
    assert_same_cache(job.home / ".cache" / "faces", train_reference.job.home / ".cache" / "faces")
    report_leftovers(job)


@pytest.mark.parametrize("seed, kills", SEEDS)
def test_alignment_killed_at_random_resumes_to_the_same_cache(homes, align_data, align_reference, seed, kills):
    job = align_job(homes(f"align-{seed}"), align_data)
    interrupt_and_finish(job, align_reference, seed, kills)
    assert_same_cache(job.home / "cache", align_reference.job.home / "cache")
    report_leftovers(job)


def test_alignment_whose_parent_alone_is_killed_leaves_its_lock_to_the_restart(homes, align_data, align_reference):
    """kill -9 of the aligning process only (an OOM kill picks one process): its loader workers live on for a
    while, and must not hold the cache's lock, or the restart waits for them."""
    job = align_job(homes("align-parent-only"), align_data)
    proc = job.start()
    wait_for_marker(job, proc)
    time.sleep(0.3 * align_reference.window)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait(timeout=30)
    try:
        assert workers, "the alignment had no loader workers to outlive it"
        lock = next((job.home / "cache").glob("*/.lock"))
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError while an orphan holds it
            fcntl.flock(f, fcntl.LOCK_UN)
        restart = job.start()
        assert restart.wait(timeout=10 * (align_reference.startup + align_reference.window)) == 0, job.log_tail()
    finally:
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
    assert "waiting for" not in job.log_tail()
    assert_same_cache(job.home / "cache", align_reference.job.home / "cache")


@pytest.mark.parametrize("seed, kills", EXPERIMENT_SEEDS)
def test_experiment_run_killed_at_random_resumes_to_the_same_results(homes, experiment_reference, seed, kills):
    job = experiment_job(homes(f"experiment-{seed}"))
    interrupt_and_finish(job, experiment_reference, seed, kills)
    run, ref = (j.home / "experiments" / "runs" / EXPERIMENT for j in (job, experiment_reference.job))
    assert (run / "done.json").is_file()
    check_file(run / "done.json", ref / "done.json")
    read_json(run / "02_pair_training.ipynb")
    assert not run_differences(run, ref)
    report_leftovers(job)


@pytest.mark.parametrize("epoch", ["best", "final"])
def test_training_killed_right_after_an_epoch_checkpoint_resumes_to_the_same_results(homes, train_reference, epoch):
    """SIGKILL right after last.ckpt of the best (or the final) epoch is renamed into place, before best.ckpt and
    history.json follow it."""
    ref = train_reference.job.home / "runs" / "tiny"
    best, final = read_json(ref / "metrics.json")["epoch"], len(read_json(ref / "history.json"))
    if epoch == "best" and best == final:
        pytest.skip("the best epoch is the final one: the 'final' case kills there")
    job = train_job(homes(f"train-after-{epoch}"))
    proc = job.start(prefix=("-c", KILL_AFTER_RENAME, "last.ckpt", str(best if epoch == "best" else final)))
    assert proc.wait(timeout=600) == -signal.SIGKILL, job.log_tail()
    check_outputs(job, train_reference.job)
    finish(job, job.start())
    assert not run_differences(job.home / "runs" / "tiny", ref)
    report_leftovers(job)
