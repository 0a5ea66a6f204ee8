"""dlib's face recognition ResNet: the PyTorch port against dlib's own ``compute_face_descriptor``,
side by side in one run on the same face chips (this CPU), and the port under bf16 autocast with
how far its descriptors move and what that does to View 1 accuracy.

.venv/bin/python benchmarks/dlib_resnet.py [--images 256] [--batch-size 32]

Chips: dlib face chips (150 px) of LFW's ``pairsDevTest.txt`` images from the face cache (aligned
first if needed; ``--lfw``), or synthetic faces resized to 150 px when LFW is absent (then no
accuracy is reported). The accuracy uses the cosine threshold chosen on ``pairsDevTrain.txt``.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from timing import per_second

from backbone.evaluation.metrics import best_accuracy_threshold, confusion_at
from backbone.models.dlib_resnet import default_model_path, load_dlib_resnet


def lfw_chips(lfw: Path, split: str, chip: str = "dlib") -> tuple[list, dict[str, np.ndarray]]:
    """The pairs of ``pairs<split>.txt`` and the 150 px ``chip`` of each image (aligned into the cache if needed)."""
    from backbone.data.faces.align import AlignConfig
    from backbone.data.faces.cache import open_faces
    from backbone.data.layouts.load import load_index
    from backbone.data.lists.pairs import read_pairs

    index = load_index(lfw)
    pairs = read_pairs(lfw / f"pairs{split}.txt", root=index.root)
    paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
    faces = open_faces(index.only_paths(set(paths)), AlignConfig(size=150, detector="mtcnn", chip=chip))
    return pairs, {p: faces(p).permute(1, 2, 0).numpy() for p in paths}


def embed(net, chips: np.ndarray, batch: int, bf16: bool = False) -> np.ndarray:
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return torch.cat([net(x[i : i + batch]).float() for i in range(0, len(x), batch)]).numpy()


def cosine_scores(pairs, emb: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and label of every pair."""
    unit = {p: e / np.linalg.norm(e) for p, e in emb.items()}
    return np.array([unit[p.path_a] @ unit[p.path_b] for p in pairs]), np.array([p.same for p in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256, help="chips timed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="time per contender")
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    args = parser.parse_args()
    import dlib

    torch.manual_seed(0)
    net = load_dlib_resnet()
    reference = dlib.face_recognition_model_v1(str(default_model_path()))
    have_lfw = (args.lfw / "pairsDevTest.txt").is_file()
    if have_lfw:
        test_pairs, test_chips = lfw_chips(args.lfw, "DevTest")
        chips = np.stack(list(test_chips.values())[: args.images])
    else:
        from backbone.data.synth import SynthConfig, generate

        root = generate(SynthConfig(twin_pairs=8, singletons=16, images_per_identity=8, size=150, seed=0),
                        Path("/tmp/backbone-bench-synth"), workers=1, progress=False)  # fmt: skip
        from PIL import Image

        chips = np.stack([np.array(Image.open(p).convert("RGB")) for p in sorted(root.rglob("*.png"))[: args.images]])
    n = len(chips)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dlib {dlib.__version__}, {platform.machine()}, "
          f"{n} chips of 150 px ({'LFW pairsDevTest' if have_lfw else 'synthetic'}), batch {args.batch_size}")  # fmt: skip
    batch_list = [c for c in chips]
    dlib_rate = per_second(lambda: reference.compute_face_descriptor(batch_list), n, args.seconds, min_calls=2)
    port_rate = per_second(lambda: embed(net, chips, args.batch_size), n, args.seconds, min_calls=2)
    bf16_rate = per_second(lambda: embed(net, chips, args.batch_size, bf16=True), n, args.seconds, min_calls=2)
    exact = embed(net, chips, args.batch_size)
    low = embed(net, chips, args.batch_size, bf16=True)
    cos = (exact * low).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(low, axis=1)
    print("| contender | descriptors/s | vs dlib |\n|---|---:|---:|")
    for name, r in (("dlib compute_face_descriptor (batch)", dlib_rate), ("PyTorch port, float32", port_rate),
                    ("PyTorch port, bf16 autocast", bf16_rate)):  # fmt: skip
        print(f"| {name} | {r:.1f} | {r / dlib_rate:.2f}x |")
    print(f"bf16 against float32 descriptors: cosine min {cos.min():.5f}, max abs diff {np.abs(exact - low).max():.4f}")
    if have_lfw:
        train_pairs, train_chips = lfw_chips(args.lfw, "DevTrain")
        for bf16 in (False, True):
            train_emb = dict(zip(train_chips, embed(net, np.stack(list(train_chips.values())), args.batch_size, bf16)))
            test_emb = dict(zip(test_chips, embed(net, np.stack(list(test_chips.values())), args.batch_size, bf16)))
            threshold = best_accuracy_threshold(*cosine_scores(train_pairs, train_emb))
            accuracy = confusion_at(*cosine_scores(test_pairs, test_emb), threshold)["accuracy"]
            print(f"View 1 DevTest accuracy, {'bf16' if bf16 else 'float32'}: {accuracy:.4f} "
                  f"(cosine threshold {threshold:.4f}: the best accuracy on DevTrain)")  # fmt: skip


if __name__ == "__main__":
    main()
