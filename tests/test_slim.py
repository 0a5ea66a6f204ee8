"""Executed notebooks slimmed for committing: each figure once, in a palette; progress bars as text."""

import base64
import io
import json

import numpy as np
from PIL import Image

from backbone.experiments.slim import WIDGET_STATE, WIDGET_VIEW, slim_notebook


def png(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def widget(model, value):
    return {"state": {"_model_name": model, "value": value, **({"max": 48.0} if model == "FloatProgressModel" else {})}}


def test_a_notebook_keeps_each_figure_once_in_a_palette_and_its_progress_as_text(tmp_path):
    first, second = png(0), png(1)

    def image(data):
        return {"output_type": "display_data", "metadata": {}, "data": {"image/png": data, "text/plain": "<Figure>"}}

    notebook = {
        "cells": [
            {"cell_type": "code", "source": "", "outputs": [image(first), image(first)], "metadata": {
                "execution": {"iopub.execute_input": "2026-12-05T06:46:22.790965Z"},
                "papermill": {"duration": 0.0033, "end_time": "2026-12-05T06:46:22.786237+00:00",
                              "exception": False, "start_time": "2026-12-05T06:46:22.782894+00:00",
                              "status": "completed"}}},
            {"cell_type": "code", "source": "", "metadata": {}, "outputs": [
                image(second), {"output_type": "stream", "name": "stdout", "text": "AUC 0.61\n"}, image(first),
                {"output_type": "display_data", "metadata": {}, "data": {
                    WIDGET_VIEW: {"model_id": "box"}, "text/plain": "epoch 1/2:   0%|"}}]},
            {"cell_type": "markdown", "source": "prose", "metadata": {}},
            {"cell_type": "code", "id": "fc9cce81", "source": "epochs = 2\n", "outputs": [],
             "metadata": {"tags": ["injected-parameters"]}},
        ],
        "metadata": {"widgets": {WIDGET_STATE: {"state": {
            "box": {"state": {"_model_name": "HBoxModel", "children": ["IPY_MODEL_l", "IPY_MODEL_b", "IPY_MODEL_r"]}},
            "l": widget("HTMLModel", "epoch\u20071/2:\u2007\u2007\u20070%"), "b": widget("FloatProgressModel", 48.0),
            "r": widget("HTMLModel", "\u20070/48\u2007[00:00&lt;?]")}}}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    notebook["metadata"]["papermill"] = {
        "input_path": "/elsewhere/notebooks/02.ipynb",
        "output_path": "/x/.r.partial.ipynb",
    }
    path = tmp_path / "run.ipynb"
    path.write_text(json.dumps(notebook))
    before, after = slim_notebook(path, tmp_path / "final.ipynb")
    assert after < before
    slim = json.loads(path.read_text())
    outputs = [c.get("outputs", []) for c in slim["cells"]]
    assert [len(o) for o in outputs] == [1, 3, 0, 0]  # the repeats of the first figure are gone
    assert outputs[1][1]["text"] == "AUC 0.61\n" and slim["cells"][2]["source"] == "prose"
    for output in (outputs[0][0], outputs[1][0]):
        with Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"]))) as img:
            assert img.mode == "P" and img.size == (80, 60)
    assert outputs[1][2]["data"] == {"text/plain": "epoch 1/2: 48/48"}  # the bar's last state, as text
    assert "widgets" not in slim["metadata"]
    record = slim["metadata"]["papermill"]  # no machine's absolute path, and the name the notebook is kept by
    assert (record["input_path"], record["output_path"]) == ("02.ipynb", "final.ipynb")
    assert slim["cells"][3]["id"] == "injected-parameters"  # not papermill's random id
    assert slim["cells"][0]["metadata"] == {"papermill": {"exception": False, "status": "completed"}}  # no timings
    assert slim_notebook(path, tmp_path / "final.ipynb") == (after, after)  # again: nothing changes
