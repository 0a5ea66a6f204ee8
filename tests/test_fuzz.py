"""Property-based fuzzing (Hypothesis) of every reader of outside input.

The property, for each reader: **every input either parses or raises the project's own error type**,
:class:`backbone.data.errors.DataError` (:class:`~backbone.data.errors.ImageReadError` for images), whose
message names the file it read; never another exception. Where a ``DataError`` points at a line
(``file:N`` in its message or a ``Problem.line``), that line must exist in the file as an editor counts
lines (``\\n``, ``\\r\\n`` or ``\\r``). Valid files, built from strategies, must parse to what they say
(TSV pairs, scores and triplets also round-trip through their writers), so every test can fail both ways.
A loaded ``TrainConfig`` must hold values of the declared types, finite and inside the ranges their classes
state (``RANGES``), and come from a mapping (or an empty file).

Readers: ``read_pairs`` (TSV and LFW format, with and without an image root), ``read_tsv_pairs``,
``read_tsv_table`` (through ``read_scores``), ``read_lfw_people``, ``read_twin_pairs`` (ND-TWIN
``pairs.json``), ``read_celeba`` (``identity_CelebA.txt``), ``read_triplets``, ``read_scores``,
``TrainConfig.load``, ``load_rgb`` and ``decode_rgb``.

Inputs are (a) arbitrary bytes (invalid UTF-8, a byte-order mark, NUL bytes, CR/LF mixes) and (b) valid
files with random mutations: fields dropped, duplicated, swapped, copied between lines or replaced by
non-digits, negative, unicode-digit (``²``), huge (5000-digit) numbers, ``../`` and absolute paths,
300-character names; lines dropped, duplicated, swapped, blank; tabs and spaces exchanged; bytes
inserted, flipped or cut. The training config gets YAML/JSON documents of its known keys (and their old
names) with values of the wrong type, raw YAML oddities and raw bytes. Images get random bytes, small real
PNG/JPEG/GIF/BMP/PPM images (numpy + PIL) with flipped, truncated and spliced bytes, headers claiming a
huge size (20000x20000 and more), and real images above a lowered ``BACKBONE_MAX_IMAGE_PIXELS``. Nothing
huge is ever allocated: an input whose header claims more than ``GUARD_PIXELS`` pixels that PIL would
still decode is skipped. ``test_classic_bad_inputs`` gives every reader a fixed list of known-nasty
inputs in every run, whatever the search draws.

Running::

    .venv/bin/python -m pytest tests/test_fuzz.py -q                        # CI: same inputs every run, ~1 min
    BACKBONE_FUZZ=long .venv/bin/python -m pytest tests/test_fuzz.py -q     # 20x the examples, new ones each run
    ... --hypothesis-show-statistics                                        # examples and timings per test

``BACKBONE_FUZZ`` picks the Hypothesis profile every test here uses (Hypothesis's own
``--hypothesis-profile`` does not apply to them): ``ci``, the default, with ``derandomize=True`` so that
CI is reproducible (about 9,900 examples), or ``long``, random, 20 times the examples (about 15 minutes on
2 cores); its failures are kept in ``.cache/hypothesis`` and replayed first next time, and
``--hypothesis-seed=N`` repeats a run. The terminal summary prints ``fuzz examples run: N``.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import tempfile
import types
import typing
import warnings
import zlib
from collections import Counter
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, reject, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from PIL import Image

from backbone.data.errors import DataError, ImageReadError
from backbone.data.images import decode_rgb, load_rgb
from backbone.data.layouts.celeba import CELEBA_IDENTITY_FILE, read_celeba
from backbone.data.layouts.lfw import lfw_image_path, read_lfw_people
from backbone.data.layouts.ndtwin import read_twin_pairs, twin_group_name
from backbone.data.lists.pairs import Pair, read_pairs, read_tsv_pairs, write_pairs
from backbone.data.lists.triplets import TRIPLET_COLUMNS, Triplet, read_triplets, write_triplets
from backbone.evaluation.scores import read_scores, write_scores
from backbone.labels import DIFFERENT, SAME
from backbone.training.config import MONITORS, PRECISIONS, RENAMED, TrainConfig
from backbone.training.optim import OPTIMISERS, SCHEDULERS
from backbone.training.regimes import REGIMES

PROJECT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------------------------
# profiles: BACKBONE_FUZZ=ci (default) or long; each test runs EXAMPLES * its weight examples

_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
# no explain phase: it traces a failing example line by line, which takes minutes in PyYAML's deep recursion
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile(
    "fuzz-ci",
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_HEALTH,
    phases=_PHASES,
)
settings.register_profile(
    "fuzz-long",
    max_examples=6000,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(str(PROJECT / ".cache" / "hypothesis")),
    deadline=None,
    suppress_health_check=_HEALTH,
    phases=_PHASES,
    print_blob=True,
)
PROFILE = os.environ.get("BACKBONE_FUZZ", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"BACKBONE_FUZZ must be ci or long, got {PROFILE!r}")
FUZZ = settings.get_profile(f"fuzz-{PROFILE}")
EXAMPLES = FUZZ.max_examples


def fuzz(weight: float = 1.0) -> settings:
    """The profile's settings with ``weight`` times its examples (slow readers get fewer)."""
    return settings(FUZZ, max_examples=max(1, round(EXAMPLES * weight)))


RUN: Counter[str] = Counter()  # examples run per test, printed in the terminal summary


class _ExampleCount:
    def pytest_terminal_summary(self, terminalreporter) -> None:
        if RUN:
            per_test = ", ".join(f"{name.removeprefix('test_')} {n}" for name, n in RUN.items())
            terminalreporter.write_line(f"fuzz examples run: {sum(RUN.values())} (profile {PROFILE}; {per_test})")


