"""Reader for CelebA identities: ``identity_CelebA.txt`` (``image_name identity_id``) beside an image folder."""

from __future__ import annotations

import os
from pathlib import Path

from backbone.data.errors import DataError, Problem
from backbone.data.index import IdentityIndex, ImageRecord
from backbone.data.text import text_lines

CELEBA_IDENTITY_FILE = "identity_CelebA.txt"
CELEBA_IMAGE_DIRS = ("img_align_celeba", "img_celeba", "images")


def find_celeba_images(root: Path) -> Path:
    for name in CELEBA_IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"no CelebA image folder under {root} (looked for {', '.join(CELEBA_IMAGE_DIRS)})")


def read_celeba(
    root: str | Path, identity_file: str = CELEBA_IDENTITY_FILE, images_dir: str | None = None
) -> IdentityIndex:
    """Index CelebA images by identity id. Malformed lines and missing images raise, all listed."""
    root = Path(root)
    ident_path = root / identity_file
    images = root / images_dir if images_dir else find_celeba_images(root)
    if not ident_path.is_file():
        raise DataError(f"CelebA identity file {ident_path} does not exist")
    with os.scandir(images) as entries:
        present = {e.name for e in entries if e.is_file()}
    records: list[ImageRecord] = []
    problems: list[Problem] = []
    listed: dict[str, int] = {}  # image name -> line
    for lineno, line in enumerate(text_lines(ident_path, "CelebA identity file"), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            problems.append(Problem(str(ident_path), f"expected 'image_name identity_id', got {line!r}", lineno))
            continue
        name, ident = fields
        if name in listed:
            problems.append(
                Problem(str(ident_path), f"image {name} is listed again (first at line {listed[name]})", lineno)
            )
            continue
        listed[name] = lineno
        if name not in present:
            problems.append(Problem(str(ident_path), f"image {images.name}/{name} does not exist", lineno))
            continue
        records.append(ImageRecord(path=f"{images.name}/{name}", identity=ident))
    if problems:
        raise DataError(f"{ident_path}: {len(problems)} bad lines", problems)
    if not records:
        raise DataError(f"{ident_path} lists no images")
    return IdentityIndex.from_records(root, records, name=root.name)
