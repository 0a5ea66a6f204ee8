"""LFW protocol files (README.txt section 3 of the LFW distribution).

* pairs: ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` start with ``N`` (one set of N matched
  then N mismatched lines); View 2 ``pairs.txt`` starts with ``K N`` (K folds of N matched
  then N mismatched). Matched lines are ``name n1 n2``, mismatched ``name1 n1 name2 n2``.
  Folds are numbered from 0; View 1 pairs have no fold.
* people: ``peopleDevTrain.txt`` / ``peopleDevTest.txt`` are ``N`` then N ``name count`` lines;
  View 2 ``people.txt`` is the number of sets, then for each set its size and its lines.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from backbone.data.errors import DataError, Problem, existing
from backbone.data.index import IdentityIndex
from backbone.data.layouts.folders import read_identity_folders
from backbone.data.lists.pairs import Pair, check_inside_root
from backbone.data.text import text_lines
from backbone.labels import DIFFERENT, SAME

LFW_IMAGE_DIRS = ("lfw-deepfunneled", "lfw_funneled", "lfw-funneled", "lfw")
_LFW_NAME = re.compile(r"^(?P<name>[^/]+)/(?P=name)_(?P<number>\d{4})(?P<ext>\.\w+)$")


def _is_count(text: str) -> bool:
    """ASCII digits only, at most 9 (``str.isdigit`` also takes ``²``, which ``int`` refuses)."""
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()


def lfw_image_path(name: str, number: int, ext: str = ".jpg") -> str:
    """``George_W_Bush, 10`` -> ``George_W_Bush/George_W_Bush_0010.jpg``."""
    return f"{name}/{name}_{number:04d}{ext}"


def parse_lfw_image_path(path: str) -> tuple[str, int]:
    """Inverse of :func:`lfw_image_path`; raises ValueError for other names."""
    m = _LFW_NAME.match(path)
    if not m:
        raise ValueError(f"{path!r} is not named like LFW images (<Name>/<Name>_NNNN.<ext>)")
    return m["name"], int(m["number"])


def lfw_images_dir(root: str | Path) -> Path:
    """The folder holding ``<Person>/`` directories: ``root/lfw-deepfunneled`` or similar, else ``root``."""
    root = Path(root)
    for name in LFW_IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    return root


def read_lfw_index(root: str | Path) -> IdentityIndex:
    """Index an LFW copy; ``root`` is the images folder or the folder that contains it."""
    return read_identity_folders(lfw_images_dir(root))


def _header(path: Path, lines: list[str]) -> tuple[int, int | None]:
    fields = lines[0].split() if lines else []
    if len(fields) not in (1, 2) or not all(_is_count(f) for f in fields):
        raise DataError(f"{path}:1: expected a header 'N' or 'FOLDS N', got {lines[0] if lines else ''!r}")
    if len(fields) == 1:
        return 1, None
    return int(fields[0]), int(fields[1])


def read_lfw_pairs(path: str | Path, ext: str = ".jpg", allow_outside_root: bool = False) -> list[Pair]:
    """Parse an LFW pairs file; malformed or misplaced lines are all reported with numbers."""
    path = Path(path)
    lines = text_lines(path, "pair file")
    folds, per_fold = _header(path, lines)
    n = per_fold if per_fold is not None else int(lines[0].split()[0])
    body = [(i, line) for i, line in enumerate(lines[1:], start=2) if line.strip()]
    expected = folds * 2 * n
    if len(body) != expected:
        raise DataError(f"{path}: header {lines[0].strip()!r} promises {expected} pair lines, the file has {len(body)}")
    pairs: list[Pair] = []
    problems: list[Problem] = []
    for k, (lineno, line) in enumerate(body):
        fold = k // (2 * n) if per_fold is not None else None
        matched = (k % (2 * n)) < n
        fields = line.split()
        want = 3 if matched else 4
        kind = "matched 'name n1 n2'" if matched else "mismatched 'name1 n1 name2 n2'"
        numbers = fields[1:3] if matched else fields[1::2]
        if len(fields) != want or not all(_is_count(x) and int(x) >= 1 for x in numbers):
            problems.append(Problem(str(path), f"expected a {kind} line here, got {line!r}", lineno))
            continue
        if matched:
            a = lfw_image_path(fields[0], int(fields[1]), ext)
            b = lfw_image_path(fields[0], int(fields[2]), ext)
        else:
            a = lfw_image_path(fields[0], int(fields[1]), ext)
            b = lfw_image_path(fields[2], int(fields[3]), ext)
        pairs.append(Pair(a, b, SAME if matched else DIFFERENT, fold=fold, line=lineno))
    if problems:
        raise DataError(f"{path}: {len(problems)} malformed pair lines", problems)
    check_inside_root(((p, pair.line) for pair in pairs for p in (pair.path_a, pair.path_b)), path, allow_outside_root)
    return pairs


def format_lfw_pairs(pairs: Iterable[Pair]) -> str:
    """LFW pairs text; needs LFW-named images and, per fold, as many matched as mismatched pairs."""
    by_fold: dict[int | None, dict[int, list[Pair]]] = defaultdict(lambda: {SAME: [], DIFFERENT: []})
    for p in pairs:
        by_fold[p.fold][p.same].append(p)
    if not by_fold:
        raise ValueError("no pairs to write")
    if None in by_fold and len(by_fold) > 1:
        raise ValueError("either every pair has a fold or none has one")
    sizes = {len(v[SAME]) for v in by_fold.values()} | {len(v[DIFFERENT]) for v in by_fold.values()}
    if len(sizes) != 1:
        raise ValueError("the LFW format needs the same number of matched and mismatched pairs in every fold")
    n = sizes.pop()
    if None in by_fold:
        header = f"{n}"
    else:
        if sorted(by_fold) != list(range(len(by_fold))):
            raise ValueError(f"folds must be numbered 0..K-1, got {sorted(by_fold)}")
        header = f"{len(by_fold)}\t{n}"
    rows = [header]
    for fold in sorted(by_fold, key=lambda f: -1 if f is None else f):
        for p in by_fold[fold][SAME]:
            (na, ia), (nb, ib) = parse_lfw_image_path(p.path_a), parse_lfw_image_path(p.path_b)
            if na != nb:
                raise ValueError(f"matched pair of two names: {p.path_a}, {p.path_b}")
            rows.append(f"{na}\t{ia}\t{ib}")
        for p in by_fold[fold][DIFFERENT]:
            (na, ia), (nb, ib) = parse_lfw_image_path(p.path_a), parse_lfw_image_path(p.path_b)
            rows.append(f"{na}\t{ia}\t{nb}\t{ib}")
    return "\n".join(rows) + "\n"


def format_lfw_people(index: IdentityIndex) -> str:
    """One people set in LFW's format (``peopleDevTrain.txt``): the count, then ``name images`` per identity."""
    people = sorted(index.by_identity.items())
    return "\n".join([str(len(people))] + [f"{name}\t{len(paths)}" for name, paths in people]) + "\n"


