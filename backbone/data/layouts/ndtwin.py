"""Reader for ND-TWIN-style data: identity folders plus ``pairs.json`` listing twin siblings.

``pairs.json`` is ``[["folderA", "folderB"], ...]``; each listed pair becomes one group, so
pair generation can draw hard negatives from twin siblings.
"""

from __future__ import annotations

import json
from pathlib import Path

from backbone.data.errors import DataError, Problem
from backbone.data.index import IdentityIndex
from backbone.data.layouts.folders import read_identity_folders, scan_identity_folders
from backbone.data.text import read_text

TWIN_PAIRS_FILE = "pairs.json"


def twin_group_name(a: str, b: str) -> str:
    """The group name of two twin siblings, independent of their order."""
    return "+".join(sorted((a, b)))


def read_twin_pairs(path: str | Path, known: set[str] | None = None) -> dict[str, str]:
    """Parse a twin ``pairs.json`` into identity -> group, checking every entry."""
    path = Path(path)
    try:
        entries = json.loads(read_text(path, "twin pairs file"))
    except DataError:
        raise  # the file itself cannot be read (read_text says why)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # numbers of over 4300 digits, nesting deeper than Python's stack
        raise DataError(f"{path}: not a twin list JSON can hold ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a JSON list of [folderA, folderB] pairs")
    groups: dict[str, str] = {}
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        where = f"{path} entry {i}"
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)):
            problems.append(Problem(where, f"expected [folderA, folderB], got {entry!r}"))
            continue
        a, b = entry
        if a == b:
            problems.append(Problem(where, f"a folder cannot be its own twin: {a!r}"))
            continue
        bad = [f"folder {n!r} has no images" for n in (a, b) if known is not None and n not in known]
        bad += [f"folder {n!r} is already a twin in {groups[n]!r}" for n in (a, b) if n in groups]
        if bad:
            problems.extend(Problem(where, message) for message in bad)
            continue
        groups[a] = groups[b] = twin_group_name(a, b)
    if problems:
        raise DataError(f"{path}: {len(problems)} bad twin pair entries", problems)
    return groups


def read_twin_folders(root: str | Path, pairs_file: str = TWIN_PAIRS_FILE) -> IdentityIndex:
    """Index identity folders under ``root`` with twin groups from ``root/pairs_file``."""
    root = Path(root)
    known = set(scan_identity_folders(root))
    groups = read_twin_pairs(root / pairs_file, known=known)
    return read_identity_folders(root, groups=groups)
