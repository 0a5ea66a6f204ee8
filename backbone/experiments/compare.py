"""Compare a re-run of a grid with its committed results: does the result reproduce, by the rule
that fits where the re-run ran?

``make reproduce`` re-trains the default grid into a fresh folder and then runs

    backbone experiments compare experiments experiments/reproduced

Each folder holds an analysis's ``results.csv`` and ``environment.json``. Two rules:

1. **Per run, exact**, when the environments' fingerprints match (``FINGERPRINT``: the CPU's
   instruction set, a cap on oneDNN's, the CPU model, oneDNN, threads, torch, the deterministic
   flag, the CUDA device).
   Then training is the same arithmetic, and every number of every run must agree to the table's
   4 decimals (``EXACT``).
2. **Over seeds**, when they differ. Floating-point kernels differ between instruction sets,
   thread counts and devices, so seeded runs part after a few steps and a run is the wrong unit:
   what must reproduce is each setting's result over its seeds, and the conclusions drawn from
   them. For each setting trained with several seeds and each metric, the committed mean ± SE over
   seeds against the re-run's: they agree unless Welch's two-sample t-test rejects equal means at a
   family-wise 5% over all the numbers compared (Bonferroni: with 24 numbers, each at 99.8%; at 95%
   each, a faithful reproduction would fail by chance two times in three). Every paired conclusion
   of the seeds section (local-global beats / falls below / shows no clear difference from global
   only) must come out the same. Rows that train nothing (models as they are, references) depend
   on no seed: they agree within ``k`` standard errors of their test pairs. A setting with one seed
   has no spread to judge by and is shown run by run only.

Under either rule the per-run table is shown (for information under the second, after the
fingerprint's differences), with each run's wall time beside the committed one. A partial re-run
is compared on what it has: settings with all their seeds; the rest are listed as not re-run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from backbone.data.errors import missing
from backbone.experiments.seeds import paired_differences, paired_interval, setting
from backbone.provenance import FINGERPRINT

# (metric, its standard-error column in results.csv or None, the table's heading)
METRICS = [
    ("accuracy_at_val_threshold", "accuracy_at_val_threshold_se", "accuracy @ val thr."),
    ("auc", "auc_se", "AUC"),
    ("eer", "eer_se", "EER"),
    ("twin_auc", "twin_auc_se", "twin-negative AUC"),
    ("other_auc", "other_auc_se", "other-negative AUC"),
    ("pointing", "pointing_se", "pointing score"),
]
HEADINGS = {metric: heading for metric, _, heading in METRICS}
EXACT = 5e-5  # what agrees "to the table's 4 decimals"
ALPHA = 0.05  # family-wise, over every number compared over seeds
NUMERIC = (
    {"seed", "train_seconds", "run_seconds", "images_seen"}
    | {m for m, se, _ in METRICS}
    | {se for _, se, _ in METRICS if se}
)


@dataclass(frozen=True)
class Difference:
    """One number of one run, committed and re-run."""

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
        return abs(self.delta) <= self.tolerance  # False for a missing (NaN) number


@dataclass(frozen=True)
class SettingDifference:
    """One metric of one setting over its seeds: committed mean ± SE against the re-run's.

    ``bound`` is the largest difference Welch's test accepts at the comparison's per-number level
    (``t`` quantile x the combined standard error); ``p`` is the test's two-sided p-value."""

    setting: str
    metric: str
    seeds: tuple
    committed: float
    committed_se: float
    rerun: float
    rerun_se: float
    bound: float
    p: float

    @property
    def delta(self) -> float:
        return self.rerun - self.committed

    @property
    def agrees(self) -> bool:
        return abs(self.delta) <= self.bound


@dataclass(frozen=True)
class Conclusion:
    """One paired conclusion of the seeds section, committed and re-run."""

    sentence: str  # "spatial vs global only, triplet (batch-hard), small (twin-negative AUC)"
    committed: str  # "beats", "falls below" or "no clear difference"
    rerun: str
    committed_ci: tuple[float, float]
    rerun_ci: tuple[float, float]
    pooled: dict  # ``paired_interval`` over both tables' runs (2n seeds, taken as independent)

    @property
    def holds(self) -> bool:
        return self.committed == self.rerun

    @property
    def reversed(self) -> bool:
        return {self.committed, self.rerun} == {"beats", "falls below"}


