"""Which test-time views help the pretrained port, chosen on LFW View 1's training and validation
pairs (never on pairsDevTest): 10-fold accuracy (LFW's protocol, thresholds from the other nine
folds) and AUC of each variant on the same pairs.

    .venv/bin/python benchmarks/test_time.py [--lfw ../shared/data/lfw] [--pairs FILE ...]

A variant is the flip-averaged pretrained model with another ``tta_zoom`` (``SiameseNet.views``:
the face, its zooms to z and 1/z, each mirrored). The network runs once per distinct view of every
face and a variant sums the views it has, so the variants cost what their views cost together; a
check first asserts that those sums are the model's own ``embed``. The faces are the flip recipe's
(dlib chips in MTCNN's box, with the dark retry): about 40 s a view for the 6,817 faces of the two
default pair files on 2 CPU cores, 14 views in all.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from backbone.data.faces.cache import open_faces
from backbone.data.faces.transforms import Standardise
from backbone.data.layouts.load import load_index
from backbone.data.lists.pairs import read_pairs
from backbone.evaluation.checkpoints import checkpoint_align_config
from backbone.evaluation.metrics import lfw_protocol, verification_metrics
from backbone.evaluation.pretrained import FLIP_MODEL, pretrained_checkpoint
from backbone.models import build_model, load_model
from backbone.models.siamese import zoom

ZOOMS = (None, 0.95, 0.9, 0.85)


def view(x: torch.Tensor, factor: float | None, mirror: bool) -> torch.Tensor:
    """One of ``SiameseNet.views``: ``x`` zoomed by ``factor`` (None: as it is), then mirrored or not."""
    x = zoom(x, factor) if factor else x
    return x.flip(-1) if mirror else x


def views_of(z: float | None) -> list[tuple[float | None, bool]]:
    """The views a flip-averaged model with ``tta_zoom`` z sums, in ``SiameseNet.views``' order."""
    factors = [None] + ([z, 1.0 / z] if z else [])
    return [(f, m) for m in (False, True) for f in factors]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", default="../shared/data/lfw")
    parser.add_argument("--pairs", nargs="+", default=["files/lfw_val_pairs.tsv", "files/lfw_train_pairs.tsv"])
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args()

    checkpoint = pretrained_checkpoint(FLIP_MODEL)
    model, config, ckpt = load_model(checkpoint)
    index = load_index(args.lfw)
    pairs = [p for f in args.pairs for p in read_pairs(f, root=index.root)]
    paths = sorted({x for p in pairs for x in (p.path_a, p.path_b)})
    faces = open_faces(index.only_paths(set(paths)), checkpoint_align_config(ckpt, config.image_size))
    crops = Standardise()(torch.stack([faces(p) for p in tqdm(paths, desc="faces")]))
    labels = np.array([p.same for p in pairs])
    rows = {p: i for i, p in enumerate(paths)}
    a, b = (torch.tensor([rows[getattr(p, side)] for p in pairs]) for side in ("path_a", "path_b"))
    folds = np.random.default_rng(0).permutation(len(pairs)) % args.folds
    print(f"{len(pairs)} pairs ({', '.join(args.pairs)}), {len(paths)} faces, {checkpoint.name}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip

    with torch.inference_mode():
        for z in ZOOMS[1:]:  # the sums below are what the model itself embeds
            tta = build_model(dataclasses.replace(config, tta_zoom=z), load_pretrained=False).eval()
            tta.load_state_dict(model.state_dict())
            x = crops[:4]
            by_views = F.normalize(sum(model.net(view(x, f, m)) for f, m in views_of(z)), dim=1)
            assert torch.allclose(tta.embed(x), by_views, atol=1e-5), f"views_of({z}) is not SiameseNet.views"
        outputs = {}
        for f, m in tqdm(sorted({v for z in ZOOMS for v in views_of(z)}, key=str), desc="views"):
            outputs[f, m] = torch.cat([model.net(view(crops[i : i + 128], f, m)) for i in range(0, len(crops), 128)])

    variants = {"the face alone": [(None, False)]}
    variants.update({("flip" + (f" + zoom {z:g}/{1 / z:.3g}" if z else "")): views_of(z) for z in ZOOMS})
    print(f"| variant | views | {args.folds}-fold accuracy ± SE | errors | AUC ± SE |\n|---|---|---|---|---|")
    for name, views in variants.items():
        e = F.normalize(sum(outputs[v] for v in views), dim=1)
        scores = (e[a] * e[b]).sum(1).numpy()
        folds_ = lfw_protocol(scores, labels, folds)
        m = verification_metrics(scores, labels, threshold=None)
        errors = round((1 - folds_["accuracy_mean"]) * len(pairs))
        print(f"| {name} | {len(views)} | {folds_['accuracy_mean']:.4f} ± {folds_['accuracy_sem']:.4f} | {errors} "
              f"| {m['auc']:.5f} ± {m['auc_se']:.5f} |")  # fmt: skip


if __name__ == "__main__":
    main()
