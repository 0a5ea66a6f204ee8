"""What the face cache buys, and whether the data loader keeps up with the model.

Prints, side by side from one run on the same images:
  * images/s of decode + MTCNN detect + align (what every epoch would cost without a cache),
    decode + centre crop, and reading ready crops from the cache (PNG per face, the chosen
    design) or from a packed uint8 array (the alternative);
  * the training loader's images/s (DataLoader workers, train-time augmentation) next to the
    default CPU model's training-step images/s.

    .venv/bin/python benchmarks/align_cache.py [--root ../shared/data/lfw] [--images 256]

Without LFW it runs on the synthetic set in data/synthetic (make reproduce writes it).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from backbone.data import load_index, load_rgb
from backbone.data.faces.align import AlignConfig, FaceAligner, center_crop
from backbone.data.faces.cache import CachedFaces, FaceCache, align_index
from backbone.data.faces.datasets import FaceDataset
from backbone.data.faces.samplers import balanced_sampler
from backbone.data.faces.transforms import train_transform
from backbone.losses import TripletLoss
from backbone.models import ModelConfig, build_model

PROJECT = Path(__file__).resolve().parents[1]


def rate(n: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def pick(index, n: int):
    """About n images of identities with two or more, spread over the alphabet: deterministic."""
    multi = [i for i in index.identities if len(index.by_identity[i]) >= 2]
    mean = sum(len(index.by_identity[i]) for i in multi) / len(multi)
    chosen, total = [], 0
    for i in multi[:: max(1, int(len(multi) * mean / n))]:
        chosen.append(i)
        total += len(index.by_identity[i])
        if total >= n:
            break
    return index.subset(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=PROJECT.parent / "shared" / "data" / "lfw")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    root = args.root if args.root.is_dir() else PROJECT / "data" / "synthetic"
    index = pick(load_index(root), args.images)
    paths = [index.absolute(r.path) for r in index.records]
    n = len(paths)
    config = AlignConfig()
    torch.manual_seed(0)
    print(f"{n} images from {root} ({index.summary()})")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, CPU"
    )

    aligner = FaceAligner(config)
    aligner.align([load_rgb(paths[0])])  # load the detector before timing

    def detect_every_epoch():
        for i in range(0, n, 16):
            aligner.align([load_rgb(p) for p in paths[i : i + 16]])

    rows = [("decode + MTCNN detect + align (no cache)", rate(n, detect_every_epoch))]
    rows.append(("decode + centre crop (no detector)", rate(n, lambda: [center_crop(load_rgb(p), 160) for p in paths])))

    with tempfile.TemporaryDirectory() as tmp:
        cache = FaceCache(tmp, config)
        build = align_index(index, cache, workers=2, progress=False)
        faces = CachedFaces(index, cache)
        names = [r.path for r in index.records]
        [faces(p) for p in names]  # warm the page cache, as in every epoch after the first
        rows.append(("read crop from cache: PNG per face", rate(n, lambda: [faces(p) for p in names])))
        packed = Path(tmp) / "packed.npy"
        np.save(packed, np.stack([faces(p).permute(1, 2, 0).numpy() for p in names]))
        array = np.load(packed, mmap_mode="r")
        rows.append(
            (
                "read crop from packed uint8 array (memmap)",
                rate(n, lambda: [torch.from_numpy(np.array(array[i])) for i in range(n)]),
            )
        )
        start = time.perf_counter()
        preloaded = CachedFaces(index, cache, preload=True)
        preload_s = time.perf_counter() - start
        rows.append(("read crop preloaded from PNG cache (RAM)", rate(n, lambda: [preloaded(p) for p in names])))
        png_mb = sum(f.stat().st_size for f in (cache.dir / "faces").rglob("*.png")) / 2**20
        npy_mb = packed.stat().st_size / 2**20
        base = rows[0][1]
        print(f"\n{'path':48s} {'img/s':>9s} {'vs detect':>10s}")
        for name, r in rows:
            print(f"{name:48s} {r:9.1f} {r / base:9.1f}x")
        print(
            f"one-off cache build (detect + align + write, 2 loader workers): {build.aligned_now / build.seconds:.1f} img/s"
        )
        print(f"disk: PNG per face {png_mb:.1f} MiB, packed array {npy_mb:.1f} MiB for {n} crops of {config.size} px")
        print(f"preloading {n} crops into RAM: {preload_s:.2f} s once per run")

        model_config = ModelConfig()
        size, bs = model_config.image_size, args.batch_size
        model = build_model(model_config).train()
        loss_fn = TripletLoss(0.2, "batch-hard")
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(x, labels):
            optimiser.zero_grad(set_to_none=True)
            loss_fn(model.embed(x), labels).backward()
            optimiser.step()

        x, labels = torch.randn(bs, 3, size, size), torch.arange(bs) // 2
        step(x, labels)
        steps = 10
        model_rate = rate(steps * bs, lambda: [step(x, labels) for _ in range(steps)])
        print(
            f"\ndefault model train step alone ({model_config.backbone}, {size} px, batch {bs}, triplet): {model_rate:.1f} img/s"
        )
        print(f"{'training input from':34s} {'loader alone':>13s} {'model fed by it':>16s} {'of model alone':>15s}")
        for name, source in (("PNG cache, read per sample", faces), ("PNG cache, preloaded to RAM", preloaded)):
            dataset = FaceDataset(index, source, train_transform(size=size))
            sampler = balanced_sampler(dataset.labels, m=2, batch_size=bs, length=max(4 * n, 4 * bs))
            loader = DataLoader(dataset, batch_size=bs, sampler=sampler, num_workers=2, persistent_workers=True)
            next(iter(loader))  # start the workers before timing
            start = time.perf_counter()
            count = sum(len(xb) for xb, _ in loader)
            loader_rate = count / (time.perf_counter() - start)
            start = time.perf_counter()
            fed = 0
            for xb, yb in loader:
                step(xb, yb)
                fed += len(xb)
            fed_rate = fed / (time.perf_counter() - start)
            print(f"{name:34s} {loader_rate:9.1f} img/s {fed_rate:10.1f} img/s {fed_rate / model_rate:14.0%}")
        print("(2 loader workers with augmentation at the model's size; on 2 cores they share the CPU with the model)")


if __name__ == "__main__":
    main()
