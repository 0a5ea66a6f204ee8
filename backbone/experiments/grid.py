"""The experiment grid: which notebook runs with which parameters, read from a YAML file.

```yaml
defaults:            # merged under every experiment's parameters
  parameters: {epochs: 4}
experiments:
  - name: contrastive-global
    notebook: notebooks/02_pair_training.ipynb
    parameters: {regime: contrastive}
analysis:
  notebook: notebooks/05_experiment_analysis.ipynb
```

Parameters merge key by key (an experiment's value replaces the default's), except ``overrides``,
the ``key=value`` settings lists: those are joined, the defaults' first, so a grid can set
``data.root=...`` for every experiment and an experiment its own ``optim.lr=...``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from backbone.settings import ConfigError, load_yaml

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def merge_parameters(base: dict, top: dict) -> dict:
    """``top`` over ``base``; their ``overrides`` lists are joined (``base``'s first, so ``top``'s win)."""
    merged = {**base, **top}
    if isinstance(base.get("overrides"), list) and isinstance(top.get("overrides"), list):
        merged["overrides"] = [*base["overrides"], *top["overrides"]]
    return merged


@dataclass(frozen=True)
class Experiment:
    name: str
    notebook: str
    parameters: dict = field(default_factory=dict)

    def fingerprint(self, root: Path) -> str:
        """Changes when the parameters or the notebook's code change: then the results are stale.
        The notebook's prose and saved outputs are not part of it (see :func:`notebook_code`)."""
        digest = hashlib.sha1(json.dumps(self.parameters, sort_keys=True).encode())
        digest.update(notebook_code(root / self.notebook))
        return digest.hexdigest()


def notebook_code(path: Path) -> bytes:
    """What of a notebook makes its results: its code cells' sources and tags, in order, less the
    parameters cell's ``out_dir`` line (the runner always sets it) and less the cells tagged
    ``report``, which only show what the run wrote (its figures, its summary; they may save a
    figure, never a number). Markdown cells, outputs and metadata do not change a result either, so
    rewording a notebook, or adding a figure to it, leaves the runs it made complete."""
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable notebook ({exc})") from None
    code = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        tags = cell.get("metadata", {}).get("tags", [])
        if REPORT_TAG in tags:
            continue
        if "parameters" in tags:
            source = _OUT_DIR.sub("", source)
        code.append((source, tags))
    return json.dumps(code).encode()


REPORT_TAG = "report"
_OUT_DIR = re.compile(r"(?m)^out_dir\s*=.*\n?")


