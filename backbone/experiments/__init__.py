"""Experiments: the grid of notebook runs, the papermill runner, and the analysis of the results."""
