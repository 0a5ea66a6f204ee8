"""``backbone data``: synthesise, validate, analyze data sets and write pair files."""

from __future__ import annotations

import argparse
import sys

from backbone.arguments import within
from backbone.atomic import atomic_write_json, atomic_write_text
from backbone.data.checks.validate import validate_dataset
from backbone.data.faces.align import CHIPS, DETECTORS, POLICIES, AlignConfig
from backbone.data.layouts.lfw import format_lfw_people, read_lfw_people
from backbone.data.layouts.load import KINDS, load_index
from backbone.data.lists.pairs import write_pairs
from backbone.data.lists.sampling import DEFAULT_TWIN_SHARE, generate_pairs, generate_triplets
from backbone.data.lists.splits import DEFAULT_FRACTIONS, split_identities
from backbone.data.lists.triplets import write_triplets
from backbone.data.synth import SynthConfig, generate
from backbone.devices import DEVICES_HELP
from backbone.paths import cli_file, cli_folder, cli_path


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("data", help="data sets: synth, validate, analyze, pairs", description=__doc__)
    sub = group.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("synth", help="generate the synthetic twins data set", description=cmd_synth.__doc__)
    defaults = SynthConfig()
    p.add_argument("--out", required=True, type=cli_folder, help="output folder")
    p.add_argument(
        "--seed", type=int, default=defaults.seed, help="the generator's seed: the same seed, the same images"
    )
    p.add_argument("--twin-pairs", type=int, default=defaults.twin_pairs, help="pairs of identical twins")
    p.add_argument("--singletons", type=int, default=defaults.singletons, help="identities without a twin")
    p.add_argument("--images", type=int, default=defaults.images_per_identity, help="images per identity")
    p.add_argument("--size", type=int, default=defaults.size, help="image side in pixels")
    p.add_argument("--workers", type=int, help="processes (default: one per available core; same images either way)")
    p.add_argument("--force", action="store_true", help="replace an existing data set made with other settings")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("validate", help="find unreadable images and bad pair files", description=cmd_validate.__doc__)
    p.add_argument("root", type=cli_path, help="the data set's folder")
    p.add_argument(
        "--pairs", action="append", default=[], type=cli_path, metavar="FILE", help="pair or triplet file (repeatable)"
    )
    p.add_argument("--kind", choices=KINDS, default="auto", help="the data set's layout (auto: recognised)")
    p.add_argument(
        "--strict", action="store_true", help="fail on warnings too (single-image identities, repeated pairs)"
    )
    p.add_argument("--no-decode", action="store_true", help="skip decoding every image")
    p.add_argument(
        "--allow-outside-root", action="store_true", help="accept list paths that leave the root (../, absolute)"
    )
    p.add_argument("--workers", type=int, default=2, help="processes decoding images")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("align", help="detect, align and cache every face", description=cmd_align.__doc__)
    defaults = AlignConfig()
    p.add_argument("root", type=cli_path, help="the data set's folder")
    p.add_argument("--kind", choices=KINDS, default="auto", help="the data set's layout (auto: recognised)")
    p.add_argument(
        "--cache", type=cli_folder, help="cache folder (default: $BACKBONE_CACHE, else .cache/faces in the project)"
    )
    p.add_argument(
        "--size", type=int, default=defaults.size, help="output side in pixels (160 facenet, 112 small models)"
    )
    p.add_argument("--margin", type=int, default=defaults.margin, help="margin around the face box, in output pixels")
    p.add_argument(
        "--detector", choices=DETECTORS, default=defaults.detector, help="'none': centre-crop already-aligned images"
    )
    p.add_argument(
        "--crop",
        type=within(0, 1, low_open=True),
        default=defaults.crop,
        help="centre crop: fraction of the shorter side kept",
    )
    p.add_argument(
        "--chip", choices=CHIPS, default=defaults.chip,
        help="box: the face box plus margin; dlib, landmarks: dlib's face chip frame (the dlib_resnet backbone, --size 150)",
    )  # fmt: skip
    p.add_argument(
        "--policy", choices=POLICIES, default="fallback", help="no face found: centre crop (fallback) or report"
    )
    p.add_argument("--batch-size", type=int, default=16, help="images MTCNN detects at once")
    p.add_argument("--workers", type=int, default=2, help="processes decoding images")
    p.add_argument("--verify", action="store_true", help="decode every cached crop first; align damaged ones again")
    p.add_argument("--device", default="auto", help="where MTCNN detects faces: " + DEVICES_HELP.split(": ", 1)[1])
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("analyze", help="counts, images per identity, sizes, modes", description=cmd_analyze.__doc__)
    p.add_argument("root", type=cli_path, help="the data set's folder")
    p.add_argument("--kind", choices=KINDS, default="auto", help="the data set's layout (auto: recognised)")
    p.add_argument("--json", type=cli_file, metavar="FILE", help="also save the report as JSON")
    p.add_argument("--no-baseline", action="store_true", help="skip the twin pixel baseline")
    p.add_argument("--cache", type=cli_folder, help="also report alignment results (faces, fallbacks) from this cache")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("pairs", help="write balanced pair (and triplet) files", description=cmd_pairs.__doc__)
    p.add_argument("root", type=cli_path, help="the data set's folder")
    p.add_argument("--out", required=True, type=cli_file, help="pair file: .tsv, or .txt for the LFW format")
    p.add_argument("--n-pairs", type=int, default=6000, help="pairs to write, half of them the same person")
    p.add_argument(
        "--twin-share",
        type=within(0, 1),
        default=DEFAULT_TWIN_SHARE,
        help="share of negatives drawn from twin siblings",
    )
    p.add_argument("--seed", type=int, default=0, help="the seed the pairs are drawn with")
    p.add_argument("--folds", type=int, help="identity-disjoint folds, LFW View 2 style")
    p.add_argument("--format", choices=("tsv", "lfw"), help="default: by the extension of --out")
    p.add_argument("--kind", choices=KINDS, default="auto", help="the data set's layout (auto: recognised)")
    p.add_argument(
        "--people",
        type=cli_path,
        metavar="FILE",
        help="only these people (an LFW people file, e.g. peopleDevTrain.txt)",
    )
    p.add_argument("--split", help="draw from one identity-disjoint split only (e.g. train, val, test)")
    p.add_argument("--split-fractions", default=",".join(f"{k}={v}" for k, v in DEFAULT_FRACTIONS.items()),
                   help="the identity-disjoint splits' shares, name=fraction,...")  # fmt: skip
    p.add_argument("--split-seed", type=int, default=0, help="keep it the same for every split of one data set")
    p.add_argument("--triplets", type=cli_path, metavar="FILE", help="also write triplets here")
    p.add_argument(
        "--people-out",
        type=cli_path,
        metavar="FILE",
        help="also write the identities drawn from (after --people and --split) as an LFW people file",
    )
    p.add_argument("--n-triplets", type=int, help="default: as many as --n-pairs")
    p.set_defaults(func=cmd_pairs)


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the procedural twins data set (identity folders plus pairs.json)."""
    config = SynthConfig(args.twin_pairs, args.singletons, args.images, args.size, args.seed)
    out = generate(config, args.out, workers=args.workers, force=args.force)
    print(f"synthetic twins data set in {out}: {load_index(out).summary()}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every image and pair file; exit 1 when an error is found."""
    report = validate_dataset(
        args.root,
        args.pairs,
        kind=args.kind,
        decode=not args.no_decode,
        workers=args.workers,
        allow_outside_root=args.allow_outside_root,
    )
    for findings, shown in ((report.errors, 50), (report.warnings, 10)):
        for finding in findings[:shown]:
            print(finding, file=sys.stderr)
        if len(findings) > shown:
            print(f"... and {len(findings) - shown} more {findings[0].severity}s", file=sys.stderr)
    print(f"{args.root}: {report.images} images, {report.identities} identities")
    for path, n in report.pair_files.items():
        print(f"{path}: {n} entries")
    print(f"{len(report.errors)} errors, {len(report.warnings)} warnings {report.counts() or ''}".rstrip())
    return 0 if report.ok(strict=args.strict) else 1


