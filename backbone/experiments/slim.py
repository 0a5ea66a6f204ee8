"""Executed notebooks, light enough to commit: each figure once, in a palette; progress bars as text.

``backbone experiments run`` slims every notebook it executes (the experiments' and the
analysis'):

- an image output that repeats one already shown in the notebook is dropped;
- every embedded PNG is re-encoded in a palette of 256 colours (:func:`backbone.plots.palette_png`,
  as the figure files are written);
- a progress bar's widget (tqdm's, with its saved state: about 60 kB a notebook) becomes one line of
  text, its label and how far it got ("training: 3/3");
- each cell's timings (Jupyter's ``execution`` times, papermill's start, end and duration) go:
  they change on every run, so a re-run that changes no number would still change every cell.
  The notebook's own papermill record (its parameters, when it ran and for how long) stays;
- the cell papermill injects with the run's parameters gets a fixed id in place of a random one;
- papermill's record of the input and output notebooks names them relative to the project (its
  own record is the absolute path of the machine that ran it, and the hidden file it wrote).

Text, tables and the order of outputs stay as they were.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

from backbone.atomic import atomic_write_text
from backbone.paths import shareable_path


def slim_notebook(path: str | Path, final: str | Path | None = None) -> tuple[int, int]:
    """Slim the executed notebook at ``path`` in place (atomically); returns its size in bytes
    before and after. ``final``: where it will be kept, if not at ``path`` (what papermill's record
    names). Running it again changes nothing."""
    from backbone.plots import palette_png  # matplotlib and seaborn: not at import (`backbone --help`)

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    notebook = json.loads(text)
    widgets = notebook.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    record = notebook.get("metadata", {}).get("papermill")
    if isinstance(record, dict):
        for key, where in (("input_path", record.get("input_path")), ("output_path", final or path)):
            if where:
                record[key] = shareable_path(where)
    seen: set[str] = set()
    for cell in notebook.get("cells", []):
        metadata = cell.get("metadata", {})
        if INJECTED in metadata.get("tags", []):
            cell["id"] = INJECTED
        metadata.pop("execution", None)
        for key in CELL_TIMINGS:
            metadata.get("papermill", {}).pop(key, None)
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.pop(WIDGET_VIEW, None)
            if view is not None:
                data["text/plain"] = progress_text(
                    widgets, view.get("model_id", ""), "".join(data.get("text/plain", ""))
                )
            if "image/png" in data:
                raw = base64.b64decode("".join(data["image/png"]))
                digest = hashlib.sha256(raw).hexdigest()
                if digest in seen:
                    continue  # the same figure again: shown once
                seen.add(digest)
                slim = palette_png(raw)
                if len(slim) < len(raw):
                    data["image/png"] = base64.b64encode(slim).decode("ascii")
                    seen.add(hashlib.sha256(slim).hexdigest())
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    new = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if new != text:
        atomic_write_text(path, new)
    return len(text.encode()), len(new.encode())


INJECTED = "injected-parameters"
CELL_TIMINGS = ("start_time", "end_time", "duration")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def progress_text(widgets: dict, model_id: str, fallback: str) -> str:
    """A tqdm progress bar's saved widget (a box of a label, a bar and a counter) as one line:
    its label and how far the bar got, "training: 3/3"; ``fallback`` for any other widget."""
    box = widgets.get(model_id, {}).get("state", {})
    parts = [widgets.get(str(c).removeprefix("IPY_MODEL_"), {}).get("state", {}) for c in box.get("children", [])]
    bars = [p for p in parts if isinstance(p.get("value"), (int, float)) and isinstance(p.get("max"), (int, float))]
    if not bars:
        return fallback
    labels = [html.unescape(p["value"]).replace("\u2007", " ") for p in parts if isinstance(p.get("value"), str)]
    label = labels[0].rsplit(":", 1)[0].strip() if labels and ":" in labels[0] else "progress"
    bar = bars[0]
    stopped = " (stopped early)" if bar.get("bar_style") == "danger" else ""
    return f"{label}: {bar['value']:,.0f}/{bar['max']:,.0f}{stopped}"