def read_lfw_people(path: str | Path) -> list[dict[str, int]]:
    """Parse a people file into a list of sets, each ``name -> image count``.

    ``peopleDev*.txt`` gives one set; View 2 ``people.txt`` gives ten.
    """
    path = existing(path, "people file")
    lines = [(i, line.split()) for i, line in enumerate(text_lines(path, "people file"), start=1)]
    lines = [(i, f) for i, f in lines if f]
    if not lines or len(lines[0][1]) != 1 or not _is_count(lines[0][1][0]):
        raise DataError(f"{path}:1: expected a count on the first line")
    # One set if the second line is already 'name count'; else a count of sets.
    multi = len(lines) > 1 and len(lines[1][1]) == 1
    pos = 1
    n_sets = int(lines[0][1][0]) if multi else 1
    sets: list[dict[str, int]] = []
    for _ in range(n_sets):
        if multi:
            if pos >= len(lines) or len(lines[pos][1]) != 1 or not _is_count(lines[pos][1][0]):
                lineno = lines[pos][0] if pos < len(lines) else len(lines) + 1
                raise DataError(f"{path}:{lineno}: expected the size of set {len(sets) + 1}")
            size, pos = int(lines[pos][1][0]), pos + 1
        else:
            size = int(lines[0][1][0])
        people: dict[str, int] = {}
        for lineno, fields in lines[pos : pos + size]:
            if len(fields) != 2 or not _is_count(fields[1]):
                raise DataError(f"{path}:{lineno}: expected 'name image_count', got {' '.join(fields)!r}")
            people[fields[0]] = int(fields[1])
        if len(people) != size:
            raise DataError(f"{path}: set {len(sets) + 1} promises {size} people, found {len(people)}")
        sets.append(people)
        pos += size
    if pos != len(lines):
        raise DataError(f"{path}:{lines[pos][0]}: unexpected line after the last set")
    return sets
