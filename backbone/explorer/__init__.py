"""The pair explorer: browse a verification result pair by pair in JupyterLab.

``PairExplorer(open_source(run="experiments/runs/triplet-cbam-s0"))`` shows both faces of each
pair, its similarity and verdict, filters (false accepts, false rejects, twin negatives, hardest
pairs), a live threshold with FAR/FRR/accuracy/F1 and the ROC point, attention overlays, and
verification of two uploaded images. ``review`` holds the logic, ``render`` the drawing,
``sources`` the loading and ``widget`` the thin ipywidgets layer.
"""

from backbone.explorer.review import FILTERS, ORDERS, PairReview, PairView
from backbone.explorer.sources import ExplorerSource, open_checkpoint, open_run, open_scores, open_source
from backbone.explorer.widget import PairExplorer

__all__ = [
    "FILTERS",
    "ORDERS",
    "PairReview",
    "PairView",
    "ExplorerSource",
    "PairExplorer",
    "open_checkpoint",
    "open_run",
    "open_scores",
    "open_source",
]
