"""``backbone evaluate``, ``backbone verify`` and ``backbone identify``: a checkpoint on a pair list;
two photos, or a photo and a gallery, with a checkpoint or the default pretrained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from backbone.arguments import finite
from backbone.atomic import atomic_write_json
from backbone.data import all_pairs, load_index, write_pairs
from backbone.data.index import IdentityIndex
from backbone.devices import DEVICES_HELP
from backbone.paths import cli_file, cli_folder, cli_path, project_path, project_relative, shareable_path


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("evaluate", help="metrics of a checkpoint on a pair list", description=cmd_evaluate.__doc__)
    p.add_argument("--checkpoint", required=True, type=cli_path, help="a training run's best.ckpt (or any checkpoint)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--pairs", type=cli_path, help="pair file (.tsv, or LFW format)")
    what.add_argument(
        "--data", type=cli_path, metavar="ROOT",
        help="an identity-folder data set without a pair file: every matched pair and as many mismatched ones (--seed)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="--data: the seed of the mismatched pairs")
    p.add_argument("--root", type=cli_path, help="data root (default: the one the checkpoint was trained on)")
    p.add_argument("--out", type=cli_file, help="metrics JSON (default: beside the checkpoint, named after the pairs)")
    p.add_argument("--threshold", type=finite, help="fixed threshold (default: 0.6 cosine, 0.5 pair head)")
    p.add_argument("--cache", type=cli_folder, help="face cache folder")
    p.add_argument("--batch-size", type=int, default=128, help="images embedded at once")
    p.add_argument(
        "--trust-labels",
        action="store_true",
        help="score the file's labels even where they contradict the identity folders (warns; default: refuse)",
    )
    p.add_argument(
        "--allow-outside-root", action="store_true", help="accept pair paths that leave the data root (../, absolute)"
    )
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("verify", help="are two photos the same person?", description=cmd_verify.__doc__)
    p.add_argument(
        "images", nargs=2, type=cli_path, metavar="IMAGE", help="two photos (faces found and aligned as in evaluation)"
    )
    _model_options(p)
    p.set_defaults(func=cmd_verify)

    p = commands.add_parser("identify", help="who in a gallery folder is the person of a photo? (1:N)",
                            description=cmd_identify.__doc__)  # fmt: skip
    p.add_argument("probe", type=cli_path, metavar="PROBE", help="the photo to identify")
    p.add_argument("gallery", type=cli_path, metavar="GALLERY_DIR", help="one sub-folder of photos per person")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many people to list, best first")
    p.add_argument("--cache", type=cli_folder, help="face cache folder (embeddings are kept beside it)")
    p.add_argument("--no-face", choices=("report", "fallback"), default="report",
                   help="a gallery photo without a face: refuse the gallery, listing them (report), or use its centre crop (fallback)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _model_options(p)
    p.set_defaults(func=cmd_identify)


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=cli_path,
                   help="a training run's best.ckpt (default: the pretrained model, dlib's ResNet as it is, flip- and zoom-averaged)")  # fmt: skip
    p.add_argument("--threshold", type=finite,
                   help="SAME at or above it (default: the one chosen on the model's validation pairs)")  # fmt: skip
    p.add_argument("--device", default="auto", help=DEVICES_HELP)


def _verifier(args: argparse.Namespace):
    from backbone.evaluation.verification import Verifier

    if args.checkpoint is None:
        return Verifier.pretrained(threshold=args.threshold, device=args.device)
    return Verifier.from_checkpoint(args.checkpoint, args.threshold, args.device)


def format_summary(metrics: dict) -> str:
    from backbone.evaluation.metrics import summary_row  # scikit-learn: imported by the commands

    row = summary_row(metrics)
    width = max(map(len, row)) + 1
    lines = [
        f"{'pairs':{width}s} {metrics['pairs']} ({metrics['same']} same, {metrics['different']} different; {metrics['unique_images']} unique images)"
    ]
    if "faces" in metrics:
        from backbone.data.faces.align import FaceCounts

        lines.append(f"{'faces':{width}s} {FaceCounts(**metrics['faces']).text()}")
    lines += [f"{k:{width}s} {v:.4f}" for k, v in row.items()]
    return "\n".join(lines)


def generated_pairs(index: IdentityIndex, seed: int, out: Path) -> dict:
    """``--data``: the balanced pair list of every matched pair of ``index`` (``all_pairs``),
    written beside the metrics ``out``; what the metrics record about it."""
    pairs_file = out.with_name(f"pairs_{index.root.name}_seed{seed}.tsv")
    pairs = all_pairs(index, seed)
    write_pairs(pairs, pairs_file)
    return {"data": project_relative(index.root), "seed": seed, "pairs_file": project_relative(pairs_file),
            "pairs": len(pairs), "rule": "every matched pair, as many mismatched pairs drawn with the seed (backbone.data.all_pairs)"}  # fmt: skip


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Embed every unique image once (cached per checkpoint), score all pairs, write the metrics
    JSON and the per-pair scores (``scores_<pairs>.tsv``, what the pair explorer opens).

    ``--data ROOT`` evaluates on any identity-folder set without a pair file: a deterministic,
    balanced list (every matched pair, as many mismatched ones drawn with ``--seed``) is written
    beside the metrics (``pairs_<root>_seed<N>.tsv``), and the metrics record how it was made."""
    from backbone.evaluation.checkpoints import evaluate_checkpoint  # PyTorch: imported by the command
    from backbone.evaluation.metrics import summary_row
    from backbone.evaluation.scores import write_scores

    pairs_file, root, out, generated = args.pairs, args.root, args.out, None
    if args.data is not None:
        index = load_index(args.data)
        out = out or args.checkpoint.with_name(f"metrics_{index.root.name}_seed{args.seed}.json")
        generated = generated_pairs(index, args.seed, out)
        pairs_file, root = project_path(generated["pairs_file"]), index.root
        rule = f"every matched pair, as many mismatched drawn with seed {args.seed}"
        print(f"{generated['pairs']} pairs of {index.root.name} ({rule}) in {pairs_file}")
    result = evaluate_checkpoint(
        args.checkpoint,
        pairs_file,
        root,
        args.cache,
        args.threshold,
        args.batch_size,
        progress=not args.no_progress,
        trust_labels=args.trust_labels,
        allow_outside_root=args.allow_outside_root,
        device=args.device,
    )
    ev = result.evaluation
    out = out or args.checkpoint.with_name(f"metrics_{pairs_file.stem}.json")
    atomic_write_json(
        out,
        {
            **ev.metrics,
            "checkpoint": shareable_path(args.checkpoint),  # no machine's absolute path in results
            "pairs": shareable_path(pairs_file),
            **({"generated_pairs": generated} if generated else {}),
            "summary": summary_row(ev.metrics),
        },
    )
    scores = out.with_name(f"scores_{pairs_file.stem}.tsv")
    write_scores(scores, result.pairs, ev.scores)
    print(format_summary(ev.metrics))
    device = next(result.model.parameters()).device
    print(f"embedded {ev.embedded} images now on {device}; metrics in {out}, per-pair scores in {scores}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Print the similarity of the faces of two photos, the threshold and the verdict, then which
    model and threshold were used and which face of each photo (the largest nearest the centre,
    as evaluation selects it). Without --checkpoint: dlib's pretrained ResNet as it is, each face
    embedded with its mirror image, at the threshold chosen on LFW's validation pairs (its
    checkpoint is written into the cache on first use)."""
    print(_verifier(args).verify(*args.images).text())
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    """List the people of GALLERY_DIR (one sub-folder of photos per person) most like the face of
    PROBE, best first, each scored by their best-matching photo and marked SAME at the model's
    threshold. The gallery's faces and embeddings are cached (content-hashed): a second search
    embeds only photos added since. Without --checkpoint: the pretrained model, as verify uses."""
    from backbone.evaluation.identification import identify

    result = identify(_verifier(args), args.probe, args.gallery, args.top, args.cache, args.no_face,
                      progress=not args.no_progress)  # fmt: skip
    print(result.text())
    return 0
