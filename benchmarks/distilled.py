"""The distilled student against its teacher on this CPU: embeddings/s, side by side in one run.

    .venv/bin/python benchmarks/distilled.py [--student experiments/lfw/runs/distilled-from-dlib/best.ckpt]
                                             [--teacher experiments/lfw/runs/dlib-as-is-flip/best.ckpt]

Both checkpoints embed the same batches of random images at their own input size (the student at
64 px, dlib's ResNet at 150 px), each as its run evaluates (flip-averaged when its config says so)
and single-pass; the ratios are the student's embeddings/s over the teacher's.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from timing import per_second

from backbone.models import build_model, load_model


def rate(model, size: int, batch: int, seconds: float) -> float:
    """Embeddings per second of ``model`` on batches of ``batch`` random images (after a warm-up)."""
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        return per_second(lambda: model.embed(x), batch, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="experiments/lfw/runs/distilled-from-dlib/best.ckpt")
    parser.add_argument("--teacher", default="experiments/lfw/runs/dlib-as-is-flip/best.ckpt")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, batch {args.batch_size}")
    rates = {}
    for role, path in (("teacher", args.teacher), ("student", args.student)):
        model, config, _ = load_model(path)
        for flip in dict.fromkeys((config.flip_average, False)):
            variant = build_model(dataclasses.replace(config, flip_average=flip), load_pretrained=False)
            variant.load_state_dict(model.state_dict())
            rates[role, flip] = rate(variant.eval(), config.image_size, args.batch_size, args.seconds)
            print(f"{role:8s} {config.backbone:12s} {config.image_size:4d}px  flip-averaged {'yes' if flip else 'no ':3s} "
                  f"{rates[role, flip]:8.1f} embeddings/s")  # fmt: skip
    for s_flip, t_flip in ((True, True), (True, False), (False, False)):
        if (("student", s_flip) in rates) and (("teacher", t_flip) in rates):
            ratio = rates["student", s_flip] / rates["teacher", t_flip]
            print(
                f"student ({'flip' if s_flip else 'single'}) / teacher ({'flip' if t_flip else 'single'}): {ratio:.1f}x"
            )


if __name__ == "__main__":
    main()
