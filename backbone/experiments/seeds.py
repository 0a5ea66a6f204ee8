"""Results over seeds: settings trained with several seeds, as mean ± sample standard deviation,
and local-global against global-only attention as a difference paired by seed.

Rows are those of ``backbone.experiments.analysis.result_row`` (a ``"seed"`` key; None for the
references, which are left out here). Two rows are the same setting when they differ only in their
seed (and their minutes of training, which vary from seed to seed while the images seen do not).
"""

from __future__ import annotations

import math
import statistics

from scipy import stats

SETTING = ("architecture", "attention", "pretrained_on", "loss", "training", "budget")
METRICS = ("twin_auc", "other_auc", "auc", "accuracy_at_val_threshold")
GLOBAL_ONLY = "none (global only)"


def setting(row: dict) -> tuple:
    """What makes two rows the same experiment but for the seed.

    Args:
        row: A table row (``result_row``).

    Returns:
        (architecture, attention, pretrained_on, loss, training, budget) with the budget's images
        only ("1.6 min, 12,288 images" gives "12,288 images"; no budget gives "none").
    """
    budget = (row.get("budget") or "none").split(", ", 1)[-1]
    return *(row.get(key) for key in SETTING[:-1]), budget


def _seeded(rows: list[dict]) -> dict[tuple, dict]:
    """The rows with a seed, by setting and then by seed (a seed run twice counts once: its first
    row), for the settings that have at least two seeds."""
    groups: dict[tuple, dict] = {}
    for row in (r for r in rows if r.get("seed") is not None):
        groups.setdefault(setting(row), {}).setdefault(row["seed"], row)
    return {key: dict(sorted(by_seed.items())) for key, by_seed in groups.items() if len(by_seed) >= 2}


def seed_summary(rows: list[dict]) -> list[dict]:
    """Every setting trained with at least two seeds, summarised over its seeds.

    Args:
        rows: Table rows (``result_row``).

    Returns:
        One dict per setting: the setting's fields (``SETTING``), ``n``, ``seeds``, ``experiments``,
        ``twin_aucs`` and ``other_aucs`` (per seed, in the order of ``seeds``), and ``<metric>_mean`` and
        ``<metric>_sd`` (sample standard deviation, n - 1) for each of ``METRICS`` that every row
        of the setting has.
    """
    out = []
    for key, by_seed in _seeded(rows).items():
        group = list(by_seed.values())
        summary = dict(zip(SETTING, key)) | {
            "n": len(group),
            "seeds": list(by_seed),
            "experiments": [r["experiment"] for r in group],
            "twin_aucs": [r.get("twin_auc") for r in group],
            "other_aucs": [r.get("other_auc") for r in group],
        }
        for metric in METRICS:
            values = [r.get(metric) for r in group]
            if None not in values:
                summary[f"{metric}_mean"], summary[f"{metric}_sd"] = statistics.mean(values), statistics.stdev(values)
        out.append(summary)
    return out


def _paired(attended: dict, plain: dict, seeds: list) -> dict:
    """The per-seed differences attended - plain in twin-negative AUC (AUC on all test pairs when a
    row lacks it), their mean, standard error and 95% Student's t confidence interval."""
    rows = [by_seed[s] for by_seed in (attended, plain) for s in seeds]
    metric = "twin_auc" if all(r.get("twin_auc") is not None for r in rows) else "auc"
    differences = [attended[s][metric] - plain[s][metric] for s in seeds]
    return {"metric": metric, "seeds": seeds, "differences": differences, **paired_interval(differences)}


def paired_interval(differences: list[float]) -> dict:
    """Paired differences (at least two) summarised: ``n``, their ``mean``, its standard error
    ``se`` (sd / sqrt(n)), ``ci`` (95%, Student's t with ``df`` = n - 1 degrees of freedom) and
    ``verdict``: "beats" (the interval above 0), "falls below" (below 0) or "no clear difference"."""
    n, mean = len(differences), statistics.mean(differences)
    se = statistics.stdev(differences) / math.sqrt(n)
    half = stats.t.ppf(0.975, n - 1) * se
    low, high = mean - half, mean + half
    verdict = "beats" if low > 0 else "falls below" if high < 0 else "no clear difference"
    return {"n": n, "mean": mean, "se": se, "ci": (low, high), "df": n - 1, "verdict": verdict}


