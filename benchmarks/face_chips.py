"""Which face chip suits the ``dlib_resnet`` backbone best, measured on LFW View 1: the cosine
threshold of the best accuracy on ``pairsDevTrain.txt``, accuracy and AUC on ``pairsDevTest.txt``.

.venv/bin/python benchmarks/face_chips.py [--lfw ../shared/data/lfw]
.venv/bin/python benchmarks/face_chips.py --template   # recompute LANDMARK_TEMPLATE

Rows: the workbook's two chips in dlib's frame, ``chip: dlib`` (dlib's 5-point shape predictor
inside MTCNN's box) and ``chip: landmarks`` (MTCNN's own 5 landmarks on ``LANDMARK_TEMPLATE``);
dlib's whole pipeline for reference (its HOG detector, the same shape predictor and
``get_face_chip``; where HOG finds no face, the ``chip: dlib`` chip); and ``chip: dlib`` with
test-time flip averaging (``model.flip_average``).

``--template`` puts every third DevTrain image through dlib's own pipeline, finds MTCNN's 5
landmarks on those chips and prints their mean: the template ``backbone.data.faces.align`` maps
MTCNN's landmarks onto.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from dlib_resnet import cosine_scores, embed, lfw_chips
from PIL import Image
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from backbone.data.faces.align import DLIB_CHIP_PADDING, LANDMARK_TEMPLATE_SIZE, AlignConfig, FaceAligner
from backbone.data.images import load_rgb_array
from backbone.evaluation.metrics import best_accuracy_threshold, confusion_at
from backbone.models.dlib_resnet import load_dlib_resnet


class DlibPipeline:
    """dlib's own face chips: its HOG detector (the face nearest the image centre), the 5-point
    shape predictor the workbook's ``chip: dlib`` uses, ``get_face_chip`` at 150 px."""

    def __init__(self):
        import dlib

        self.dlib, self.detector = dlib, dlib.get_frontal_face_detector()
        self.predictor = FaceAligner(AlignConfig(size=LANDMARK_TEMPLATE_SIZE, chip="dlib")).shape_predictor

    def chip(self, path: Path) -> np.ndarray | None:
        """The chip of the image at ``path``, or None when HOG finds no face."""
        pixels = load_rgb_array(path)
        found = self.detector(pixels, 1)
        if not found:
            return None
        middle = np.array(pixels.shape[1::-1]) / 2
        box = min(found, key=lambda r: np.hypot(r.center().x - middle[0], r.center().y - middle[1]))
        shape = self.predictor(pixels, box)
        return np.array(self.dlib.get_face_chip(pixels, shape, LANDMARK_TEMPLATE_SIZE, DLIB_CHIP_PADDING))


def template(lfw: Path) -> np.ndarray:
    """The mean of MTCNN's landmarks on dlib-pipeline chips of every third DevTrain image (5, 2)."""
    from facenet_pytorch import MTCNN

    from backbone.data.layouts.load import load_index
    from backbone.data.lists.pairs import read_pairs

    index = load_index(lfw)
    pairs = read_pairs(lfw / "pairsDevTrain.txt", root=index.root)
    paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})[::3]
    pipeline, mtcnn = DlibPipeline(), MTCNN(post_process=False, selection_method="center_weighted_size")
    points = []
    for path in tqdm(paths, desc="dlib chips", unit="image"):
        chip = pipeline.chip(index.root / path)
        if chip is None:
            continue
        image = Image.fromarray(chip)
        boxes, probs, landmarks = mtcnn.detect(image, landmarks=True)
        if boxes is not None:
            _, _, chosen = mtcnn.select_boxes(boxes, probs, landmarks, image, method="center_weighted_size")
            points.append(np.asarray(chosen[0], dtype=np.float64))
    print(f"{len(points)} of {len(paths)} DevTrain images: HOG face and MTCNN landmarks on its chip")
    return np.stack(points).mean(0)


def dlib_pipeline(lfw: Path, pairs: list, fallback: dict[str, np.ndarray]) -> tuple[list, dict[str, np.ndarray]]:
    """dlib's own chips of the images of ``pairs`` (``DlibPipeline``); ``fallback``'s chip where
    HOG finds no face."""
    from backbone.data.layouts.load import load_index

    root, pipeline = load_index(lfw).root, DlibPipeline()
    out = {path: pipeline.chip(root / path) for path in tqdm(fallback, desc="dlib's pipeline", unit="image")}
    missed = [path for path, chip in out.items() if chip is None]
    out.update({path: fallback[path] for path in missed})
    print(f"dlib's HOG detector found no face in {len(missed)} of {len(fallback)} images (their MTCNN chip is used)")
    return pairs, out


def descriptors(net, chips: dict[str, np.ndarray], batch: int, flip: bool) -> dict[str, np.ndarray]:
    """dlib descriptors of ``chips`` by path; with ``flip``, summed with those of the mirror images."""
    stacked = np.stack(list(chips.values()))
    out = embed(net, stacked, batch)
    if flip:
        out = out + embed(net, np.ascontiguousarray(stacked[:, :, ::-1]), batch)
    return dict(zip(chips, out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    parser.add_argument("--template", action="store_true", help="recompute the landmark template instead")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.template:
        print("LANDMARK_TEMPLATE =", tuple(tuple(round(float(v), 2) for v in row) for row in template(args.lfw)))
        return
    net = load_dlib_resnet()
    chips = {split: {chip: lfw_chips(args.lfw, split, chip) for chip in ("dlib", "landmarks")}
             for split in ("DevTrain", "DevTest")}  # fmt: skip
    rows = {
        "chip: dlib (the default)": {split: chips[split]["dlib"] for split in chips},
        "chip: landmarks": {split: chips[split]["landmarks"] for split in chips},
        "dlib's own pipeline (HOG detector)": {
            split: dlib_pipeline(args.lfw, *chips[split]["dlib"]) for split in chips
        },
    }
    print("| chips | flip-averaged | DevTrain threshold | DevTest accuracy | DevTest AUC |\n|---|---|---:|---:|---:|")
    for name, flip in [(name, False) for name in rows] + [("chip: dlib (the default)", True)]:
        (train_pairs, train), (test_pairs, test) = rows[name]["DevTrain"], rows[name]["DevTest"]
        threshold = best_accuracy_threshold(*cosine_scores(train_pairs, descriptors(net, train, args.batch_size, flip)))
        scores, labels = cosine_scores(test_pairs, descriptors(net, test, args.batch_size, flip))
        accuracy = confusion_at(scores, labels, threshold)["accuracy"]
        print(
            f"| {name} | {'yes' if flip else 'no'} | {threshold:.4f} | {accuracy:.4f} | {roc_auc_score(labels, scores):.4f} |"
        )


if __name__ == "__main__":
    main()
