"""One rule for relative paths (under the project root, whatever the working directory), and
missing inputs that say what makes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from backbone.cli import main
from backbone.data import load_index, read_pairs
from backbone.data.errors import DataError, MissingInput, existing, missing_all
from backbone.paths import PACKAGE_CHECKOUT, cli_path, how_to_make, project_path, project_relative, project_root

from conftest import PROJECT, make_workbook


@pytest.fixture
def workbook(tmp_path, monkeypatch):
    """An empty workbook, with no BACKBONE_PROJECT set."""
    monkeypatch.delenv("BACKBONE_PROJECT", raising=False)
    return make_workbook(tmp_path / "wb")


def test_the_project_root_is_found_from_any_folder_inside_it(workbook, monkeypatch):
    for cwd in (workbook, workbook / "notebooks"):
        monkeypatch.chdir(cwd)
        assert project_root() == workbook
        assert project_path("data/synthetic") == workbook / "data" / "synthetic"
        assert project_path("/abs/x") == Path("/abs/x")


def test_outside_any_workbook_the_package_checkout_is_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("BACKBONE_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert project_root() == PACKAGE_CHECKOUT == PROJECT


def test_backbone_project_overrides_the_working_directory(workbook, tmp_path, monkeypatch):
    monkeypatch.chdir(workbook / "notebooks")
    monkeypatch.setenv("BACKBONE_PROJECT", str(tmp_path / "elsewhere"))
    assert project_root() == tmp_path / "elsewhere"


def test_relative_forms(workbook, monkeypatch):
    monkeypatch.chdir(workbook / "notebooks")
    assert project_relative(workbook / "experiments" / "runs" / "a") == "experiments/runs/a"
    assert project_relative("files/x.tsv") == "files/x.tsv"
    assert project_relative("/elsewhere/x") == "/elsewhere/x"
    assert cli_path("x.tsv") == workbook / "notebooks" / "x.tsv"  # a shell's path: from where it runs


def test_what_makes_each_project_input(workbook, monkeypatch):
    monkeypatch.chdir(workbook / "notebooks")
    (workbook / "experiments").mkdir()
    (workbook / "experiments" / "grid.yaml").write_text("experiments:\n  - {name: a, notebook: notebooks/02.ipynb}\n")
    (workbook / "experiments" / "lfw").mkdir()
    (workbook / "experiments" / "lfw" / "grid.yaml").write_text(  # as the LFW grid: the default one, extended
        "extends: ../grid.yaml\nexperiments:\n  - {name: b, notebook: notebooks/02.ipynb}\n"
    )
    assert "`make data`" in how_to_make("data/synthetic") and "`make data`" in how_to_make(
        "files/synthetic_test_pairs.tsv"
    )
    assert how_to_make("experiments/runs/a/best.ckpt").endswith("`backbone experiments run --only a --force`")
    assert how_to_make("experiments/runs/a").endswith("`backbone experiments run --only a`")
    assert how_to_make("experiments/lfw/runs/b/best.ckpt").endswith(
        "`backbone experiments run --grid experiments/lfw/grid.yaml --only b --force`"
    )
    assert how_to_make("experiments/lfw/runs/a/best.ckpt").endswith(
        "--grid experiments/lfw/grid.yaml --only a --force`"
    )
    assert "notebooks 02 and 03" in how_to_make("experiments/runs/not-in-the-grid/best.ckpt")
    assert "`make grid`" in how_to_make("experiments/runs")
    assert "--grid experiments/lfw/grid.yaml" in how_to_make("experiments/lfw/runs")
    assert "pretrained/README.md" in how_to_make("pretrained/w.pt")
    assert how_to_make("somewhere/else.tsv") is None


def test_library_entry_points_read_relative_paths_from_the_project_root(workbook, tiny_synth, monkeypatch):
    monkeypatch.chdir(workbook / "notebooks")  # where JupyterLab starts a notebook's kernel
    (workbook / "data").mkdir()
    (workbook / "data" / "tiny").symlink_to(tiny_synth, target_is_directory=True)
    index = load_index("data/tiny")
    assert index.root.resolve() == tiny_synth.resolve()
    (workbook / "files").mkdir()
    (workbook / "files" / "p.tsv").write_text(
        f"path_a\tpath_b\tsame\ttwins\n{index.records[0].path}\t{index.records[1].path}\t1\t0\n"
    )
    assert len(read_pairs("files/p.tsv", root=index.root)) == 1


def test_a_missing_input_is_one_sentence_with_the_command_that_makes_it(workbook, monkeypatch):
    monkeypatch.chdir(workbook / "notebooks")
    with pytest.raises(MissingInput) as info:
        load_index("data/synthetic")
    assert (
        str(info.value)
        == "data root data/synthetic does not exist: run `make data` (the first step of `make reproduce`)"
    )
    assert isinstance(info.value, DataError) and isinstance(
        info.value, FileNotFoundError
    )  # callers' handlers still catch it
    assert info.value._render_traceback_() == [
        f"\x1b[0;31mMissingInput\x1b[0m: {info.value}"
    ]  # what Jupyter shows: no traceback
    (workbook / "afile").write_text("")
    with pytest.raises(DataError, match="is not a directory"):
        existing("afile", "data root", kind="dir")


def test_several_missing_inputs_are_grouped_by_what_makes_them(workbook, monkeypatch):
    monkeypatch.chdir(workbook)
    error = missing_all(
        [("data root", "data/synthetic"), ("pair file", "files/synthetic_val_pairs.tsv"), ("pair file", "mine.tsv")]
    )
    assert str(error) == ("data root data/synthetic, pair file files/synthetic_val_pairs.tsv do not exist: run `make data` "
                          "(the first step of `make reproduce`); pair file mine.tsv does not exist")  # fmt: skip


def test_the_command_line_reads_paths_from_where_it_runs(workbook, tiny_synth, monkeypatch, capsys):
    elsewhere = tiny_synth.parent
    monkeypatch.chdir(elsewhere)  # outside the workbook: a relative argument is relative to here
    assert main(["data", "validate", tiny_synth.name, "--no-decode"]) == 0
    monkeypatch.chdir(workbook / "notebooks")
    assert main(["data", "validate", "data/synthetic"]) == 1  # from notebooks/: notebooks/data/synthetic
    assert "notebooks/data/synthetic does not exist" in capsys.readouterr().err