@dataclass(frozen=True)
class Timing:
    """One run's wall time (the notebook, start to end) and training time, committed and re-run."""

    experiment: str
    committed_s: float | None
    rerun_s: float | None
    committed_train_s: float | None
    rerun_train_s: float | None

    @property
    def ratio(self) -> float | None:
        return _ratio(self.rerun_s, self.committed_s)


@dataclass
class Comparison:
    """What ``compare`` found; ``report`` writes it as Markdown."""

    exact: bool  # the fingerprints match: rule 1 (per run, exact) decides
    fingerprint: dict[str, tuple]  # fingerprint key -> (committed, re-run), where they differ
    unknown_environment: list[str]  # why a side's fingerprint is unknown (no environment.json, runs that recorded none)
    environment: dict[str, tuple]  # every other recorded difference
    runs: list[Difference]  # every number of every run both have, at the exact tolerance
    settings: list[SettingDifference]
    conclusions: list[Conclusion]
    untrained: list[Difference]  # rows that train nothing, within k test-pair standard errors
    k: float
    alpha_each: float  # the per-number level of the seeds comparison (ALPHA / its numbers)
    not_rerun: list[str] = field(default_factory=list)  # what the committed table has and the re-run lacks
    one_seed: list[str] = field(default_factory=list)  # trained settings of one seed: per run only
    only_rerun: list[str] = field(default_factory=list)
    new_numbers: list[str] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)

    @property
    def rule(self) -> str:
        return "exact" if self.exact else "seeds"

    @property
    def judged(self) -> list:
        """The numbers and conclusions the verdict rests on."""
        return self.runs if self.exact else [*self.settings, *self.conclusions, *self.untrained]

    @property
    def disagreements(self) -> list:
        return [d for d in self.judged if not (d.holds if isinstance(d, Conclusion) else d.agrees)]

    @property
    def flipped(self) -> list[Conclusion]:
        return [c for c in self.conclusions if not c.holds]

    @property
    def ok(self) -> bool:
        """Everything compared agrees, and there was something to compare."""
        return bool(self.judged) and not self.disagreements

    @property
    def complete(self) -> bool:
        return not self.not_rerun


def read_results(folder: str | Path) -> dict[str, dict[str, str]]:
    """``results.csv`` of an analysis folder, by experiment."""
    path = Path(folder) / "results.csv"
    if not path.is_file():
        raise missing("the results table", path, hint="run `backbone experiments run` (or `analyze`) to write it")
    with path.open(newline="") as f:
        return {row["experiment"]: row for row in csv.DictReader(f)}


def _typed(row: dict[str, str]) -> dict:
    """A ``results.csv`` row with its numbers as numbers (an empty cell: None)."""
    out = {}
    for key, value in row.items():
        if key in NUMERIC:
            value = None if value in ("", None) else float(value)
            if key == "seed" and value is not None:
                value = int(value)
        out[key] = value
    return out


def _untrained(row: dict) -> bool:
    return str(row.get("training", "")).startswith("none")


def _environment(folder: str | Path) -> dict:
    path = Path(folder) / "environment.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _unknown(which: str, env: dict) -> str | None:
    """Why one side's fingerprint is unknown (None: it is known)."""
    if not env:
        return f"the {which} environment.json is missing"
    if str(env.get("fingerprint_from", "")).startswith("unknown"):
        return f"the {which} runs' fingerprint is {env['fingerprint_from']}"
    return None


def _differences(a: dict, b: dict, keys) -> dict[str, tuple]:
    return {key: (a.get(key), b.get(key)) for key in keys if a.get(key) != b.get(key)}


def _per_run(name: str, old: dict, new: dict, tolerance) -> tuple[list[Difference], list[str]]:
    """Every metric of one run: ``Difference``s (a committed number the re-run lacks: NaN, which
    never agrees) and the metrics only the re-run has."""
    out, newer = [], []
    for metric, se_key, _ in METRICS:
        a, b = old.get(metric), new.get(metric)
        if a is not None:
            out.append(Difference(name, metric, a, b if b is not None else math.nan, tolerance(old, se_key)))
        elif b is not None:
            newer.append(f"{name} {metric}")
    return out, newer