@pytest.fixture(scope="module", autouse=True)
def _count_examples(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("backbone-fuzz-count"):
        manager.register(_ExampleCount(), "backbone-fuzz-count")


def ran(name: str) -> None:
    RUN[name] += 1


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parent of one fresh temporary folder per example (function-scoped fixtures are not reset between examples)."""
    return tmp_path_factory.mktemp("fuzz")


# ---------------------------------------------------------------------------------------------------------------------
# the property


def editor_lines(data: bytes) -> int:
    """Lines as an editor counts them (``\\n``, ``\\r\\n``, ``\\r``; a final line break ends the last line)."""
    pieces = re.split(rb"\r\n|\r|\n", data)
    return len(pieces) - (1 if pieces[-1] == b"" else 0)


def check_data_error(exc: DataError, path: Path, data: bytes | None = None) -> None:
    """The error names the file; its line numbers (``file:N``, ``Problem.line``) are lines of ``data``."""
    text = str(exc)
    assert path.name in text, f"the error does not name the file {path.name!r}: {text!r}"
    for problem in exc.problems:
        assert path.name in str(problem), f"a problem does not name the file {path.name!r}: {problem}"
    if data is None:
        return
    lines = [p.line for p in exc.problems if p.line is not None]
    lines += [int(n) for n in re.findall(re.escape(str(path)) + r":(\d+)", text)]
    last = editor_lines(data) + 1  # one past the end: "expected more lines"
    for line in lines:
        assert 1 <= line <= last, f"line {line} is not a line of the {last - 1}-line file: {text!r}"


def parse_or_data_error(read, path: Path, data: bytes | None = None):
    """``read()``'s result, or the ``DataError`` it raised (checked). Any other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. DataWarning: a file with no pairs
            return read()
    except DataError as exc:
        check_data_error(exc, path, data)
        return exc
    except RecursionError as exc:
        recursion = str(exc)
    # raised out here, without the RecursionError's varying origin: Hypothesis sees one failure, not a flaky one
    raise AssertionError(f"RecursionError (not a DataError) reading {path.name}: {recursion}")


def fresh_dir(parent: Path) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(dir=parent)


# ---------------------------------------------------------------------------------------------------------------------
# strategies: text fields, bytes, mutations

WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())  # what str.split() splits at
ROOTWARD = "/\\:~"  # valid image paths stay inside the data root: no absolute, drive, home or ../ paths


def _chars(exclude: str) -> st.SearchStrategy[str]:
    return st.characters(exclude_categories=["Cs"], exclude_characters=exclude)


# a valid path in a TSV file: any text but tab and line ends (form feeds, U+2028 and the like are text), in the root
_segment = st.text(_chars("\t\n\r" + ROOTWARD), min_size=1, max_size=8).filter(lambda s: s != "..")
tsv_path = st.lists(_segment, min_size=1, max_size=3).map("/".join)
# a valid name in a whitespace-separated file (LFW, people, CelebA)
word = st.text(_chars(WHITESPACE + ROOTWARD), min_size=1, max_size=12).filter(lambda s: s != "..")
any_text = st.text(max_size=12)

NASTY = [
    *("", " ", "  ", "\t", "-", "abc", "x y", "x\ty", "0", "1", "2", "7", "01", "0001", "+1", "-1", "-0", "1.5"),
    *("1e3", "1_000", "0x10", "nan", "inf", "-inf", "NaN", "Infinity", "true", "null", "None", "[]", "{}", "%s"),
    *("9" * 25, "9" * 5000, "1" * 4301, "\u00b2", "\u0663", "\uff11", "\u00bd", "\u2167", "\u00b9\u00b2"),
    *("..", "../x.jpg", "../../etc/passwd", "/etc/passwd", "/", "//x", "C:\\x.jpg", "~/x.jpg", "./x.jpg"),
    *("a" * 300, "d/" + "b" * 256, "\x00", "nul\x00name", "\ufeff", "\ufeffx", "\u200b", "\xa0", "é", "\U0001f600"),
    *("x\ry", "x\x0cy", "x\x0by", "x\x1cy", "x\x85y", "x\u2028y", "\\", '"', "'", "#", "x.jpg\n"),
]
# numbers as the readers may meet them: what str.isdigit() accepts but int() refuses, more digits than int() reads
NUMBERISH = ["\u00b2", "\u0663", "\uff11", "9" * 5000, "1" * 4301, "-1", "0", "+1", "1.5", " 1", "01", "9" * 25]
field_value = st.one_of(
    st.sampled_from(NUMBERISH), st.sampled_from(NASTY), any_text, st.integers(-(10**30), 10**30).map(str)
)
raw_line = st.one_of(st.sampled_from(NASTY), st.text(max_size=30), st.lists(field_value, max_size=5).map("\t".join))
BAD_BYTES = [
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xc3(",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\x00",
    b"\r",
    b"\x1a",
]

FIELD_OPS = ("drop_field", "dup_field", "swap_fields", "copy_field", "replace_field", "append_to_field")
LINE_OPS = ("drop_line", "dup_line", "swap_lines", "insert_line", "blank_line", "resep_line")
BYTE_OPS = ("bom", "bad_bytes", "insert_bytes", "flip_byte", "truncate", "cp1252", "lone_cr")
# replacing and copying fields finds most: they come up more often
WEIGHTED_OPS = FIELD_OPS + ("replace_field",) * 4 + ("copy_field",) * 2 + LINE_OPS + ("dup_line",) + BYTE_OPS
SEPARATORS = ("\t", " ", "  ", " \t", "\t\t", "\x0b", "\xa0", "\u3000")


@st.composite
def perturbed(draw, rows: list[list[str]], seps: tuple[str, ...] = ("\t",), mutate: bool = True):
    """``(bytes, mutations)``: ``rows`` (lists of fields) joined by a separator from ``seps`` and by
    line breaks (``\\n``, ``\\r\\n`` or a mix: all valid), then mutated at random."""
    lines = [[list(r), draw(st.sampled_from(seps))] for r in rows]
    ops = draw(st.lists(st.sampled_from(WEIGHTED_OPS), max_size=4)) if mutate else []
    index = st.integers(0, 10**6)
    for op in ops:
        if op in FIELD_OPS and lines:
            fields_ = lines[draw(index) % len(lines)][0]
            i, j = (draw(index) % len(fields_), draw(index) % len(fields_)) if fields_ else (0, 0)
            if op == "drop_field" and fields_:
                del fields_[i]
            elif op == "dup_field" and fields_:
                fields_.insert(i, fields_[i])
            elif op == "swap_fields" and fields_:
                fields_[i], fields_[j] = fields_[j], fields_[i]
            elif op == "copy_field":
                other = lines[draw(index) % len(lines)][0]
                if fields_ and other:
                    fields_[i] = other[draw(index) % len(other)]
            elif op == "replace_field":
                if fields_:
                    fields_[i] = draw(field_value)
                else:
                    fields_.append(draw(field_value))
            elif op == "append_to_field" and fields_:
                fields_[i] += draw(field_value)
        elif op in LINE_OPS:
            i, j = draw(index) % (len(lines) + 1), draw(index) % (len(lines) + 1)
            if op == "drop_line" and i < len(lines):
                del lines[i]
            elif op == "dup_line" and i < len(lines):
                lines.insert(j, [list(lines[i][0]), lines[i][1]])
            elif op == "swap_lines" and max(i, j) < len(lines):
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "insert_line":
                lines.insert(i, [[draw(raw_line)], ""])
            elif op == "blank_line":
                lines.insert(i, [[draw(st.sampled_from(["", " ", "\t", "  \t "]))], ""])
            elif op == "resep_line" and i < len(lines):
                lines[i][1] = draw(st.sampled_from(SEPARATORS))
    eol = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    ends = [draw(st.sampled_from(["\n", "\r\n"])) if eol == "mixed" else eol for _ in lines]
    text = "".join(sep.join(f) + end for (f, sep), end in zip(lines, ends))
    if lines and not draw(st.booleans()):
        text = text.rstrip("\r\n")  # no final line break
    data = text.encode("utf-8")
    for op in ops:
        if op not in BYTE_OPS:
            continue
        at = draw(st.integers(0, len(data)))
        if op == "bom":
            data = b"\xef\xbb\xbf" + data
        elif op == "bad_bytes":
            data = data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
        elif op == "insert_bytes":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif op == "flip_byte" and at < len(data):
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif op == "truncate":
            data = data[:at]
        elif op == "cp1252":
            data = text.encode("cp1252", errors="replace")
        elif op == "lone_cr" and b"\n" in data:
            at = data.find(b"\n", at % len(data))
            data = data[: at - (data[at - 1 : at] == b"\r")] + b"\r" + data[at + 1 :] if at >= 0 else data
    return data, ops


arbitrary_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from([b"\t", b" ", b"\n", b"\r\n", b"\r", b"0", b"1", b"2", b"a", b"\xff", b"\x00"]), max_size=40
    ).map(b"".join),
    st.text(max_size=80).map(lambda t: t.encode("utf-8")),
)
BYTES_EXAMPLES = [b"\xff", b"\xef\xbb\xbf", b"a\x00b", b"\xc3(\n", b"1\r\n2\r3\n", b"\n\n\n"]