def cmd_align(args: argparse.Namespace) -> int:
    """Align every image into the face cache; resumes where an interrupted run stopped.

    Exits 1 when images are unreadable or, under --policy report, have no face (listed)."""
    from backbone.data.faces.cache import FaceCache, align_index  # PyTorch: imported by the commands that use it

    index = load_index(args.root, args.kind)
    config = AlignConfig(size=args.size, margin=args.margin, detector=args.detector, crop=args.crop, chip=args.chip)
    cache = FaceCache(args.cache, config, policy=args.policy, device=args.device)
    summary = align_index(index, cache, workers=args.workers, batch_size=args.batch_size, verify=args.verify)
    for path in summary.damaged[:50]:
        print(f"damaged in the cache, aligned again: {path}", file=sys.stderr)
    for problem in summary.unreadable[:50]:
        print(f"unreadable: {problem}", file=sys.stderr)
    for path in summary.no_face[:50]:
        print(f"no face: {path}", file=sys.stderr)
    print(f"{cache.dir}: {summary.text()}")
    return 1 if summary.unreadable or summary.no_face else 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Print counts, the images-per-identity distribution, image sizes and modes."""
    from backbone.data.checks.analyze import analyze_dataset, format_report
    from backbone.data.faces.cache import alignment_status

    index = load_index(args.root, args.kind)
    report = analyze_dataset(index, baseline=not args.no_baseline)
    if args.cache:
        report["alignment"] = alignment_status(index, args.cache)
    print(format_report(report))
    if args.json:
        atomic_write_json(args.json, report)
    return 0


def _fractions(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise ValueError(f"--split-fractions must look like train=0.7,val=0.1,test=0.2, got {text!r}") from None


def cmd_pairs(args: argparse.Namespace) -> int:
    """Generate balanced matched/mismatched pairs (same seed, same file) and optional triplets."""
    index = load_index(args.root, args.kind)
    if args.people:
        index = index.subset(
            {name for people in read_lfw_people(args.people) for name in people},
            name=f"{index.name}:{args.people.stem}",
        )
    if args.split:
        parts = split_identities(index, _fractions(args.split_fractions), seed=args.split_seed)
        if args.split not in parts:
            raise ValueError(f"--split {args.split!r} is not one of {sorted(parts)}")
        index = parts[args.split]
    pairs = generate_pairs(index, args.n_pairs, seed=args.seed, twin_share=args.twin_share, folds=args.folds)
    write_pairs(pairs, args.out, fmt=args.format)
    if args.people_out:
        atomic_write_text(args.people_out, format_lfw_people(index))
        print(f"{args.people_out}: {index.summary()}")
    twins = sum(p.twins for p in pairs)
    print(f"{args.out}: {len(pairs)} pairs from {index.summary()} ({twins} twin negatives)")
    if args.triplets:
        triplets = generate_triplets(index, args.n_triplets or args.n_pairs, seed=args.seed, twin_share=args.twin_share)
        write_triplets(triplets, args.triplets)
        print(f"{args.triplets}: {len(triplets)} triplets ({sum(t.twins for t in triplets)} with a twin negative)")
    return 0
