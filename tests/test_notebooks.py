"""Committed notebooks are thin, parameterised and free of outputs."""

import json

import pytest

from conftest import PROJECT

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))


def test_the_ordered_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    for prefix in (
        "01_data_loading",
        "02_pair_training",
        "03_triplet_training",
        "04_attention_visualisation",
        "05_experiment_analysis",
        "06_pair_explorer",
        "07_reference_scores",
    ):
        assert any(n.startswith(prefix) for n in names), prefix


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_one_parameters_cell_and_thin_cells(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), "strip outputs (nbstripout)"
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    params = "".join(tagged[0]["source"])
    assert "out_dir" in params or "checkpoint" in params
    assert any("%matplotlib inline" in "".join(c["source"]) for c in code)
    for c in code:  # logic lives in backbone/: a cell longer than a screen belongs there
        assert len(c["source"]) <= 25, "".join(c["source"])[:200]
