"""Settings dataclasses built from outside input (YAML files, ``--set key=value``, checkpoints),
with every value checked against its field's type before anything runs.

``build(TrainConfig, {"epochs": "three"})`` raises ``ConfigError: epochs must be an integer, got
'three' (str)``; nested settings are named by their dotted key (``data.align.size``), unknown
settings list the known ones. The rules, from the type annotations:

* ``int``: an integer (not ``true``/``false``, not ``1.5``);
* ``float``: a finite number (never ``.nan`` or ``.inf``); a string in number syntax is read as
  one, since YAML 1.1 reads ``1e-3`` (no dot) as a string;
* ``str``: text; ``bool``: ``true``/``false``; ``X | None``: also ``null``;
* a settings dataclass: a mapping, built the same way; settings it leaves out keep the field's
  default (``data: {align: {size: 96}}`` keeps the training config's ``detector: none``).

A settings class states the range of each numeric setting in ``RANGES`` (``{"seed": SEED,
"dropout": Range(0, 1, high_open=True)}``); a value outside it is refused with the dotted key and
the range: ``model.embedding_dim must be at least 1, got 0``.
"""

from __future__ import annotations

import math
import re
import reprlib
import types
import typing
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from backbone.data.errors import DataError
from backbone.data.text import read_text

T = TypeVar("T")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TYPE_NAMES = {
    int: "an integer",
    float: "a finite number",
    str: "a string",
    bool: "true or false",
    type(None): "null",
    dict: "a mapping",
}


class ConfigError(DataError):
    """A setting that is unknown or holds a value of the wrong type or range; names the dotted key."""


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: ``low`` to ``high`` (None: no bound), each end
    included unless ``*_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            if self.low == 0 and self.low_open:
                return "positive"
            return f"{'above' if self.low_open else 'at least'} {low}" if self.low is not None else "any number"
        if self.low is None:
            return f"{'below' if self.high_open else 'at most'} {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else f"{x:g}" if x is not None else ""


POSITIVE = Range(0, low_open=True)
AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
FRACTION = Range(0, 1)
SEED = Range(0, 2**32 - 1)  # numpy's seeds


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping key given twice: told apart from YAML that does not parse, for its own message."""


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one
    silently: ``epochs: 1`` then ``epochs: 20`` further down would train 20 epochs unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in first:
                    raise _DuplicateKey(
                        None, None, f"{key!r} is given twice (first on line {first[key]})", key_node.start_mark
                    )
                first[key] = key_node.start_mark.line + 1
            except TypeError:
                continue  # an unhashable key: the base loader says so
        return super().construct_mapping(node, deep)


def load_yaml(path: Path, what: str = "config file") -> Any:
    """A YAML (or JSON) file's content; anything that is not YAML, or a mapping that gives a key
    twice, raises ConfigError naming the file and line (an editor's line: only ``\\n`` ends one)."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # a SafeLoader: no tags that run code
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{text[: mark.index].count(chr(10)) + 1}" if mark is not None else str(path)
        if isinstance(exc, _DuplicateKey):
            raise ConfigError(f"{where}: {exc.problem}; keep one") from None
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
        _check_range(kwargs[name], getattr(cls, "RANGES", {}).get(name), f"{where}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a dataclass's own checks (__post_init__)
        raise ConfigError(f"{where.rstrip('.') + ': ' if where else ''}{exc}") from None


def _check_range(value: Any, allowed: Range | None, key: str) -> None:
    """ConfigError naming ``key`` when the number ``value`` is outside ``allowed``."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if allowed is not None and number and value not in allowed:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


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
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            value = float(value)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if number and math.isfinite(value) else MISSING
    if option is str:
        return value if isinstance(value, str) else MISSING
    if option is dict:
        return value if isinstance(value, dict) else MISSING
    return value if option is Any else MISSING  # no other types occur in settings


def _describe(option: Any) -> str:
    if is_dataclass(option):
        return f"a mapping of {option.__name__} settings"
    return _TYPE_NAMES.get(option, getattr(option, "__name__", str(option)))
