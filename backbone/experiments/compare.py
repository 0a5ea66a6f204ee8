"""Compare a re-run of a grid with its committed results: per experiment and metric, the committed
number, the re-run's, their difference, the tolerance and whether they agree.

``make reproduce`` re-trains the default grid into a fresh folder and then runs

    backbone experiments compare experiments experiments/reproduced

Each folder holds an analysis's ``results.csv`` and ``environment.json``. A metric with a standard
error in ``results.csv`` (accuracy at the validation threshold, AUC, EER, twin-negative AUC) agrees within ``k`` (default 2) committed standard errors; one without (the
pointing score) must agree to the table's 4 decimals. When numbers differ, the comparison names
what differs between the two environments that decides them (oneDNN's instruction set, threads,
library versions).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from backbone.data.errors import missing

# (metric, its standard-error column in results.csv or None, the table's heading)
METRICS = [
    ("accuracy_at_val_threshold", "accuracy_at_val_threshold_se", "accuracy @ val thr."),
    ("auc", "auc_se", "AUC"),
    ("eer", "eer_se", "EER"),
    ("twin_auc", "twin_auc_se", "twin-negative AUC"),
    ("other_auc", "other_auc_se", "other-negative AUC"),
    ("pointing", None, "pointing score"),
]
EXACT = 5e-5  # what agrees "to the table's 4 decimals"
# what decides training's numbers on a CPU, first among the environments' differences
DECISIVE = ("cpu_capability", "onednn", "cpu_threads", "deterministic_algorithms", "torch", "cpu_model", "cuda")


@dataclass(frozen=True)
class Difference:
    """One number of one experiment, committed and re-run."""

    experiment: str
    metric: str
    committed: float
    rerun: float
    tolerance: float  # largest difference that agrees

    @property
    def delta(self) -> float:
        return self.rerun - self.committed

    @property
    def agrees(self) -> bool:
        return abs(self.delta) <= self.tolerance


@dataclass
class Comparison:
    numbers: list[Difference]
    only_committed: list[str]  # experiments the re-run lacks
    only_rerun: list[str]
    new_numbers: list[str]  # "experiment metric" the re-run has and the committed table lacks
    environment: dict[str, tuple]  # key -> (committed, re-run), where they differ

    @property
    def disagreements(self) -> list[Difference]:
        return [d for d in self.numbers if not d.agrees]

    @property
    def ok(self) -> bool:
        return not self.disagreements and not self.only_committed


def read_results(folder: str | Path) -> dict[str, dict[str, str]]:
    """``results.csv`` of an analysis folder, by experiment."""
    path = Path(folder) / "results.csv"
    if not path.is_file():
        raise missing("the results table", path, hint="run `backbone experiments run` (or `analyze`) to write it")
    with path.open(newline="") as f:
        return {row["experiment"]: row for row in csv.DictReader(f)}


def _number(row: dict, key: str | None) -> float | None:
    value = row.get(key, "") if key else ""
    return float(value) if value not in ("", None) else None


def _tolerance(row: dict, se_key: str | None, k: float) -> float:
    se = _number(row, se_key)
    return k * se if se is not None else EXACT


def compare(committed: str | Path, rerun: str | Path, k: float = 2.0) -> Comparison:
    """The re-run folder's numbers against the committed folder's (see the module)."""
    old, new = read_results(committed), read_results(rerun)
    numbers, new_numbers = [], []
    for name in sorted(old.keys() & new.keys()):
        for metric, se_key, _ in METRICS:
            a, b = _number(old[name], metric), _number(new[name], metric)
            if a is not None and b is not None:
                numbers.append(Difference(name, metric, a, b, _tolerance(old[name], se_key, k)))
            elif a is not None:  # a committed number the re-run lacks never agrees
                numbers.append(Difference(name, metric, a, math.nan, 0.0))
            elif b is not None:  # a metric the committed table predates
                new_numbers.append(f"{name} {metric}")
    envs = [_environment(f) for f in (committed, rerun)]
    keys = sorted(envs[0].keys() | envs[1].keys(), key=lambda key: (key not in DECISIVE, key))
    environment = {
        key: (envs[0].get(key), envs[1].get(key))
        for key in keys
        if key != "git_commit" and envs[0].get(key) != envs[1].get(key)
    }
    only = sorted(old.keys() - new.keys()), sorted(new.keys() - old.keys())
    return Comparison(numbers, *only, new_numbers, environment)


def _environment(folder: str | Path) -> dict:
    path = Path(folder) / "environment.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def report(c: Comparison, k: float = 2.0) -> str:
    """The comparison as Markdown: a verdict, the table, and the environments' differences."""
    headings = {metric: heading for metric, _, heading in METRICS}
    bad = c.disagreements
    if c.ok:
        verdict = f"**Reproduced**: all {len(c.numbers)} numbers agree within tolerance."
    else:
        verdict = f"**Not reproduced**: {len(bad)} of {len(c.numbers)} numbers differ beyond tolerance" + (
            f"; experiments missing from the re-run: {', '.join(c.only_committed)}" if c.only_committed else ""
        )
    lines = [
        verdict,
        "",
        f"Tolerance: {k:g} committed standard errors where the metric has one, else the table's 4 decimals.",
        "",
        "| experiment | metric | committed | re-run | difference | tolerance | agrees |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for d in c.numbers:
        lines.append(
            f"| {d.experiment} | {headings[d.metric]} | {d.committed:.4f} | {d.rerun:.4f} | {d.delta:+.4f} "
            f"| {d.tolerance:.4f} | {'yes' if d.agrees else '**NO**'} |"
        )
    if c.only_rerun:
        lines += ["", f"Experiments only in the re-run (not compared): {', '.join(c.only_rerun)}."]
    if c.new_numbers:
        lines += ["", f"Numbers the committed table lacks (not compared): {', '.join(c.new_numbers)}."]
    if c.environment:
        lines += ["", "The environments differ in:", ""]
        lines += [f"- {key}: committed {a!r}, re-run {b!r}" for key, (a, b) in c.environment.items()]
        if bad:
            decisive = [key for key in c.environment if key in DECISIVE]
            lines += [
                "",
                "What decides training's numbers on a CPU: "
                + (", ".join(decisive) if decisive else "none of the recorded deciders differ")
                + (" differ here." if decisive else " (threads, instruction set, library versions)."),
            ]
    elif bad:
        lines += ["", "The recorded environments are the same: the difference comes from elsewhere (the code?)."]
    return "\n".join(lines) + "\n"
