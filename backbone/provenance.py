"""Where a result or an artefact came from: the commit of the code that made it."""

from __future__ import annotations

import subprocess

from backbone.paths import project_root

# what makes results and models: uncommitted changes here mark a commit "-dirty"
CODE = ("backbone", "notebooks", "pyproject.toml")


def code_commit() -> str:
    """The project's short commit, ``-dirty`` when the code has uncommitted changes; "unknown"
    outside a git checkout."""
    try:
        git = [subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=project_root()).stdout.strip()
               for args in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--", *CODE])]  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return git[0] + ("-dirty" if git[1] else "")
