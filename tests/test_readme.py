"""The README shows each grid's results table as the pipeline made it, by its main columns."""

import pytest

from backbone.experiments.readme import (
    COMPACT_COLUMNS,
    END,
    MAX_COLUMNS,
    START,
    compact_block,
    markers,
    readme_block,
    update_readme,
)

from conftest import PROJECT

GRIDS = {
    "results": "experiments/results.md",
    "twins-results": "experiments/twins/results.md",
    "losses-results": "experiments/losses/results.md",
    "lfw-results": "experiments/lfw/results.md",
}


def _block(text: str, name: str) -> str:
    start, end = markers(name)
    return text.split(start, 1)[1].split(end, 1)[0].strip()


@pytest.mark.parametrize("name", GRIDS)
def test_readme_tables_are_the_committed_results_tables(name):
    readme = PROJECT / "README.md"
    block = _block(readme.read_text(), name)
    assert block == readme_block(PROJECT / GRIDS[name], readme)
    header = block.splitlines()[0]
    assert header.count("|") - 1 <= MAX_COLUMNS and header.startswith("| experiment |")
    assert f"]({GRIDS[name]})" in block  # the link to every column


def test_readme_points_to_the_two_commands_and_the_notebooks():
    readme = (PROJECT / "README.md").read_text()
    assert "make reproduce" in readme and "make test" in readme
    assert "make notebook" in readme and "\nnotebook: setup\n" in (PROJECT / "Makefile").read_text()


def test_compact_block_keeps_the_main_columns_that_hold_numbers():
    results = (
        "# Experiment results\n\nHow it is measured.\n\n"
        "| experiment | architecture | attention | loss | accuracy @ val thr. (± SE) | AUC (± SE) | 10-fold accuracy | EER (± SE) |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| a | small | cbam | triplet | 0.6 ± 0.01 | 0.7 ± 0.01 | n/a | 0.3 |\n"
        "| b | small | none | triplet | 0.5 ± 0.01 | 0.6 ± 0.01 | n/a | 0.4 |\n\n"
        "- a beats b.\n"
    )
    block = compact_block(results, "x/results.md").splitlines()
    assert (
        block[0] == "| experiment | attention | loss | accuracy @ val thr. (± SE) | AUC (± SE) | EER (± SE) |"
    )  # no all-n/a column
    assert block[2] == "| a | cbam | triplet | 0.6 ± 0.01 | 0.7 ± 0.01 | 0.3 |"
    assert block[3] == "| b | none | triplet | 0.5 ± 0.01 | 0.6 ± 0.01 | 0.4 |"
    assert "other 2 columns" in block[-1] and block[-1].endswith("[x/results.md](x/results.md).")
    assert len(COMPACT_COLUMNS) > MAX_COLUMNS  # the cut is real on a full table
    with pytest.raises(ValueError, match="no experiment table"):
        compact_block("# Load test\n\n| backend | clients |\n|---|---|\n", "x")


def test_update_readme(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\nend\n")
    results.write_text("# Experiment results\n\n| a |\n|---|\n| 1 |\n")  # not an experiment table: whole
    assert update_readme(readme, results)
    assert readme.read_text() == f"intro\n{START}\n| a |\n|---|\n| 1 |\n{END}\nend\n"
    assert not update_readme(readme, results)
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        update_readme(tmp_path / "bare.md", results)


def test_named_blocks_are_replaced_alone_with_a_link_relative_to_the_page(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "lfw").mkdir()
    page, results = tmp_path / "docs" / "page.md", tmp_path / "lfw" / "results.md"
    lfw_start, lfw_end = markers("lfw-results")
    page.write_text(f"{START}\nsynthetic\n{END}\n{lfw_start}\nold\n{lfw_end}\n")
    results.write_text("# Experiment results\n\n| experiment | AUC (± SE) |\n|---|---|\n| a | 0.9 ± 0.01 |\n")
    assert update_readme(page, results, "lfw-results")
    assert f"{START}\nsynthetic\n{END}\n{lfw_start}\n| experiment | AUC (± SE) |" in page.read_text()
    assert "[../lfw/results.md](../lfw/results.md)" in page.read_text()
    with pytest.raises(ValueError, match="no <!-- twins:start -->"):
        update_readme(page, results, "twins")


def test_serving_page_load_test_table_is_the_committed_one():
    start, end = markers("serve-load")
    block = (PROJECT / "docs" / "serving.md").read_text().split(start, 1)[1].split(end, 1)[0].strip()
    assert block == readme_block(PROJECT / "docs" / "serve_load.md", PROJECT / "docs" / "serving.md")
    assert block.startswith("| backend | clients |")