def _welch(a: list[float], b: list[float], alpha: float) -> tuple[float, float, float, float]:
    """The standard errors of the means of ``a`` and ``b``, Welch's two-sided p-value for equal
    means, and the largest difference the test accepts at level ``alpha``: (se_a, se_b, p, bound)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    diff = statistics.mean(b) - statistics.mean(a)
    if se == 0:  # both settings gave the same number at every seed
        return math.sqrt(va), math.sqrt(vb), (1.0 if diff == 0 else 0.0), 0.0
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = 2 * stats.t.sf(abs(diff) / se, dof)
    return math.sqrt(va), math.sqrt(vb), float(p), float(stats.t.ppf(1 - alpha / 2, dof) * se)


def _label(rows: list[dict]) -> str:
    """A setting's name: its runs' common prefix ("triplet-cbam" for triplet-cbam-s0..s2)."""
    prefix = re.sub(r"[-_]s?$", "", os.path.commonprefix([r["experiment"] for r in rows]))
    return prefix or f"{rows[0]['attention']}, {rows[0]['loss']}"


def _by_setting(rows: dict[str, dict]) -> dict[tuple, dict]:
    """Trained rows with a seed, by setting and then by seed."""
    groups: dict[tuple, dict] = {}
    for row in rows.values():
        if row.get("seed") is not None and not _untrained(row):
            groups.setdefault(setting(row), {}).setdefault(row["seed"], row)
    return groups


def _over_seeds(old: dict[str, dict], new: dict[str, dict]) -> tuple[list[tuple], list[str], list[str]]:
    """The settings both have over the same seeds (at least two): (label, metric, seeds, committed
    values, re-run values) per metric; the settings not (fully) re-run; the one-seed settings."""
    olds, news = _by_setting(old), _by_setting(new)
    compared, not_rerun, one_seed = [], [], []
    for key, by_seed in olds.items():
        label = _label(list(by_seed.values()))
        if len(by_seed) < 2:
            one_seed.append(label)
            continue
        rerun = news.get(key, {})
        if set(by_seed) - set(rerun):
            have = sorted(set(by_seed) & set(rerun))
            not_rerun.append(f"{label} (seeds {_seeds(by_seed)}; re-run: {_seeds(have) if have else 'none'})")
            continue
        seeds = tuple(by_seed)
        for metric, _, _ in METRICS:
            a = [by_seed[s].get(metric) for s in seeds]
            if None in a:
                continue
            b = [rerun[s].get(metric) for s in seeds]
            compared.append((label, metric, seeds, a, b))
    return compared, not_rerun, one_seed


def _seeds(seeds) -> str:
    return ", ".join(map(str, seeds))


def _conclusions(old: list[dict], new: list[dict]) -> tuple[list[Conclusion], list[str]]:
    """The seeds section's paired conclusions, committed against re-run (over the same seeds)."""
    rerun = {(p["setting"], p["global_setting"]): p for p in paired_differences(new)}
    out, not_rerun = [], []
    for p in paired_differences(old):
        metric = "twin-negative AUC" if p["metric"] == "twin_auc" else "AUC"
        sentence = f"{p['attention']} vs global only, {p['loss']}, {p['architecture']} ({metric})"
        q = rerun.get((p["setting"], p["global_setting"]))
        if q is None or q["seeds"] != p["seeds"] or q["metric"] != p["metric"]:
            not_rerun.append(f"the conclusion {sentence}")
            continue
        pooled = paired_interval(p["differences"] + q["differences"])
        out.append(Conclusion(sentence, p["verdict"], q["verdict"], p["ci"], q["ci"], pooled))
    return out, not_rerun


def _timings(old: dict[str, dict], new: dict[str, dict]) -> list[Timing]:
    return [
        Timing(
            name,
            old[name].get("run_seconds"),
            new[name].get("run_seconds"),
            old[name].get("train_seconds"),
            new[name].get("train_seconds"),
        )
        for name in sorted(old.keys() & new.keys())
    ]


