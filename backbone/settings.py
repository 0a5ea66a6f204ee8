"""Settings dataclasses built from outside input (YAML files, ``--set key=value``, checkpoints),
with every value checked against its field's type before anything runs.

``build(TrainConfig, {"epochs": "three"})`` raises ``ConfigError: epochs must be an integer, got
'three' (str)``; nested settings are named by their dotted key (``data.align.size``), unknown
settings list the known ones. The rules, from the type annotations:

* ``int``: an integer (not ``true``/``false``, not ``1.5``);
* ``float``: a number; a string in number syntax is read as one, since YAML 1.1 reads ``1e-3``
  (no dot) as a string;
* ``str``: text; ``bool``: ``true``/``false``; ``X | None``: also ``null``;
* a settings dataclass: a mapping, built the same way; settings it leaves out keep the field's
  default (``data: {align: {size: 96}}`` keeps the training config's ``detector: none``).
"""

from __future__ import annotations

import re
import reprlib
import types
import typing
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from backbone.data.errors import DataError
from backbone.data.text import read_text

T = TypeVar("T")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}


class ConfigError(DataError):
    """A setting that is unknown or holds a value of the wrong type; names the dotted key."""


def load_yaml(path: Path, what: str = "config file") -> Any:
    """A YAML (or JSON) file's content; anything that is not YAML raises ConfigError naming the
    file and line (an editor's line: only ``\\n`` ends one)."""
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{text[: mark.index].count(chr(10)) + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML/JSON ({getattr(exc, 'problem', None) or exc})") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; nesting deeper than the stack
        raise ConfigError(f"{path}: YAML that cannot be read ({type(exc).__name__}: {str(exc)[:80]})") from None


def build(cls: type[T], d: Any, where: str = "") -> T:
    """``cls(**d)`` with every value type-checked (recursing into settings dataclasses).

    ``where`` is the dotted prefix of ``cls``'s settings (``"data."``) used in messages."""
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise ConfigError(f"{where.rstrip('.') or 'the config'} must be a mapping of settings, got {reprlib.repr(d)}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(d) - set(known))
    if unknown:
        raise ConfigError(f"unknown settings {[where + k for k in unknown]}; known: {sorted(where + k for k in known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in d.items():
        default = _default(known[name])
        if is_dataclass(default) and isinstance(value, dict):
            value = _merge(asdict(default), value)  # settings left out keep this field's default, not its class's
        kwargs[name] = _check(value, hints[name], f"{where}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a dataclass's own checks (__post_init__)
        raise ConfigError(f"{where.rstrip('.') + ': ' if where else ''}{exc}") from None


def _default(f: Any) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _merge(base: dict, over: dict) -> dict:
    """``base`` updated with ``over``, mapping by mapping."""
    merged = dict(base)
    for key, value in over.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merge(base[key], value) if nested else value
    return merged


def _check(value: Any, hint: Any, key: str) -> Any:
    """``value`` if it fits ``hint`` (converted where the rules say so); else ConfigError naming ``key``."""
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    for option in options:
        if is_dataclass(option) and isinstance(option, type):
            if isinstance(value, dict | option):
                return build(option, value, f"{key}.")
            continue
        converted = _convert(value, option)
        if converted is not MISSING:
            return converted
    expected = " or ".join(_describe(o) for o in options)
    raise ConfigError(f"{key} must be {expected}, got {reprlib.repr(value)} ({type(value).__name__})")


def _convert(value: Any, option: Any) -> Any:
    if option is type(None):
        return None if value is None else MISSING
    if option is bool:
        return value if isinstance(value, bool) else MISSING
    if option is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else MISSING
    if option is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return float(value) if isinstance(value, str) and _NUMBER.match(value.strip()) else MISSING
    if option is str:
        return value if isinstance(value, str) else MISSING
    return value if option is Any else MISSING  # no other types occur in settings


def _describe(option: Any) -> str:
    if is_dataclass(option):
        return f"a mapping of {option.__name__} settings"
    return _TYPE_NAMES.get(option, getattr(option, "__name__", str(option)))