# ---------------------------------------------------------------------------------------------------------------------
# pair files: TSV and LFW (read_pairs, read_tsv_pairs, read_tsv_table, read_lfw_pairs)

PRESENT = ("alice/alice_0001.jpg", "bob/bob 0002.jpg", "\u00e7a/\u00fc.png", "x.jpg", "Jo_Do/Jo_Do_0001.jpg")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root where the ``PRESENT`` images exist (empty files: only existence is checked)."""
    root = tmp_path_factory.mktemp("root")
    for name in PRESENT:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


pair_path = st.one_of(st.sampled_from(PRESENT), tsv_path)


@st.composite
def tsv_pair_table(draw, extra: tuple[str, ...] = ()):
    """``(rows, pairs, scores)`` of a valid TSV pair file; columns in any order, fold and twins optional."""
    optional = sorted(draw(st.sets(st.sampled_from(["fold", "twins"]))))
    columns = draw(st.permutations(["path_a", "path_b", "same", *optional, *extra]))
    rows, pairs, scores = [list(columns)], [], []
    for _ in range(draw(st.integers(0, 5))):
        same = draw(st.sampled_from([SAME, DIFFERENT]))
        twins = "twins" in columns and same == DIFFERENT and draw(st.booleans())
        fold = draw(st.one_of(st.none(), st.integers(0, 20))) if "fold" in columns else None  # -1 is refused
        score = draw(st.floats(allow_nan=False, allow_infinity=False))
        score_text = draw(st.sampled_from(["{!r}", "{:.6f}", "{:e}", " {} "])).format(score)
        value = {
            "path_a": draw(pair_path),
            "path_b": draw(pair_path),
            "same": str(same),
            "fold": draw(st.sampled_from(["", "-"])) if fold is None else str(fold),
            "twins": str(int(twins)),
            "score": score_text,
        }
        rows.append([value[c] for c in columns])
        pairs.append(Pair(value["path_a"], value["path_b"], same, fold, twins))
        scores.append(float(score_text))
    return rows, pairs, scores


@fuzz(1.5)
@given(data=arbitrary_bytes, suffix=st.sampled_from([".tsv", ".txt"]))
def test_pair_files_arbitrary_bytes(fuzz_dir, data, suffix):
    """read_pairs (TSV and LFW format) and read_tsv_pairs on arbitrary bytes."""
    ran("test_pair_files_arbitrary_bytes")
    for reader in ("read_pairs-tsv", "read_tsv_pairs") if suffix == ".tsv" else ("read_pairs-lfw",):
        read_as(reader, fuzz_dir, data)


@fuzz(2)
@given(table=tsv_pair_table(), use_root=st.booleans(), st_data=st.data())
def test_tsv_pairs_perturbed(fuzz_dir, image_root, table, use_root, st_data):
    """read_pairs on valid TSV pair files (must parse) and mutated ones; with a root, images are checked."""
    ran("test_tsv_pairs_perturbed")
    rows, expected, _ = table
    data, ops = st_data.draw(perturbed(rows))
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "fuzz pairs.tsv"
        path.write_bytes(data)
        root = image_root if use_root else None
        got = parse_or_data_error(lambda: read_pairs(path, root=root), path, data)
    if not ops and (root is None or all(p in PRESENT for pair in expected for p in (pair.path_a, pair.path_b))):
        assert got == expected, f"a valid pair file did not read back: {got!r}"


def leaves_root(path: str) -> bool:
    """Whether a path may point outside the data root (readers may refuse those by design)."""
    return path.startswith(("/", "\\", "~")) or ":" in path or ".." in re.split(r"[/\\]", path)


inside_path = any_text.filter(lambda p: not leaves_root(p))  # any text a writer accepts: line breaks too
pair_record = st.builds(
    lambda a, b, same, fold, twins: Pair(a, b, same, fold, twins and same == DIFFERENT),
    inside_path,
    inside_path,
    st.sampled_from([SAME, DIFFERENT]),
    st.one_of(st.none(), st.integers(-5, 10**6)),
    st.booleans(),
)


@fuzz(1)
@given(pairs=st.lists(pair_record, max_size=5), fmt=st.sampled_from([".tsv", ".TSV"]))
def test_tsv_pairs_round_trip(fuzz_dir, pairs, fmt):
    """write_pairs then read_pairs gives the pairs back (or write_pairs refuses them with ValueError)."""
    ran("test_tsv_pairs_round_trip")
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / f"round trip{fmt}"
        try:
            write_pairs(pairs, path)
        except ValueError:
            return  # the writer refuses pairs it cannot write (a tab or line break in a path, a negative fold)
        data = path.read_bytes()
        got = parse_or_data_error(lambda: read_pairs(path), path, data)
    assert got == pairs, f"write_pairs wrote {data!r}, read_pairs read {got!r}"


lfw_number = st.integers(1, 99999).flatmap(lambda n: st.sampled_from([str(n), f"{n:04d}"]))


@st.composite
def lfw_pair_table(draw):
    """``(rows, pairs)`` of a valid LFW pairs file: ``N`` (View 1) or ``K N`` (View 2)."""
    folds = draw(st.one_of(st.none(), st.integers(1, 3)))
    n = draw(st.integers(0, 3))
    rows, pairs = [[str(n)] if folds is None else [str(folds), str(n)]], []
    for k in range(folds or 1):
        for same in (SAME, DIFFERENT):
            for _ in range(n):
                name_a, a = draw(word), draw(lfw_number)
                name_b, b = (name_a, draw(lfw_number)) if same == SAME else (draw(word), draw(lfw_number))
                rows.append([name_a, a, b] if same == SAME else [name_a, a, name_b, b])
                path_a, path_b = lfw_image_path(name_a, int(a)), lfw_image_path(name_b, int(b))
                pairs.append(Pair(path_a, path_b, same, None if folds is None else k))
    return rows, pairs


@fuzz(2)
@given(table=lfw_pair_table(), use_root=st.booleans(), st_data=st.data())
def test_lfw_pairs_perturbed(fuzz_dir, image_root, table, use_root, st_data):
    """read_pairs (read_lfw_pairs) on valid LFW pairs files (must parse) and mutated ones."""
    ran("test_lfw_pairs_perturbed")
    rows, expected = table
    data, ops = st_data.draw(perturbed(rows, seps=("\t", " ", "  ", " \t")))
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "fuzz pairs.txt"
        path.write_bytes(data)
        got = parse_or_data_error(lambda: read_pairs(path, root=image_root if use_root else None), path, data)
    if not ops and not use_root:
        assert got == expected, f"a valid LFW pairs file did not read back: {got!r}"


# ---------------------------------------------------------------------------------------------------------------------
# LFW people files (read_lfw_people)


@st.composite
def lfw_people_table(draw):
    """``(rows, sets)`` of a valid people file: ``N`` then N ``name count`` lines, or K sets of those."""
    multi = draw(st.booleans())
    sets = draw(
        st.lists(
            st.dictionaries(word, st.integers(0, 9999), max_size=4),
            min_size=1,
            max_size=3 if multi else 1,
        )
    )
    rows = [[str(len(sets))]] if multi else []
    for people in sets:
        rows.append([str(len(people))])
        rows += [[name, str(count)] for name, count in people.items()]
    return rows, sets


@fuzz(1)
@given(data=arbitrary_bytes)
def test_lfw_people_arbitrary_bytes(fuzz_dir, data):
    ran("test_lfw_people_arbitrary_bytes")
    read_as("read_lfw_people", fuzz_dir, data)


@fuzz(2)
@given(table=lfw_people_table(), st_data=st.data())
def test_lfw_people_perturbed(fuzz_dir, table, st_data):
    ran("test_lfw_people_perturbed")
    rows, expected = table
    data, ops = st_data.draw(perturbed(rows, seps=("\t", " ", "  ", " \t")))
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "fuzz people.txt"
        path.write_bytes(data)
        got = parse_or_data_error(lambda: read_lfw_people(path), path, data)
    if not ops:
        assert got == expected, f"a valid people file did not read back: {got!r}"


# ---------------------------------------------------------------------------------------------------------------------
# ND-TWIN pairs.json (read_twin_pairs)

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
RAW_JSON = [
    "NaN",
    "-Infinity",
    "1" * 5000,
    "1e99999",
    "[" * 5000 + "]" * 5000,
    '"\\ud800"',
    '["a", "\\u0000"]',
    "{}",
    '{"a": 1, "a": 2}',
    "[",
    '"',
]


@st.composite
def twin_document(draw):
    """``(bytes, known, groups, mutated)``: a valid or mutated ``pairs.json``."""
    names = draw(st.lists(any_text, unique=True, max_size=8))
    entries: list = [[a, b] for a, b in zip(names[::2], names[1::2])]
    known = draw(st.one_of(st.none(), st.sets(any_text, max_size=2).map(lambda extra: set(names) | extra)))
    groups = {n: twin_group_name(a, b) for a, b in entries for n in (a, b)}
    ops = draw(st.lists(st.sampled_from(["garbage", "self", "reuse", "unknown", "short", "long", "top"]), max_size=3))
    for op in ops:
        if not isinstance(entries, list):
            break
        i = draw(st.integers(0, len(entries)))
        if op == "garbage":
            entries.insert(i, draw(json_value))
        elif op == "self":
            entries.insert(i, [names[0], names[0]] if names else ["a", "a"])
        elif op == "reuse" and entries:
            entries.insert(i, json.loads(json.dumps(entries[i % len(entries)])))  # a copy of another entry
        elif op == "unknown":
            entries.insert(i, [draw(any_text), draw(any_text)])
        elif op == "short":
            entries.insert(i, [draw(any_text)])
        elif op == "long":
            entries.insert(i, [draw(any_text), draw(any_text), draw(any_text)])
        elif op == "top":
            entries = draw(json_value)
    text = json.dumps(entries, indent=draw(st.sampled_from([None, 0, 2, "\t"])), ensure_ascii=draw(st.booleans()))
    raw = draw(st.lists(st.tuples(st.sampled_from(RAW_JSON), st.integers(0, 10**6)), max_size=2))
    for fragment, at in raw:
        at %= len(text) + 1
        text = text[:at] + fragment + text[at:]
    lines = [[line] for line in text.split("\n")]
    data, byte_ops = draw(perturbed(lines, seps=("",), mutate=draw(st.booleans())))
    return data, known, groups, bool(ops or raw or byte_ops)


@fuzz(1)
@given(data=arbitrary_bytes, known=st.one_of(st.none(), st.sets(any_text, max_size=3)))
def test_twin_pairs_arbitrary_bytes(fuzz_dir, data, known):
    ran("test_twin_pairs_arbitrary_bytes")
    read_as("read_twin_pairs", fuzz_dir, data, known=known)


@fuzz(2)
@given(doc=twin_document())
def test_twin_pairs_perturbed(fuzz_dir, doc):
    ran("test_twin_pairs_perturbed")
    data, known, expected, mutated = doc
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "pairs.json"
        path.write_bytes(data)
        got = parse_or_data_error(lambda: read_twin_pairs(path, known=known), path, data)
    if not mutated:
        assert got == expected, f"a valid pairs.json did not read back: {got!r}"


# ---------------------------------------------------------------------------------------------------------------------
# CelebA identity_CelebA.txt (read_celeba)

celeba_name = word.filter(lambda n: "/" not in n and "\x00" not in n and n not in (".", "..") and len(n.encode()) < 200)


@st.composite
def celeba_table(draw):
    """``(rows, images, identities)``: valid ``image_name identity_id`` lines and the image files present."""
    names = draw(st.lists(celeba_name, unique=True, min_size=1, max_size=5))
    ids = [str(draw(st.integers(0, 10**12))) for _ in names]
    extra = draw(st.lists(celeba_name, max_size=2))
    return [[n, i] for n, i in zip(names, ids)], sorted(set(names) | set(extra)), dict(zip(names, ids))


def write_celeba(root: Path, data: bytes, images: list[str]) -> None:
    (root / "img_align_celeba").mkdir()
    for name in images:
        (root / "img_align_celeba" / name).write_bytes(b"")
    (root / CELEBA_IDENTITY_FILE).write_bytes(data)


@fuzz(1)
@given(data=arbitrary_bytes)
def test_celeba_arbitrary_bytes(fuzz_dir, data):
    ran("test_celeba_arbitrary_bytes")
    read_as("read_celeba", fuzz_dir, data)


@fuzz(2)
@given(table=celeba_table(), st_data=st.data())
def test_celeba_perturbed(fuzz_dir, table, st_data):
    ran("test_celeba_perturbed")
    rows, images, expected = table
    data, ops = st_data.draw(perturbed(rows, seps=("\t", " ", "  ", " \t")))
    with fresh_dir(fuzz_dir) as d:
        write_celeba(Path(d), data, images)
        got = parse_or_data_error(lambda: read_celeba(d), Path(d) / CELEBA_IDENTITY_FILE, data)
    if not ops:
        assert not isinstance(got, DataError), f"a valid identity file did not parse: {got}"
        assert {r.path: r.identity for r in got.records} == {f"img_align_celeba/{n}": i for n, i in expected.items()}


# ---------------------------------------------------------------------------------------------------------------------
# triplet files (read_triplets)


@st.composite
def triplet_table(draw):
    triplets = draw(
        st.lists(st.builds(Triplet, pair_path, pair_path, pair_path, twins=st.booleans()), max_size=5),
    )
    rows = [list(TRIPLET_COLUMNS)] + [[t.anchor, t.positive, t.negative, str(int(t.twins))] for t in triplets]
    return rows, triplets


@fuzz(1)
@given(data=arbitrary_bytes)
def test_triplets_arbitrary_bytes(fuzz_dir, data):
    ran("test_triplets_arbitrary_bytes")
    read_as("read_triplets", fuzz_dir, data)


@fuzz(2)
@given(table=triplet_table(), use_root=st.booleans(), st_data=st.data())
def test_triplets_perturbed(fuzz_dir, image_root, table, use_root, st_data):
    """read_triplets on valid files (written by write_triplets too: must parse) and mutated ones."""
    ran("test_triplets_perturbed")
    rows, expected = table
    data, ops = st_data.draw(perturbed(rows))
    root = image_root if use_root else None
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "fuzz triplets.tsv"
        path.write_bytes(data)
        got = parse_or_data_error(lambda: read_triplets(path, root=root), path, data)
        if not ops and (
            root is None or all(p in PRESENT for t in expected for p in (t.anchor, t.positive, t.negative))
        ):
            assert got == expected, f"a valid triplet file did not read back: {got!r}"
            write_triplets(expected, path)
            assert parse_or_data_error(lambda: read_triplets(path, root=root), path) == expected


# ---------------------------------------------------------------------------------------------------------------------
# score files (read_scores, read_tsv_table with an extra column)


@fuzz(1)
@given(data=arbitrary_bytes)
def test_scores_arbitrary_bytes(fuzz_dir, data):
    ran("test_scores_arbitrary_bytes")
    read_as("read_scores", fuzz_dir, data)


@fuzz(2)
@given(table=tsv_pair_table(extra=("score",)), st_data=st.data())
def test_scores_perturbed(fuzz_dir, table, st_data):
    ran("test_scores_perturbed")
    rows, pairs, scores = table
    data, ops = st_data.draw(perturbed(rows))
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "fuzz scores.tsv"
        path.write_bytes(data)
        got = parse_or_data_error(lambda: read_scores(path), path, data)
    if not ops and pairs:
        assert not isinstance(got, DataError), f"a valid score file did not parse: {got}"
        assert got.pairs == pairs and got.scores.tolist() == scores


@fuzz(1)
@given(
    pairs_scores=st.lists(
        st.tuples(pair_record, st.floats(allow_nan=False, allow_infinity=False)), min_size=1, max_size=4
    )
)
def test_scores_round_trip(fuzz_dir, pairs_scores):
    """write_scores then read_scores gives the pairs and the scores (to 6 decimals) back."""
    ran("test_scores_round_trip")
    pairs, scores = [p for p, _ in pairs_scores], [s for _, s in pairs_scores]
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "round trip scores.tsv"
        try:
            write_scores(path, pairs, scores)
        except ValueError:
            return  # a tab or line break in a path
        data = path.read_bytes()
        got = parse_or_data_error(lambda: read_scores(path), path, data)
    assert not isinstance(got, DataError), f"write_scores wrote {data!r}, read_scores raised {got}"
    assert got.pairs == pairs and got.scores.tolist() == [float(f"{s:.6f}") for s in scores]


# ---------------------------------------------------------------------------------------------------------------------
# training config YAML (TrainConfig.load)

garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_text
    | st.sampled_from(["three", "1.5", "", "null", "yes", "1e3", "cbam", "-1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
CHOICES = {
    "loss.regime": REGIMES.names(),
    "optim.name": OPTIMISERS.names(),
    "optim.scheduler": SCHEDULERS.names(),
    "precision": PRECISIONS,
    "monitor": tuple(MONITORS),
    "model.attention": (None, "cbam", "spatial", "transformer"),
    "model.distance": ("cosine", "euclidean", "sqeuclidean", "l1"),
    "data.align.detector": ("mtcnn", "none"),
}


def _hint_options(hint) -> tuple:
    return typing.get_args(hint) if typing.get_origin(hint) in (types.UnionType, typing.Union) else (hint,)


def _good_value(key: str, hint) -> st.SearchStrategy:
    if key in CHOICES:
        return st.sampled_from(CHOICES[key])
    by_type = {
        str: any_text,
        int: st.integers(0, 500),
        float: st.floats(0.001, 1.0) | st.integers(0, 5) | st.sampled_from([math.nan, math.inf, -1.0]),
        bool: st.booleans(),
        type(None): st.none(),
    }
    return st.one_of(*(by_type[t] for t in _hint_options(hint)))


def _config_doc(cls, prefix: str = "") -> st.SearchStrategy:
    """Mappings of ``cls``'s settings (nested ones recursively, plus their old ``RENAMED`` names), each a
    value of the right type or garbage; sometimes an unknown key."""
    hints = typing.get_type_hints(cls)
    optional = {}
    for f in fields(cls):
        key = prefix + f.name
        if is_dataclass(hints[f.name]):
            optional[f.name] = st.one_of(_config_doc(hints[f.name], key + "."), garbage)
        else:
            optional[f.name] = st.one_of(_good_value(key, hints[f.name]), _good_value(key, hints[f.name]), garbage)
    for old in RENAMED:
        if old.startswith(prefix) and "." not in old[len(prefix) :]:
            optional[old[len(prefix) :]] = st.one_of(st.floats(0, 1), st.integers(0, 3), garbage)
    unknown = st.one_of(
        st.just({}), st.just({}), st.just({}), st.dictionaries(any_text | st.integers(), garbage, max_size=2)
    )
    return st.tuples(st.fixed_dictionaries({}, optional=optional), unknown).map(lambda t: {**t[1], **t[0]})


RAW_YAML = [
    "\t",
    "!!python/object/apply:os.system ['true']",
    "&a [*a]",
    "*undefined",
    "[" * 1000,
    "{" * 1000,
    "- " * 1000 + "x",
    "? [a]\n: 1",
    "%YAML 9.9\n---\n",
    "--- a\n--- b\n",
    "epochs: 1\nepochs: 2",
    "\x00",
    "\ufeff",
    "\x85",
    "'",
    ": :",
    "1" * 5000,
]


def config_type_errors(obj, where: str = "") -> list[str]:
    """Settings of a loaded config whose value is not of the declared type (an int is a float too)."""
    errors = []
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        if is_dataclass(hint):
            if isinstance(value, hint):
                errors += config_type_errors(value, f"{where}{f.name}.")
            else:
                errors.append(f"{where}{f.name} = {value!r} is not a {hint.__name__}")
            continue
        ok = False
        for t in _hint_options(hint):
            ok = ok or (t is type(None) and value is None) or (t is bool and isinstance(value, bool))
            ok = ok or (t is str and isinstance(value, str))
            ok = ok or (t in (int, float) and isinstance(value, int) and not isinstance(value, bool))
            ok = ok or (t is float and isinstance(value, float))
        if not ok:
            errors.append(f"{where}{f.name} = {value!r} is not {hint}")
    return errors


def config_range_errors(obj, where: str = "") -> list[str]:
    """Settings of a loaded config outside the range their class states (``RANGES``), or not finite."""
    errors = []
    ranges = getattr(type(obj), "RANGES", {})
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            errors += config_range_errors(value, f"{where}{f.name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or (f.name in ranges and value not in ranges[f.name]):
                errors.append(f"{where}{f.name} = {value!r} is outside {ranges.get(f.name, 'the finite numbers')}")
    return errors


def check_config(path: Path, data: bytes) -> None:
    got = parse_or_data_error(lambda: TrainConfig.load(path), path, data)
    if isinstance(got, DataError):
        return
    assert isinstance(got, TrainConfig)
    errors = config_type_errors(got)
    assert not errors, f"TrainConfig.load accepted values of the wrong type: {errors}"
    errors = config_range_errors(got)
    assert not errors, f"TrainConfig.load accepted values out of range: {errors}"
    doc = yaml.safe_load(data.decode("utf-8-sig"))
    assert doc is None or isinstance(doc, dict), f"TrainConfig.load accepted a document that is no mapping: {doc!r}"


@fuzz(1)
@given(data=arbitrary_bytes)
def test_config_arbitrary_bytes(fuzz_dir, data):
    ran("test_config_arbitrary_bytes")
    read_as("TrainConfig.load", fuzz_dir, data)


@fuzz(2)
@given(
    doc=st.one_of(_config_doc(TrainConfig), _config_doc(TrainConfig), garbage),
    style=st.sampled_from(["block", "flow", "json"]),
    raw=st.lists(st.tuples(st.sampled_from(RAW_YAML), st.integers(0, 10**6)), max_size=1),
    st_data=st.data(),
)
def test_config_documents(fuzz_dir, doc, style, raw, st_data):
    """TrainConfig.load on YAML/JSON documents of known keys with right and wrong types, raw YAML oddities, bytes."""
    ran("test_config_documents")
    if style == "json":
        text = json.dumps(doc, indent=2)
    else:
        text = yaml.safe_dump(doc, default_flow_style=style == "flow", allow_unicode=True, sort_keys=False)
    for fragment, at in raw:
        at %= len(text) + 1
        text = text[:at] + fragment + text[at:]
    data, _ = st_data.draw(
        perturbed([[line] for line in text.split("\n")], seps=("",), mutate=st_data.draw(st.booleans()))
    )
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / f"fuzz config.{'json' if style == 'json' else 'yaml'}"
        path.write_bytes(data)
        check_config(path, data)


# ---------------------------------------------------------------------------------------------------------------------
# images (load_rgb, decode_rgb)

BOMB_PIXELS = 2 * Image.MAX_IMAGE_PIXELS  # PIL refuses (DecompressionBombError) above this, before allocating
GUARD_PIXELS = 4_000_000  # between this and BOMB_PIXELS PIL would decode (allocate): such inputs are skipped

FORMAT_MODES = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "GIF": ("L", "P", "RGB"),
    "BMP": ("1", "L", "P", "RGB", "RGBA"),
    "PPM": ("1", "L", "RGB", "I;16"),
}
BYTES_PER_PIXEL = {"L": 1, "P": 1, "LA": 2, "I;16": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"BM", b"P5\n", b"P6\n"]
MAGIC += [
    b"P4\n",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"\x00\x00\x01\x00",
    b"8BPS",
    b"\x00\x00\x00\x0cjP",
]


def small_image(fmt: str, mode: str, size: tuple[int, int], seed: int, transparency: bool) -> bytes:
    """A random ``size`` image of ``mode`` encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    w, h = size
    n = (w + 7) // 8 * h if mode == "1" else w * h * BYTES_PER_PIXEL[mode]
    img = Image.frombytes(mode, size, rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    if mode == "P":
        img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        if transparency and fmt in ("PNG", "GIF"):
            img.info["transparency"] = int(rng.integers(0, 256))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@st.composite
def real_image(draw):
    fmt = draw(st.sampled_from(sorted(FORMAT_MODES)))
    mode = draw(st.sampled_from(FORMAT_MODES[fmt]))
    size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    return small_image(fmt, mode, size, draw(st.integers(0, 2**32 - 1)), draw(st.booleans())), size


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every PNG chunk's CRC, so that mutations inside chunks reach the decoder."""
    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        (length,) = struct.unpack(">I", out[at : at + 4])
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[at + 4 : end]))
        at = end + 4
    return bytes(out)


