"""Every file, make target and ``backbone`` command the README and docs/ name exists."""

import re

import pytest

from conftest import PROJECT

PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
#: Where the project's own files live; a path in backquotes under one of these must exist.
TRACKED = ("backbone/", "notebooks/", "files/", "experiments/", "docs/", "tests/", "benchmarks/", "container/",
           "pretrained/", ".ci/")  # fmt: skip
TOP_FILES = {"Makefile", "pyproject.toml", "environment.yml", "LICENSE", "THIRD_PARTY.md", "README.md"}
#: Written by a command, so absent from a fresh clone: (the path's start, what makes it).
MADE = {
    "experiments/reproduced": "make reproduce",
    "experiments/twins-gpu/runs": "make twins-gpu",
    "experiments/runs/x": "an example out_dir",
    "experiments/runs/mine": "an example out_dir",
}
#: Options whose value is a file a command writes.
OUTPUT_OPTIONS = {"--out", "--json", "--people-out", "--out-dir"}
#: Files a run writes but git ignores (weights, logs): their folder must exist, not the file.
IGNORED_SUFFIXES = (".ckpt", ".onnx", ".pt")


def _code(text: str) -> list[str]:
    """The text of every inline code span and fenced block."""
    fenced = [re.sub(r"(?m)\s#.*$", "", block) for block in re.findall(r"(?ms)^```[^\n]*\n(.*?)^```", text)]
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"(?ms)^```.*?^```", "", text))
    return fenced + inline


def _paths(text: str) -> set[str]:
    found = set()
    for code in _code(text):
        tokens = re.split(r"[\s=,:()\[\]'\"]+", code)
        for before, token in zip(["", *tokens], tokens):
            token = token.rstrip(".;")
            if before in OUTPUT_OPTIONS:
                continue  # what a command writes
            if token in TOP_FILES or (token.startswith(TRACKED) and re.fullmatch(r"[\w./\-]+", token)):
                found.add(token)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_named_exists(page):
    missing = []
    for path in sorted(_paths(page.read_text())):
        if any(path.startswith(start) for start in MADE):
            continue
        target = PROJECT / path
        if path.endswith(IGNORED_SUFFIXES):
            target = target.parent
        if not target.exists():
            missing.append(path)
    assert not missing, f"{page.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves(page):
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    local = [link.split("#")[0] for link in links if not link.startswith(("http://", "https://", "#"))]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert local or page.name != "README.md"
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


def _make_targets() -> set[str]:
    return set(re.findall(r"(?m)^([A-Za-z][\w-]*):", (PROJECT / "Makefile").read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_make_target_named_exists(page):
    named = {m for code in _code(page.read_text()) for m in re.findall(r"\bmake ([a-z][\w-]*)", code)}
    assert not named - _make_targets(), f"{page.name} names make targets the Makefile lacks: {named - _make_targets()}"


def _commands() -> set[str]:
    """``backbone`` commands as typed: ``verify``, ``data align``, ``experiments run``, ..."""
    import argparse

    from backbone.cli import build_parser

    def subcommands(parser, prefix=""):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield f"{prefix}{name}"
                    yield from subcommands(sub, f"{prefix}{name} ")

    return set(subcommands(build_parser()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_backbone_command_named_exists(page):
    commands = _commands()
    unknown = []
    for code in _code(page.read_text()):
        for words in re.findall(r"(?:^|[\s/])backbone ((?:[a-z][\w-]*)(?: [a-z][\w-]*)?)", code):
            first = words.split()[0]
            if first not in commands:
                unknown.append(words)
            elif words not in commands and any(c.startswith(first + " ") for c in commands):
                unknown.append(words)  # a group (data, experiments) needs one of its own commands
    assert not unknown, f"{page.name} names backbone commands that do not exist: {unknown}"


def test_the_checks_catch_what_is_missing(tmp_path):
    text = "`backbone/no_such.py` and `make no-such-target` and `backbone data no-such`\n"
    assert _paths(text) == {"backbone/no_such.py"} and not (PROJECT / "backbone/no_such.py").exists()
    assert "no-such-target" not in _make_targets() and "data no-such" not in _commands()
    assert {"verify", "identify", "data align", "experiments run"} <= _commands()


def test_readme_fits_on_a_few_screens():
    assert len((PROJECT / "README.md").read_text().splitlines()) <= 250
