"""How well a training step uses this CPU: images/s and achieved GFLOP/s of the default model's
training step, next to this machine's float32 matmul GFLOP/s measured in the same run.

    .venv/bin/python benchmarks/training.py [--batch-size 64]

FLOPs are counted by torch's FlopCounterMode over one forward + backward pass (the optimiser's
element-wise work is not counted); a multiply-add is two FLOPs.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from backbone.labels import DIFFERENT, SAME
from backbone.models import ModelConfig, build_model
from backbone.training.config import LossConfig
from backbone.training.regimes import REGIMES


def timed(fn, seconds: float) -> float:
    """Seconds per call, over at least ``seconds`` of calls (after one warm-up)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64, help="pairs per step (two images each)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--matmul", type=int, default=2048, help="side of the square matmul")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

    n = args.matmul
    x, y = torch.randn(n, n), torch.randn(n, n)
    matmul_gflops = 2 * n**3 / timed(lambda: x @ y, args.seconds) / 1e9

    rows = []
    for name, config, regime in [
        ("small (default), contrastive", ModelConfig(), "contrastive"),
        ("small + CBAM local-global, contrastive", ModelConfig(attention="cbam", embedding_dim=512), "contrastive"),
    ]:
        model = build_model(config).train()
        objective = REGIMES.create(regime, model, LossConfig(regime=regime))
        optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
        size, b = config.image_size, args.batch_size
        a, p = torch.randn(b, 3, size, size), torch.randn(b, 3, size, size)
        same = torch.tensor([SAME, DIFFERENT]).repeat(b // 2 + 1)[:b]

        def step(
            objective=objective, optimizer=optimizer, a=a, p=p, same=same
        ):  # bound now: timed() calls it in this loop only
            optimizer.zero_grad(set_to_none=True)
            objective(a, p, same).backward()
            optimizer.step()

        counter = FlopCounterMode(display=False)
        with counter:
            objective(a, p, same).backward()
        flops = counter.get_total_flops()
        seconds = timed(step, args.seconds)
        rows.append((name, size, 2 * b / seconds, flops / seconds / 1e9, flops / (2 * b) / 1e9))

    print(f"float32 matmul {n}x{n}: {matmul_gflops:.1f} GFLOP/s (the machine's practical peak here)\n")
    print(f"{'training step':42s} {'input':>6s} {'img/s':>8s} {'GFLOP/s':>9s} {'of matmul':>10s} {'GFLOP/img':>10s}")
    for name, size, ips, gflops, per_image in rows:
        print(f"{name:42s} {size:4d}px {ips:8.1f} {gflops:9.1f} {gflops / matmul_gflops:9.0%} {per_image:10.2f}")


if __name__ == "__main__":
    main()