def compare(committed: str | Path, rerun: str | Path, k: float = 2.0) -> Comparison:
    """The re-run folder's results against the committed folder's, by the rule the environments'
    fingerprints call for (see the module).

    Args:
        committed: The folder of the committed ``results.csv`` and ``environment.json``.
        rerun: The re-run's folder.
        k: Rows that train nothing agree within ``k`` committed standard errors of their test
            pairs (under the seeds rule).
    """
    old = {name: _typed(row) for name, row in read_results(committed).items()}
    new = {name: _typed(row) for name, row in read_results(rerun).items()}
    envs = [_environment(f) for f in (committed, rerun)]
    unknown = [why for which, env in zip(("committed", "re-run"), envs) if (why := _unknown(which, env))]
    fingerprint = {} if unknown else _differences(*envs, FINGERPRINT)
    others = sorted((envs[0].keys() | envs[1].keys()) - set(FINGERPRINT) - {"git_commit", "fingerprint_from"})
    common = sorted(old.keys() & new.keys())

    runs, new_numbers = [], []
    for name in common:
        numbers, newer = _per_run(name, old[name], new[name], lambda row, se_key: EXACT)
        runs += numbers
        new_numbers += newer
    untrained = []
    for name in (n for n in common if _untrained(old[n])):
        untrained += _per_run(name, old[name], new[name], lambda row, se_key: _tolerance(row, se_key, k))[0]

    compared, not_rerun, one_seed = _over_seeds(old, new)
    alpha_each = ALPHA / max(len(compared), 1)
    settings = []
    for label, metric, seeds, a, b in compared:
        if None in b:  # a committed number the re-run lacks never agrees
            se_a = statistics.stdev(a) / math.sqrt(len(a))
            settings.append(
                SettingDifference(label, metric, seeds, statistics.mean(a), se_a, *[math.nan] * 2, 0.0, 0.0)
            )
            continue
        se_a, se_b, p, bound = _welch(a, b, alpha_each)
        settings.append(
            SettingDifference(label, metric, seeds, statistics.mean(a), se_a, statistics.mean(b), se_b, bound, p)
        )
    conclusions, lost = _conclusions(list(old.values()), list(new.values()))
    in_settings = {
        r["experiment"] for by_seed in _by_setting(old).values() if len(by_seed) > 1 for r in by_seed.values()
    }
    not_rerun += [f"{n} ({_why_missing(old[n])})" for n in sorted(old.keys() - new.keys() - in_settings)]
    return Comparison(
        exact=not fingerprint and not unknown,
        fingerprint=fingerprint,
        environment={} if unknown else _differences(*envs, others),
        unknown_environment=unknown,
        runs=runs,
        settings=settings,
        conclusions=conclusions,
        untrained=untrained,
        k=k,
        alpha_each=alpha_each,
        not_rerun=not_rerun + lost,
        one_seed=one_seed,
        only_rerun=sorted(new.keys() - old.keys()),
        new_numbers=new_numbers,
        timings=_timings(old, new),
    )


def _why_missing(row: dict) -> str:
    if _untrained(row):
        return "trains nothing"
    return "no seed" if row.get("seed") is None else "one seed"


def _tolerance(row: dict, se_key: str | None, k: float) -> float:
    se = row.get(se_key) if se_key else None
    return k * se if se is not None else EXACT


def _ratio(new: float | None, old: float | None) -> float | None:
    return new / old if new is not None and old else None


# ---------------------------------------------------------------------------------- the report


def _fingerprint_line(c: Comparison) -> str:
    return ", ".join(f"{key} {a!r} → {b!r}" for key, (a, b) in c.fingerprint.items())