def paired_differences(rows: list[dict]) -> list[dict]:
    """Local-global against global-only attention, paired by seed, for every local-global setting
    whose global-only twin (equal in everything but attention) shares at least two seeds with it.

    Args:
        rows: Table rows (``result_row``).

    Returns:
        One dict per pair of settings: the local-global setting's fields (``SETTING``), both
        settings as tuples (``setting``, ``global_setting``), the runs' names over the shared seeds
        (``experiments``, ``global_experiments``), ``metric`` ("twin_auc", or "auc" when a row has no twin negatives), ``seeds``, ``n``,
        ``differences`` (local-global minus global-only, per seed), their ``mean``, its standard
        error ``se`` (sd / sqrt(n)), ``ci`` (95%, Student's t with ``df`` = n - 1 degrees of
        freedom) and ``verdict``: "beats" (the interval above 0), "falls below" (below 0) or
        "no clear difference".
    """
    groups = _seeded(rows)
    attention = SETTING.index("attention")
    out = []
    for key, attended in groups.items():
        plain_key = (*key[:attention], GLOBAL_ONLY, *key[attention + 1 :])
        if key[attention].startswith("none") or plain_key not in groups:
            continue
        seeds = [s for s in attended if s in groups[plain_key]]
        if len(seeds) < 2:
            continue
        plain = groups[plain_key]
        names = {"experiments": [attended[s]["experiment"] for s in seeds],
                 "global_experiments": [plain[s]["experiment"] for s in seeds]}  # fmt: skip
        out.append(
            dict(zip(SETTING, key))
            | {"setting": key, "global_setting": plain_key}
            | names
            | _paired(attended, plain, seeds)
        )
    return out


def _spread(summary: dict, metric: str) -> str:
    mean = summary.get(f"{metric}_mean")
    return "n/a" if mean is None else f"{mean:.4f} ± {summary[f'{metric}_sd']:.4f}"


def _sentence(p: dict) -> str:
    metric = "twin-negative AUC" if p["metric"] == "twin_auc" else "AUC on all test pairs"
    low, high = p["ci"]
    verdict = (
        "no clear difference" if p["verdict"] == "no clear difference" else f"local-global {p['verdict']} global only"
    )
    return (
        f"- {p['loss']}, {p['architecture']}: {p['attention']} local-global vs global only over seeds "
        f"{', '.join(map(str, p['seeds']))}: {metric} difference {p['mean']:+.4f} ± {p['se']:.4f} (mean ± SE of the "
        f"per-seed differences), 95% CI [{low:+.4f}, {high:+.4f}] (t, {p['df']} d.f.): {verdict} "
        f"({', '.join(p['experiments'])} vs {', '.join(p['global_experiments'])})."
    )


def paired_sentences(rows: list[dict]) -> list[str]:
    """One sentence per paired difference of local-global vs global only (``paired_differences``)."""
    return [_sentence(p) for p in paired_differences(rows)]


def seed_lines(rows: list[dict]) -> list[str]:
    """The seeds section of ``results.md``: a table of every setting's mean ± SD over its seeds, and
    one sentence per paired difference of local-global vs global only.

    Args:
        rows: Table rows (``result_row``).

    Returns:
        Markdown lines; empty when no setting was trained with several seeds.
    """
    summaries = seed_summary(rows)
    if not summaries:
        return []
    lines = [
        "| attention | loss | architecture | training | seeds | twin-negative AUC | other-negative AUC | AUC |",
        "|" + "---|" * 8,
    ]
    lines += [
        f"| {s['attention']} | {s['loss']} | {s['architecture']} | {s['training']} | {', '.join(map(str, s['seeds']))} "
        f"| {_spread(s, 'twin_auc')} | {_spread(s, 'other_auc')} | {_spread(s, 'auc')} |"
        for s in summaries
    ]
    sentences = [_sentence(p) for p in paired_differences(rows)]
    return lines + (["", *sentences] if sentences else [])
