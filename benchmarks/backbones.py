"""Parameters and forward-pass images/s of every backbone at its default input size, on this machine.

.venv/bin/python benchmarks/backbones.py [--batch-size 32]
"""

from __future__ import annotations

import argparse
import platform

import torch
from timing import per_second

from backbone.models import ModelConfig, build_model

CONFIGS = [
    ModelConfig(),
    ModelConfig(attention="cbam", embedding_dim=512),
    ModelConfig(attention="spatial", embedding_dim=512),
    ModelConfig(attention="transformer", embedding_dim=512),
    ModelConfig(backbone="resnet18"),
    ModelConfig(backbone="resnet50"),
    ModelConfig(backbone="efficientnet_b0"),
    ModelConfig(backbone="inception_resnet_v1", embedding_dim=512),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per model")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, CPU, batch {args.batch_size}, eval mode, no grad"
    )
    print("| model | input | parameters | forward img/s |\n|---|---|---:|---:|")
    for config in CONFIGS:
        model = build_model(config).eval()
        size = config.image_size
        x = torch.randn(args.batch_size, 3, size, size)
        with torch.inference_mode():
            rate = per_second(lambda: model.embed(x), len(x), args.seconds)  # noqa: B023 (called at once)
        params = sum(p.numel() for p in model.parameters())
        name = config.backbone + (f" + {config.attention} local-global" if config.attention else "")
        print(f"| {name} | {size} px | {params / 1e6:.2f} M | {rate:.1f} |")


if __name__ == "__main__":
    main()