def _verdict(c: Comparison) -> str:
    partial = (
        "" if c.complete else f" Partial re-run: compared on what it has ({len(c.not_rerun)} not re-run, listed below)."
    )
    if c.exact:
        head = (
            f"**Reproduced exactly**: all {len(c.runs)} numbers of {len({d.experiment for d in c.runs})} runs agree "
            f"to 4 decimals." if c.ok else
            f"**Not reproduced**: {len(c.disagreements)} of {len(c.runs)} numbers differ beyond the table's 4 decimals."
        )  # fmt: skip
        why = (
            "Rule: per run, exact, because the environments' fingerprints match ("
            + ", ".join(FINGERPRINT)
            + "): the same arithmetic must give the same numbers."
        )
        return f"{head}{partial}\n\n{why}"
    if not c.judged:
        head = (
            "**Nothing to compare**: the re-run has no setting with all its seeds and no row the committed table has."
        )
    elif c.ok:
        head = (
            f"**Reproduced over seeds**: {len(c.settings)} numbers of {len({s.setting for s in c.settings})} settings "
            f"agree, {len(c.conclusions)} paired conclusions hold, {len(c.untrained)} numbers of rows that train nothing agree."
        )
    else:
        numbers = [d for d in c.disagreements if not isinstance(d, Conclusion)]
        judged = len(c.settings) + len(c.untrained)
        said = f"{len(numbers)} of {judged} numbers differ" if numbers else f"all {judged} numbers agree"
        changed = f"{len(c.flipped)} paired conclusion{'s' if len(c.flipped) > 1 else ''} changed"
        head = f"**Not reproduced** over seeds: {said}" + (
            f"{' and' if numbers else ', but'} {changed}" if c.flipped else ""
        ) + "."  # fmt: skip
    why = (
        "Rule: over seeds, because per-run exact agreement does not apply: "
        + (
            f"the environments' fingerprints differ ({_fingerprint_line(c)})"
            if c.fingerprint
            else f"{'; '.join(c.unknown_environment)}, so the fingerprints cannot be matched"
        )
        + "; seeded runs part after a few steps under other kernels, so each setting is judged by its mean over seeds."
    )
    return f"{head}{partial}\n\n{why}"


