"""How well a training step uses this CPU, and whether the data loader keeps up with it.

    .venv/bin/python benchmarks/training.py [--seconds 5]

1. This machine's float32 and bfloat16 matmul GFLOP/s (the practical peak of each precision).
2. The LFW recipe's training step (``experiments/lfw/recipe.yaml``: its model, CosFace, its
   batch) and the default pair step: images/s and achieved GFLOP/s in float32 and under
   bf16 autocast, each in the default and the channels-last memory format, as a fraction of the
   matmul rate of the precision it computes in.
3. The recipe's step (in its memory format) fed by its loader, against the same step on one
   ready batch (the model alone): the per-image pipeline (``train_transform`` in 2 DataLoader
   workers) and batch augmentation (``BatchAugment`` on uint8 crops in the training process,
   no workers), both at the recipe's augmentation strength.

Everything is measured side by side in one run. FLOPs are counted by torch's FlopCounterMode
over one forward + backward pass (the optimiser's element-wise work is not counted); a
multiply-add is two FLOPs.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

import torch
from timing import seconds_per_call
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from backbone.data.faces.transforms import BatchAugment, augment_ranges, train_transform
from backbone.labels import DIFFERENT, SAME
from backbone.models import ModelConfig, build_model
from backbone.paths import project_path
from backbone.training.config import LossConfig, TrainConfig
from backbone.training.regimes import REGIMES

CLASSES = 1012  # the recipe's training identities
RECIPE = project_path("experiments/lfw/recipe.yaml")


def matmul_gflops(n: int, dtype: torch.dtype, seconds: float) -> float:
    x, y = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / seconds_per_call(lambda: x @ y, seconds) / 1e9


class Step:
    """One training step of a regime on a model: ``run(batch)``; ``flops(batch)`` of forward + backward."""

    def __init__(self, regime: str, model_config: ModelConfig, bf16: bool, channels_last: bool, **loss):
        model = build_model(model_config).train()
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(memory_format=self.format)
        self.objective = REGIMES.create(regime, model, LossConfig(regime=regime, **loss), CLASSES)
        self.optimizer = torch.optim.SGD(self.objective.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        self.bf16 = bf16

    def _loss(self, batch) -> torch.Tensor:
        batch = [x.contiguous(memory_format=self.format) if x.ndim == 4 else x for x in batch]
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with autocast:
            return self.objective(*batch)

    def run(self, batch) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._loss(batch).backward()
        self.optimizer.step()

    def flops(self, batch) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            self._loss(batch).backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()


def recipe_batch(size: int, b: int) -> list[torch.Tensor]:
    return [torch.randn(b, 3, size, size), torch.randint(0, CLASSES, (b,))]


def pair_batch(size: int, b: int) -> list[torch.Tensor]:
    same = torch.tensor([SAME, DIFFERENT]).repeat(b // 2 + 1)[:b]
    return [torch.randn(b, 3, size, size), torch.randn(b, 3, size, size), same]


class Crops(Dataset):
    """Random uint8 crops with identity labels, held in RAM as the preloaded face cache holds them."""

    def __init__(self, n: int, size: int, transform):
        self.images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
        self.labels = torch.randint(0, CLASSES, (n,))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def fed_rate(step: Step, loader: DataLoader, augment, steps: int) -> float:
    """Images/s of ``steps`` training steps fed by ``loader`` (after 2 warm-up steps)."""

    def batches() -> Iterator:
        while True:
            yield from loader

    it = batches()
    for _ in range(2):
        step.run(next(it) if augment is None else [augment(x) if x.ndim == 4 else x for x in next(it)])
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
        step.run(batch if augment is None else [augment(batch[0]), batch[1]])
    return steps * loader.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--matmul", type=int, default=2048, help="side of the square matmul")
    parser.add_argument("--loader-steps", type=int, default=40)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    peak = {False: matmul_gflops(args.matmul, torch.float32, args.seconds),
            True: matmul_gflops(args.matmul, torch.bfloat16, args.seconds)}  # fmt: skip
    print(f"matmul {args.matmul}x{args.matmul}: float32 {peak[False]:.1f} GFLOP/s, bfloat16 {peak[True]:.1f} GFLOP/s\n")

    cfg = TrainConfig.load(RECIPE)
    recipe, size, batch_size = cfg.model, cfg.model.image_size, cfg.batch_size
    margin = {"scale": cfg.loss.scale, "margin": cfg.loss.margin}
    print(f"{'training step':44s} {'input':>6s} {'img/s':>8s} {'GFLOP/s':>8s} {'of its matmul':>14s}")
    for name, regime, config, make, loss in [
        (f"recipe: {recipe.backbone}, CosFace, batch {batch_size}", "cosface", recipe,
         lambda: recipe_batch(size, batch_size), margin),
        ("default: small, contrastive, 64 pairs", "contrastive", ModelConfig(), lambda: pair_batch(112, 64), {}),
    ]:  # fmt: skip
        batch = make()
        images = sum(len(x) for x in batch if x.ndim == 4)
        for bf16 in (False, True):
            for channels_last in (False, True):
                step = Step(regime, config, bf16, channels_last, **loss)
                flops = step.flops(batch)
                seconds = seconds_per_call(lambda step=step, batch=batch: step.run(batch), args.seconds)
                gflops = flops / seconds / 1e9
                label = f"{name}, {'bf16' if bf16 else 'fp32'}{', channels-last' if channels_last else ''}"
                print(f"{label:44s} {config.image_size:4d}px {images / seconds:8.1f} {gflops:8.1f} "
                      f"{gflops / peak[bf16]:13.0%}")  # fmt: skip

    layout = "channels-last" if cfg.channels_last else "default layout"
    print(f"\nthe recipe's step (fp32, {layout}) fed by its loader, against the model alone on one ready batch:")
    step = Step("cosface", recipe, False, cfg.channels_last, **margin)
    alone = batch_size / seconds_per_call(lambda: step.run(recipe_batch(size, batch_size)), args.seconds)
    ranges = augment_ranges(cfg.data.augment_strength)
    per_image = DataLoader(Crops(4096, size, train_transform(size=size, hflip=cfg.data.hflip, **ranges)),
                           batch_size=batch_size, shuffle=True, num_workers=2, persistent_workers=True,
                           drop_last=True)  # fmt: skip
    batched = DataLoader(Crops(4096, size, lambda x: x), batch_size=batch_size, shuffle=True, num_workers=0,
                         drop_last=True)  # fmt: skip
    print(f"{'model alone':52s} {alone:8.1f} img/s")
    for label, loader, augment in [
        ("per-image augmentation in 2 loader workers", per_image, None),
        ("batch augmentation in the training process", batched, BatchAugment(hflip=cfg.data.hflip, **ranges)),
    ]:
        rate = fed_rate(step, loader, augment, args.loader_steps)
        print(f"{label:52s} {rate:8.1f} img/s  {rate / alone:5.0%} of the model alone")


if __name__ == "__main__":
    main()