HUGE_FIELDS = [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x00", b"\x00\x00\x4e\x20", b"\x00\x00\x00\x00"]


@st.composite
def mutated_image(draw):
    """``(bytes, size or None)``: a small real image, mutated unless size is given."""
    data, size = draw(real_image())
    ops = draw(
        st.lists(st.sampled_from(["flip", "truncate", "delete", "insert", "splice", "dup", "field"]), max_size=4)
    )
    for op in ops:
        i, j = sorted((draw(st.integers(0, len(data))), draw(st.integers(0, len(data)))))
        if op == "flip" and i < len(data):
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif op == "truncate":
            data = data[:i]
        elif op == "delete":
            data = data[:i] + data[j:]
        elif op == "insert":
            data = data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
        elif op == "splice":
            other, _ = draw(real_image())
            data = data[:i] + other[draw(st.integers(0, len(other))) :]
        elif op == "dup":
            data = data[:j] + data[i:j] + data[j:]
        elif op == "field":
            data = data[:i] + draw(st.sampled_from(HUGE_FIELDS)) + data[i + 4 :]
    if ops and data.startswith(MAGIC[0]) and draw(st.booleans()):
        data = fix_png_crcs(data)
    return data, None if ops else size


def too_big_to_try(data: bytes) -> bool:
    """Whether the header claims more than GUARD_PIXELS pixels that PIL would still decode (allocate)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Exception:  # refused before allocating anything: the reader must say so itself
        return False
    return w * h > GUARD_PIXELS


def decode_both(fuzz_dir: Path, data: bytes) -> list:
    """What load_rgb (of a file holding ``data``) and decode_rgb (of ``data``) give: an image or a DataError."""
    with fresh_dir(fuzz_dir) as d:
        path = Path(d) / "fuzz face.png"
        path.write_bytes(data)
        return [
            parse_or_data_error(lambda: load_rgb(path), path),
            parse_or_data_error(lambda: decode_rgb(data, "upload face.jpg"), Path("upload face.jpg")),
        ]


def check_image(fuzz_dir: Path, data: bytes, size: tuple[int, int] | None = None) -> None:
    """load_rgb and decode_rgb return an RGB image (of ``size``, for a valid image) or raise ImageReadError."""
    if too_big_to_try(data):
        reject()
    for got in decode_both(fuzz_dir, data):
        if isinstance(got, DataError):
            assert isinstance(got, ImageReadError), f"an image error that is no ImageReadError: {got!r}"
            assert size is None, f"a valid {size} image did not decode: {got}"
        else:
            assert isinstance(got, Image.Image) and got.mode == "RGB", f"not an RGB image: {got!r}"
            assert size is None or got.size == size, f"a {size} image decoded as {got.size}"


@fuzz(1.5)
@given(
    data=st.one_of(st.binary(max_size=300), st.tuples(st.sampled_from(MAGIC), st.binary(max_size=300)).map(b"".join))
)
def test_images_arbitrary_bytes(fuzz_dir, data):
    ran("test_images_arbitrary_bytes")
    check_image(fuzz_dir, data)


@fuzz(3)
@given(image=mutated_image())
def test_images_mutated(fuzz_dir, image):
    """Small real images decode to RGB of their size; flipped, cut, spliced ones decode or raise ImageReadError."""
    ran("test_images_mutated")
    data, size = image
    check_image(fuzz_dir, data, size)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_header(fmt: str, w: int, h: int) -> bytes:
    """A small file whose header claims a ``w`` x ``h`` image."""
    if fmt == "PNG":
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        idat = zlib.compress(b"\x00" * 64)
        return MAGIC[0] + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    if fmt == "GIF":
        screen = b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0)
        return screen + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00;"
    if fmt == "BMP":
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
        return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + bytes(64)
    if fmt == "JPEG":
        data = small_image("JPEG", "RGB", (8, 8), 0, False)
        at = data.index(b"\xff\xc0") + 5
        return data[:at] + struct.pack(">HH", h, w) + data[at + 4 :]
    return f"P6\n{w} {h}\n255\n".encode() + bytes(64)  # PPM


HEADER_LIMITS = {"PNG": 2**31 - 1, "BMP": 2**31 - 1, "PPM": 2**40, "GIF": 65535, "JPEG": 65535}


@st.composite
def huge_claim(draw):
    fmt = draw(st.sampled_from(sorted(HEADER_LIMITS)))
    limit = HEADER_LIMITS[fmt]
    w = draw(st.integers(math.ceil((BOMB_PIXELS + 1) / limit), limit))
    h = min(limit, math.ceil((BOMB_PIXELS + 1) / w) + draw(st.integers(0, limit)))
    return fmt, w, h


@fuzz(0.3)
@given(claim=huge_claim())
@example(claim=("PNG", 20000, 20000))
@example(claim=("PNG", 1, 2**31 - 1))
@example(claim=("GIF", 65535, 65535))
@example(claim=("JPEG", 65535, 65535))
def test_images_huge_header(fuzz_dir, claim):
    """A header claiming a huge image (more pixels than PIL decodes) raises ImageReadError, allocating nothing."""
    ran("test_images_huge_header")
    fmt, w, h = claim
    data = huge_header(fmt, w, h)
    check_image(fuzz_dir, data)


# ---------------------------------------------------------------------------------------------------------------------
# classic bad inputs, tried on every reader in every run (whatever the search happens to draw)

TEXT_READERS = {
    "read_pairs-tsv": ("fuzz pairs.tsv", read_pairs),
    "read_tsv_pairs": ("fuzz pairs.tsv", read_tsv_pairs),
    "read_pairs-lfw": ("fuzz pairs.txt", read_pairs),
    "read_lfw_people": ("fuzz people.txt", read_lfw_people),
    "read_twin_pairs": ("pairs.json", read_twin_pairs),
    "read_celeba": (CELEBA_IDENTITY_FILE, None),
    "read_triplets": ("fuzz triplets.tsv", read_triplets),
    "read_scores": ("fuzz scores.tsv", read_scores),
    "TrainConfig.load": ("fuzz config.yaml", TrainConfig.load),
    # with an image root (the file's own folder): every image's existence is checked
    "read_pairs-tsv+root": ("fuzz pairs.tsv", read_pairs),
    "read_pairs-lfw+root": ("fuzz pairs.txt", read_pairs),
    "read_triplets+root": ("fuzz triplets.tsv", read_triplets),
}
SUPERSCRIPT_2 = "\u00b2".encode()  # str.isdigit() says yes, int() says no
CLASSIC = {
    "read_pairs-tsv": [
        b"path_a\tpath_b\tsame\tfold\na\tb\t1\t" + SUPERSCRIPT_2 + b"\n",
        b"\xef\xbb\xbfpath_a\tpath_b\tsame\n",
    ],
    "read_pairs-lfw": [
        SUPERSCRIPT_2 + b"\n",
        b"1\na " + SUPERSCRIPT_2 + b" 1\nb 1 c 1\n",
        b"9" * 5000 + b"\n",
        b"1 " + b"9" * 5000,
    ],
    "read_pairs-lfw+root": [b"1\n" + b"a" * 300 + b" 1 2\nb 1 c 2\n"],
    "read_pairs-tsv+root": [b"path_a\tpath_b\tsame\n" + b"a" * 300 + b"\tb\t1\n"],
    "read_triplets+root": [b"anchor\tpositive\tnegative\ttwins\n" + b"a" * 300 + b"\tb\tc\t0\n"],
    "read_lfw_people": [
        *(
            SUPERSCRIPT_2 + b"\n",
            SUPERSCRIPT_2 + b"\n1\n",
            b"1\n" + SUPERSCRIPT_2 + b"\n",
            b"1\nbob " + SUPERSCRIPT_2 + b"\n",
        ),
        *(b"9" * 5000, b"2\n1\na 1\n"),
    ],
    "read_twin_pairs": [
        b"[" * 5000,
        b"[" + b"1" * 5000 + b"]",
        b'[["a", "b"], ["b", "c"]]',
        b'{"a": 1}',
        b'[["a", "a"]]',
    ],
    "read_celeba": [b"a.jpg " + SUPERSCRIPT_2 + b"\n", b"a.jpg 1\na.jpg 2\n", b"a.jpg 1\n\x0cb.jpg 2\n"],
    "read_triplets": [
        b"anchor\tpositive\tnegative\ttwins\r\na\tb\tc\t1\r\n",
        b"anchor\tpositive\tnegative\ttwins\na\tb\n",
    ],
    "read_scores": [
        b"path_a\tpath_b\tsame\tscore\na\tb\t1\tnan\n",
        b"path_a\tpath_b\tsame\tscore\na\tb\t1\t" + b"9" * 5000,
    ],
    "TrainConfig.load": [
        *(b"epochs: three\n", b"[]\n", b"0\n", b"- 1\n", b"[" * 1000, b"epochs: .inf\n", b"optim: {lr: .nan}\n"),
        *(
            b"loss: {weight_fused: 1, branch: 5}\n",
            b"model: [1]\n",
            b"data: {align: {size: x}}\n",
            b"epochs: " + b"1" * 5000,
            b"!!python/name:os.system\n",
            b"- a\xc2\x85b\n",  # YAML counts U+0085 (NEL) as a line break; an editor does not
        ),
    ],
}
CLASSIC_IMAGES = [b"", b"\x00", MAGIC[0], b"GIF89a", b"\xff\xd8\xff", b"BM" + bytes(60), b"P5\n99999 99999\n255\n"]


def read_as(reader: str, fuzz_dir: Path, data: bytes, **kwargs) -> None:
    """Give ``data`` to ``reader`` (a key of TEXT_READERS) as its file; check the property."""
    with fresh_dir(fuzz_dir) as d:
        name, read = TEXT_READERS[reader]
        path = Path(d) / name
        if reader == "read_celeba":
            write_celeba(Path(d), data, ["a.jpg", "b.jpg", "1"])
            parse_or_data_error(lambda: read_celeba(d), path, data)
        elif reader == "TrainConfig.load":
            path.write_bytes(data)
            check_config(path, data)
        else:
            path.write_bytes(data)
            if reader.endswith("+root"):
                kwargs["root"] = Path(d)
            parse_or_data_error(lambda: read(path, **kwargs), path, data)


CLASSIC_CASES = [(r, data) for r in TEXT_READERS for data in BYTES_EXAMPLES + CLASSIC.get(r, [])]
CLASSIC_CASES += [("load_rgb/decode_rgb", data) for data in CLASSIC_IMAGES]


@pytest.mark.parametrize(
    "reader, data",
    CLASSIC_CASES,
    ids=[f"{r}-{data[:12]!r}{'...' if len(data) > 12 else ''}" for r, data in CLASSIC_CASES],
)
def test_classic_bad_inputs(fuzz_dir, reader, data):
    """BOM, invalid UTF-8, NUL, CR/LF, unicode digits, 5000-digit numbers, deep nesting, wrong YAML types."""
    ran("test_classic_bad_inputs")
    if reader == "load_rgb/decode_rgb":
        check_image(fuzz_dir, data)
    else:
        read_as(reader, fuzz_dir, data)


@fuzz(1)
@given(
    limit=st.integers(1, 4096),
    fmt_mode=st.sampled_from([(fmt, mode) for fmt, modes in sorted(FORMAT_MODES.items()) for mode in modes]),
    size=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    seed=st.integers(0, 2**32 - 1),
)
@example(limit=1, fmt_mode=("JPEG", "RGB"), size=(17, 3), seed=0)
@example(limit=100, fmt_mode=("PNG", "RGB"), size=(11, 10), seed=0)
def test_images_over_the_limit(fuzz_dir, limit, fmt_mode, size, seed):
    """With BACKBONE_MAX_IMAGE_PIXELS lowered to ``limit``, a valid image within it decodes at full size, one above
    it is refused with an ImageReadError that does not call it corrupt, or (a JPEG) decodes reduced."""
    ran("test_images_over_the_limit")
    fmt, mode = fmt_mode
    data = small_image(fmt, mode, size, seed, False)
    old = os.environ.get("BACKBONE_MAX_IMAGE_PIXELS")
    os.environ["BACKBONE_MAX_IMAGE_PIXELS"] = str(limit)
    try:
        results = decode_both(fuzz_dir, data)
    finally:
        if old is None:
            del os.environ["BACKBONE_MAX_IMAGE_PIXELS"]
        else:
            os.environ["BACKBONE_MAX_IMAGE_PIXELS"] = old
    pixels = size[0] * size[1]
    for got in results:
        if pixels <= limit:
            assert isinstance(got, Image.Image) and got.size == size, f"a {size} image within {limit} pixels: {got!r}"
        elif isinstance(got, DataError):
            assert isinstance(got, ImageReadError), f"an image error that is no ImageReadError: {got!r}"
            assert "corrupt" not in str(got), f"a valid {fmt} image refused for its size is called corrupt: {got}"
        else:
            assert fmt == "JPEG", f"a {size} {fmt} image above {limit} pixels was decoded: {got.size}"
            assert got.mode == "RGB" and got.size[0] * got.size[1] < pixels, f"not reduced: {got.size}"