def _conclusion_lines(c: Comparison) -> list[str]:
    lines = []
    for x in c.flipped:  # the loudest lines of the report
        word = "REVERSED" if x.reversed else "CHANGED"
        why = "" if x.reversed else (
            " Not a reversal: one of the two intervals includes 0, so the conclusion does not survive another "
            "environment's seeds; more seeds would settle it."
        )  # fmt: skip
        pooled = (f" Pooled over the {x.pooled['n']} runs of both: \"{x.pooled['verdict']}\", {x.pooled['mean']:+.4f} "
                  f"(95% CI {_ci(x.pooled['ci'])}).")  # fmt: skip
        lines.append(f"**{word} CONCLUSION**: {x.sentence}: committed \"{x.committed}\", re-run \"{x.rerun}\" "
                     f"(95% CI {_ci(x.committed_ci)} → {_ci(x.rerun_ci)}).{why}{pooled}")  # fmt: skip
    return lines


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _settings_table(c: Comparison) -> list[str]:
    if not c.settings:
        return []
    level = 100 * (1 - c.alpha_each)
    lines = [
        "",
        "### Over seeds: each setting's mean ± SE over its seeds",
        "",
        f"Agrees when Welch's t-test accepts equal means at {level:.2f}% per number ({100 * (1 - ALPHA):.0f}% "
        f"family-wise over the {len(c.settings)} numbers, Bonferroni); bound: the largest difference it accepts.",
        "",
        "| setting | seeds | metric | committed | re-run | difference | bound | p | agrees |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in c.settings:
        lines.append(
            f"| {s.setting} | {_seeds(s.seeds)} | {HEADINGS[s.metric]} | {s.committed:.4f} ± {s.committed_se:.4f} "
            f"| {s.rerun:.4f} ± {s.rerun_se:.4f} | {s.delta:+.4f} | {s.bound:.4f} | {s.p:.3f} | {_yes(s.agrees)} |"
        )
    return lines


def _conclusions_table(c: Comparison) -> list[str]:
    if not c.conclusions:
        return []
    lines = ["", "### Paired conclusions (local-global vs global only, paired by seed; 95% CI)", "",
             "| comparison | committed | re-run | holds | pooled over both (for information) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for x in c.conclusions:
        lines.append(f"| {x.sentence} | {x.committed} {_ci(x.committed_ci)} | {x.rerun} {_ci(x.rerun_ci)} "
                     f"| {_yes(x.holds)} | {x.pooled['verdict']} {_ci(x.pooled['ci'])}, {x.pooled['n']} runs |")  # fmt: skip
    return lines


def _runs_table(title: str, numbers: list[Difference]) -> list[str]:
    lines = ["", title, "", "| experiment | metric | committed | re-run | difference | tolerance | agrees |",
             "|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for d in numbers:
        lines.append(f"| {d.experiment} | {HEADINGS[d.metric]} | {d.committed:.4f} | {d.rerun:.4f} | {d.delta:+.4f} "
                     f"| {_tolerance_text(d.tolerance)} | {_yes(d.agrees)} |")  # fmt: skip
    return lines


def _tolerance_text(tolerance: float) -> str:
    return "4 decimals" if tolerance == EXACT else f"{tolerance:.4f}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _seconds(s: float | None) -> str:
    return "n/a" if s is None else f"{s:.0f} s"


def _times(c: Comparison) -> list[str]:
    both = [t for t in c.timings if t.ratio is not None]
    if not c.timings:
        return []
    lines = ["", "### Wall time per run (the run's notebook, start to end; training alone in brackets)", ""]
    if both:
        old, new = sum(t.committed_s for t in both), sum(t.rerun_s for t in both)
        slowest = sorted(both, key=lambda t: -t.rerun_s)[:3]
        lines += [
            f"In all, {new:.0f} s against {old:.0f} s committed ({new / old:.2f}x over the {len(both)} runs with both; "
            f"per run from {min(t.ratio for t in both):.2f}x to {max(t.ratio for t in both):.2f}x). Slowest: "
            + ", ".join(f"{t.experiment} {t.rerun_s:.0f} s ({t.ratio:.2f}x)" for t in slowest)
            + ".",
            "",
        ]
    lines += ["| experiment | committed | re-run | ratio |", "|---|---:|---:|---:|"]
    for t in c.timings:
        ratio = "n/a" if t.ratio is None else f"{t.ratio:.2f}x"
        lines.append(f"| {t.experiment} | {_seconds(t.committed_s)} ({_seconds(t.committed_train_s)}) "
                     f"| {_seconds(t.rerun_s)} ({_seconds(t.rerun_train_s)}) | {ratio} |")  # fmt: skip
    return lines


def report(c: Comparison) -> str:
    """The comparison as Markdown: the verdict and the rule that gave it (a changed conclusion
    first and loudest), the tables that decide, the per-run table, wall times and the
    environments' differences."""
    lines = [*_conclusion_lines(c), "" if c.flipped else None, _verdict(c)]
    lines = [line for line in lines if line is not None]
    if c.fingerprint:
        lines += ["", "The environments' fingerprints differ in:", ""]
        lines += [f"- {key}: committed {a!r}, re-run {b!r}" for key, (a, b) in c.fingerprint.items()]
    if c.not_rerun:
        lines += ["", "Not re-run (not compared): " + "; ".join(c.not_rerun) + "."]
    if c.one_seed:
        lines += ["", "One seed only, so no spread to judge by (per-run table only): " + ", ".join(c.one_seed) + "."]
    if not c.exact:
        lines += _settings_table(c) + _conclusions_table(c)
        if c.untrained:
            lines += _runs_table(
                f"### Rows that train nothing: within {c.k:g} standard errors of their test pairs "
                "(no seed moves them; only floating-point can)",
                c.untrained,
            )
    title = "### Per run, to 4 decimals" + ("" if c.exact else " (for information: the fingerprints differ)")
    lines += _runs_table(title, c.runs)
    if c.only_rerun:
        lines += ["", f"Experiments only in the re-run (not compared): {', '.join(c.only_rerun)}."]
    if c.new_numbers:
        lines += ["", f"Numbers the committed table lacks (not compared): {', '.join(c.new_numbers)}."]
    lines += _times(c)
    if c.environment:
        lines += ["", "Other differences between the environments:", ""]
        lines += [f"- {key}: committed {a!r}, re-run {b!r}" for key, (a, b) in c.environment.items()]
    return "\n".join(lines) + "\n"
