"""The identity index: every image of a data set, who it shows, and (optionally) their group.

A group ties identities that must be told apart from each other, e.g. twin siblings. Every
reader in ``backbone.data`` builds an :class:`IdentityIndex`; pair generation, splits,
validation and the datasets all read from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image: its path relative to the index root (POSIX form) and its identity."""

    path: str
    identity: str
    group: str | None = None


@dataclass(frozen=True)
class IdentityIndex:
    """An immutable, sorted list of image records under one root directory."""

    root: Path
    records: tuple[ImageRecord, ...] = field(default_factory=tuple)
    name: str = ""

    @classmethod
    def from_records(cls, root: str | Path, records: Iterable[ImageRecord], name: str = "") -> IdentityIndex:
        """Build an index; records are sorted so that every derived file is deterministic."""
        records = tuple(sorted(records))
        seen: dict[str, str] = {}
        for r in records:
            if r.path in seen and seen[r.path] != r.identity:
                raise ValueError(f"image {r.path} is listed for two identities: {seen[r.path]}, {r.identity}")
            seen[r.path] = r.identity
        return cls(root=Path(root), records=records, name=name)

    def __len__(self) -> int:
        return len(self.records)

    @cached_property
    def by_identity(self) -> dict[str, list[str]]:
        """Identity -> sorted image paths."""
        out: dict[str, list[str]] = defaultdict(list)
        for r in self.records:
            out[r.identity].append(r.path)
        return dict(sorted(out.items()))

    @cached_property
    def identity_of(self) -> dict[str, str]:
        """Image path -> identity."""
        return {r.path: r.identity for r in self.records}

    @cached_property
    def group_of(self) -> dict[str, str | None]:
        """Identity -> group (None for identities without one)."""
        return {r.identity: r.group for r in self.records}

    @cached_property
    def groups(self) -> dict[str, list[str]]:
        """Group -> sorted identities in it."""
        out: dict[str, set[str]] = defaultdict(set)
        for r in self.records:
            if r.group is not None:
                out[r.group].add(r.identity)
        return {g: sorted(ids) for g, ids in sorted(out.items())}

    @property
    def identities(self) -> list[str]:
        return list(self.by_identity)

    def siblings(self, identity: str) -> list[str]:
        """Other identities in the same group (e.g. the twin), empty if none."""
        group = self.group_of.get(identity)
        if group is None:
            return []
        return [i for i in self.groups[group] if i != identity]

    def absolute(self, path: str) -> Path:
        return self.root / path

    def subset(self, identities: Iterable[str], name: str | None = None) -> IdentityIndex:
        """The records of the given identities only (unknown names raise KeyError)."""
        return self._select("identity", identities, self.by_identity, "identities", name)

    def only_paths(self, paths: Iterable[str], name: str | None = None) -> IdentityIndex:
        """The records of the given image paths only (unknown paths raise KeyError)."""
        return self._select("path", paths, self.identity_of, "images", name)

    def _select(self, field_name: str, values: Iterable[str], known, what: str, name: str | None) -> IdentityIndex:
        wanted = set(values)
        unknown = wanted - set(known)
        if unknown:
            raise KeyError(f"{len(unknown)} {what} not in the index {self.root}: {sorted(unknown)[:10]}")
        return IdentityIndex(
            root=self.root,
            records=tuple(r for r in self.records if getattr(r, field_name) in wanted),
            name=self.name if name is None else name,
        )

    def summary(self) -> str:
        return (
            f"{self.name or self.root}: {len(self.records)} images, "
            f"{len(self.by_identity)} identities, {len(self.groups)} groups"
        )