@dataclass(frozen=True)
class Grid:
    path: Path
    experiments: tuple[Experiment, ...]
    analysis_notebook: str | None = None
    analysis_parameters: dict = field(default_factory=dict)

    def select(self, only: list[str] | None = None, shard: str | None = None) -> list[Experiment]:
        """``only`` names experiments; ``shard="K/N"`` keeps every N-th from the K-th (1-based)."""
        chosen = list(self.experiments)
        if only:
            unknown = sorted(set(only) - {e.name for e in chosen})
            if unknown:
                raise ValueError(f"no experiments named {unknown} in {self.path}; known: {[e.name for e in chosen]}")
            chosen = [e for e in chosen if e.name in only]
        if shard:
            k, n = parse_shard(shard)
            chosen = chosen[k - 1 :: n]
        return chosen


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise ValueError(f"--shard must look like K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return int(m[1]), int(m[2])


def read_grid(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A grid file as a dict, with ``extends: OTHER.yaml`` (relative to the file) resolved: the
    other grid's defaults, experiments and analysis, this file's defaults merged on top and its
    experiments appended (or replacing those of the same name)."""
    if not path.is_file():
        raise FileNotFoundError(f"grid file {path} does not exist")
    if path.resolve() in seen:
        raise ValueError(f"{path}: grids extend each other in a loop ({' -> '.join(map(str, seen))})")
    d = load_yaml(path, "grid file") or {}
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: a grid is a mapping with experiments (and defaults, analysis, extends)")
    if "extends" not in d:
        return d
    base = read_grid(path.parent / d.pop("extends"), (*seen, path.resolve()))
    defaults = merge_parameters(
        (base.get("defaults") or {}).get("parameters") or {}, (d.get("defaults") or {}).get("parameters") or {}
    )
    mine = {e.get("name"): e for e in d.get("experiments") or [] if isinstance(e, dict)}
    experiments = [mine.pop(e.get("name"), e) for e in base.get("experiments") or []] + list(mine.values())
    return {**base, **d, "defaults": {"parameters": defaults}, "experiments": experiments}


@lru_cache(maxsize=64)
def _inspect(notebook: Path, mtime_ns: int) -> dict[str, object]:
    import papermill as pm

    defaults = {}
    for name, info in pm.inspect_notebook(str(notebook)).items():
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError, TypeError):
            defaults[name] = UNKNOWN  # an expression: known by name only
    return defaults


UNKNOWN = object()


def notebook_defaults(notebook: Path) -> dict[str, object]:
    """The parameters ``notebook``'s parameters cell defines and their values there (``UNKNOWN``
    where one is an expression, not a literal); read again when the file changes."""
    return dict(_inspect(notebook, notebook.stat().st_mtime_ns))


def notebook_parameters(notebook: Path) -> tuple[str, ...]:
    """The names ``notebook``'s parameters cell defines (read again when the file changes)."""
    return tuple(_inspect(notebook, notebook.stat().st_mtime_ns))


def applicable(notebook: Path, shared: dict) -> dict:
    """The shared parameters (a grid's defaults, ``--param``) that ``notebook``'s parameters cell
    defines: shared settings go to the notebooks that have them (a reference row takes no epochs)."""
    known = set(notebook_parameters(notebook))
    return {k: v for k, v in shared.items() if k in known}


def check_shared(notebooks: list[Path], shared: dict, where: str) -> None:
    """Raise a ValueError when a shared parameter is defined by none of ``notebooks`` (misspelt)."""
    known = {k for nb in dict.fromkeys(notebooks) for k in notebook_parameters(nb)}
    unknown = sorted(set(shared) - known)
    if unknown:
        raise ValueError(
            f"{where}: parameters {unknown} are defined by none of the notebooks; they define {sorted(known)}"
        )


def check_parameters(notebook: Path, parameters: dict, where: str) -> None:
    """Raise a ValueError when ``parameters`` names a setting that ``notebook``'s ``parameters``
    cell does not define (papermill would inject it unused, and the run would quietly use the
    default: a misspelt ``atention: cbam`` would train the global-only model)."""
    known = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(
            f"{where}: unknown notebook parameters {unknown} for {notebook.name}; its parameters cell defines "
            f"{sorted(known) if known else 'none (tag a cell parameters)'}"
        )


def load_grid(path: str | Path, root: str | Path = ".") -> Grid:
    """Read and check a grid file; notebook paths are relative to ``root`` (the project)."""
    path, root = Path(path), Path(root)
    d = read_grid(path)
    defaults = (d.get("defaults") or {}).get("parameters") or {}
    experiments, names = [], set()
    for i, e in enumerate(d.get("experiments") or []):
        where = f"{path}: experiment {i + 1}"
        if not isinstance(e, dict) or "name" not in e or "notebook" not in e:
            raise ValueError(f"{where} needs a name and a notebook")
        if not _NAME.match(str(e["name"])) or e["name"] in names:
            raise ValueError(f"{where}: name {e['name']!r} must be unique and made of letters, digits, '.', '_' or '-'")
        if not (root / e["notebook"]).is_file():
            raise ValueError(f"{where}: notebook {e['notebook']} does not exist")
        unknown = set(e) - {"name", "notebook", "parameters", "description"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        names.add(e["name"])
        parameters = merge_parameters(applicable(root / e["notebook"], defaults), e.get("parameters") or {})
        check_parameters(root / e["notebook"], parameters, f"{where} ({e['name']})")
        experiments.append(Experiment(e["name"], e["notebook"], parameters))
    if not experiments:
        raise ValueError(f"{path} lists no experiments")
    check_shared([root / e.notebook for e in experiments], defaults, f"{path}: defaults")
    analysis = d.get("analysis") or {}
    if analysis.get("notebook") and (root / analysis["notebook"]).is_file():
        check_parameters(root / analysis["notebook"], analysis.get("parameters") or {}, f"{path}: analysis")
    return Grid(path, tuple(experiments), analysis.get("notebook"), analysis.get("parameters") or {})
