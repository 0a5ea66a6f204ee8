"""Unique-image evaluation versus the naive per-pair forward pass, on a large pair list.

Builds a list the size of a large published evaluation (166,800 pairs) over the synthetic set's
3,000 images -- every one of its 13,500 matched pairs plus distinct mismatched pairs -- and
prints, from one run: the time to embed each unique image once and score all pairs, the time of
the naive way (both images of every pair through the network), and pairs/s for each.

    .venv/bin/python benchmarks/evaluation.py [--pairs 166800] [--naive-pairs N]

``--naive-pairs`` times the naive way on the first N pairs only and says so (default: all).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from backbone.data import Pair, load_index
from backbone.data.faces.align import AlignConfig
from backbone.data.faces.cache import open_faces
from backbone.data.faces.transforms import eval_transform
from backbone.evaluation.embeddings import evaluate_pairs
from backbone.labels import DIFFERENT, SAME
from backbone.models import ModelConfig, build_model

PROJECT = Path(__file__).resolve().parents[1]


def big_pair_list(index, n: int, seed: int = 0) -> list[Pair]:
    same = [Pair(a, b, SAME) for paths in index.by_identity.values() for a, b in itertools.combinations(paths, 2)]
    rng = np.random.default_rng(seed)
    records = index.records
    seen, different = set(), []
    while len(same) + len(different) < n:
        i, j = rng.integers(len(records), size=2)
        a, b = records[i], records[j]
        if a.identity != b.identity and (i, j) not in seen and (j, i) not in seen:
            seen.add((i, j))
            different.append(Pair(a.path, b.path, DIFFERENT, twins=b.identity in index.siblings(a.identity)))
    return (same + different)[:n]


@torch.inference_mode()
def naive(model, pairs, faces, transform, batch_size: int) -> np.ndarray:
    scores = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        a = torch.stack([transform(faces(p.path_a)) for p in chunk])
        b = torch.stack([transform(faces(p.path_b)) for p in chunk])
        scores.append(model(a, b).score)
    return torch.cat(scores).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=PROJECT / "data" / "synthetic")
    parser.add_argument("--pairs", type=int, default=166_800)
    parser.add_argument("--naive-pairs", type=int, help="time the naive way on this many pairs only")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    index = load_index(args.root)
    pairs = big_pair_list(index, args.pairs)
    config = ModelConfig()
    faces = open_faces(index, AlignConfig(size=config.image_size, detector="none"), preload=True, progress=False)
    torch.manual_seed(0)
    model = build_model(config).eval()
    transform = eval_transform(config.image_size)
    print(f"{len(pairs):,} pairs ({sum(p.same for p in pairs):,} matched) over {len(index):,} images; model {config.backbone} "
          f"at {config.image_size} px; torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")  # fmt: skip

    start = time.perf_counter()
    ev = evaluate_pairs(model, pairs, faces, transform, batch_size=args.batch_size, progress=False)
    unique_s = time.perf_counter() - start
    n_naive = min(args.naive_pairs or len(pairs), len(pairs))
    start = time.perf_counter()
    naive_scores = naive(model, pairs[:n_naive], faces, transform, args.batch_size)
    naive_s = time.perf_counter() - start
    agree = np.abs(naive_scores - ev.scores[:n_naive]).max()

    print(f"\n{'method':44s} {'pairs':>9s} {'forward passes':>15s} {'seconds':>9s} {'pairs/s':>10s}")
    print(
        f"{'unique images once + vectorised scoring':44s} {len(pairs):9,d} {ev.embedded:15,d} {unique_s:9.1f} {len(pairs) / unique_s:10,.0f}"
    )
    print(
        f"{'naive: both images of every pair':44s} {n_naive:9,d} {2 * n_naive:15,d} {naive_s:9.1f} {n_naive / naive_s:10,.0f}"
    )
    if n_naive < len(pairs):
        print(
            f"(naive timed on the first {n_naive:,} pairs; all {len(pairs):,} would take about {naive_s * len(pairs) / n_naive:.0f} s)"
        )
    speedup = (naive_s / n_naive) / (unique_s / len(pairs))
    print(f"speed-up per pair: {speedup:.0f}x; largest score difference between the two ways: {agree:.2e}")
    print(f"metrics on all pairs included in the unique-image time: AUC {ev.metrics['auc']:.4f} (untrained model)")


if __name__ == "__main__":
    main()
