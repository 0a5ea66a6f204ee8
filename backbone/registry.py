"""One registry per extension point, the way timm's ``register_model`` / ``create_model`` work.

A registry maps a name to a class (or a factory function). Registering is a decorator beside the
definition; building goes through ``create``; the names a config accepts are ``names()``, so an
unknown name is an error that lists what exists, and no separate tuple of names can drift::

    ATTENTION = Registry("attention")

    @ATTENTION.register("cbam")
    class CBAM(nn.Module): ...

    ATTENTION.create("cbam", channels)   # CBAM(channels)
    ATTENTION.names()                    # ("cbam", ...)

The registries: ``backbone.models.attention.ATTENTION``, ``backbone.models.backbones.BACKBONES``
(other names fall through to timm), ``backbone.models.siamese.DISTANCES``,
``backbone.training.regimes.REGIMES``, ``backbone.training.optim.OPTIMISERS`` and ``SCHEDULERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of thing (``what``, used in messages) mapped to what builds them."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """A decorator that registers its class or function under ``name``, with ``info`` about
        it (e.g. a backbone's default input size, like timm's pretrained configs)."""

        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.what} {name!r} is already registered ({self._entries[name]!r})")
            self._entries[name] = entry
            self._info[name] = info
            return entry

        return add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that register a toy entry)."""
        self._entries.pop(name, None)
        self._info.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ValueError(f"unknown {self.what} {name!r}; choose from {self.names()}")
        return self._entries[name]

    def info(self, name: str) -> dict[str, Any]:
        """What was registered about ``name`` (empty for an unknown name)."""
        return dict(self._info.get(name, {}))

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the entry registered as ``name`` with these arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]
