"""``backbone evaluate`` and ``backbone verify``: a checkpoint on a pair list, or on two images."""

from __future__ import annotations

import argparse
from pathlib import Path

from backbone.atomic import atomic_write_json
from backbone.data.cache import default_cache_root, open_faces
from backbone.data.load import load_index
from backbone.data.pairs import read_pairs
from backbone.data.transforms import eval_transform
from backbone.evaluation import EmbeddingStore, evaluate_pairs
from backbone.metrics import summary_row
from backbone.models.build import load_model
from backbone.verification import Verifier, checkpoint_align_config


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("evaluate", help="metrics of a checkpoint on a pair list", description=cmd_evaluate.__doc__)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--pairs", required=True, type=Path, help="pair file (.tsv, or LFW format)")
    p.add_argument("--root", type=Path, help="data root (default: the one the checkpoint was trained on)")
    p.add_argument("--out", type=Path, help="metrics JSON (default: beside the checkpoint, named after the pairs)")
    p.add_argument("--threshold", type=float, help="fixed threshold (default: 0.6 cosine, 0.5 pair head)")
    p.add_argument("--cache", type=Path, help="face cache folder")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("verify", help="are two images the same person?", description=cmd_verify.__doc__)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("images", nargs=2, type=Path, metavar="IMAGE")
    p.add_argument("--threshold", type=float)
    p.set_defaults(func=cmd_verify)


def format_summary(metrics: dict) -> str:
    row = summary_row(metrics)
    lines = [f"{'pairs':24s} {metrics['pairs']} ({metrics['same']} same, {metrics['different']} different; {metrics['unique_images']} unique images)"]
    lines += [f"{k:24s} {v:.4f}" for k, v in row.items()]
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Embed every unique image once (cached per checkpoint), score all pairs, write metrics JSON."""
    model, config, ckpt = load_model(args.checkpoint, map_location="cpu")
    root = args.root or Path(ckpt.get("train_config", {}).get("data", {}).get("root", "."))
    index = load_index(root)
    pairs = read_pairs(args.pairs, root=index.root)
    align = checkpoint_align_config(ckpt, config.image_size)
    paths = {p for pair in pairs for p in (pair.path_a, pair.path_b)}
    faces = open_faces(index.only_paths(paths), align, cache_root=args.cache, progress=not args.no_progress)
    store = EmbeddingStore.for_checkpoint(args.checkpoint, (args.cache or default_cache_root()).parent / "embeddings", align.key())
    threshold = args.threshold if args.threshold is not None else "default"
    ev = evaluate_pairs(model, pairs, faces, eval_transform(config.image_size), threshold, faces.hashes, store, args.batch_size, progress=not args.no_progress)
    out = args.out or args.checkpoint.with_name(f"metrics_{args.pairs.stem}.json")
    atomic_write_json(out, {**ev.metrics, "checkpoint": str(args.checkpoint), "pairs": str(args.pairs), "summary": summary_row(ev.metrics)})
    print(format_summary(ev.metrics))
    print(f"embedded {ev.embedded} images now; metrics in {out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Print the similarity of two images, the threshold, and the verdict."""
    verdict = Verifier.from_checkpoint(args.checkpoint, args.threshold).verify(*args.images)
    print(verdict.text())
    return 0
