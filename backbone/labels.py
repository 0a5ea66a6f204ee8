"""The one label convention of the project.

A pair label is ``SAME`` (1) when both images show the same person and ``DIFFERENT`` (0)
otherwise. Pair files, losses, metrics and plots all use these names; never a bare 0/1.
"""

SAME: int = 1
DIFFERENT: int = 0
