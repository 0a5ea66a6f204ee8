"""Checks of a data set: validation (every problem, with file and line) and analysis (counts,
sizes, modes, the twin pixel baseline)."""
