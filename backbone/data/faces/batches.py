"""Training batches gathered by index from tensors on the training device, instead of a DataLoader.

A DataLoader builds every batch image by image: a worker fetches each item, and the batch is
collated and copied to the device. With the crops already decoded (the face cache), that Python
loop is all that is left to wait for, and on a GPU it starves the model (one worker delivered
about 5% of what an H200 can train on). :class:`TensorBatches` holds a data set as a few tensors
(the uint8 crops once, labels, masks, targets) on the training device and gathers each batch with
one indexing operation there; augmentation then works on the whole batch on the same device
(``BatchAugment``).

The order is the sampler's, drawn exactly as a DataLoader draws it (the same generator, the
same draws, whole batches only), so for one seed both paths give the same batches: the regimes'
samplers (family batches, m images per identity, shuffled pairs) keep their semantics and seeds.
A data set takes this path when it can describe itself as columns (``columns()``: the data
sets of ``backbone.data.faces.datasets`` and the regimes' wrappers) and needs no per-image
transform.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import torch
from torch.utils.data import Sampler


@dataclass
class Column:
    """One field of a data set's items as a tensor: ``storage[rows[i]]`` is item ``i``'s (``rows``
    None: ``storage[i]``). Shared rows (an image in many pairs) are stored once."""

    storage: torch.Tensor
    rows: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.rows is not None:
            self.rows = self.rows.long()

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.storage)

    def to(self, device: torch.device | str) -> Column:
        return Column(self.storage.to(device), None if self.rows is None else self.rows.to(device))

    def take(self, items: torch.Tensor) -> torch.Tensor:
        """The batch of ``items`` (indices on this column's device)."""
        return self.storage[items if self.rows is None else self.rows[items]]


def stacked(values: list) -> torch.Tensor:
    """One tensor of what a DataLoader would collate from these item fields (Python numbers:
    int64 or float64, as ``default_collate``; tensors: stacked)."""
    if torch.is_tensor(values[0]):
        return torch.stack(values)
    return torch.tensor(values)


class TensorBatches:
    """Batches of ``batch_size`` items of ``columns`` in ``sampler``'s order, on ``device``.

    Iterating draws exactly what ``DataLoader(dataset, batch_size, sampler=sampler,
    drop_last=True, generator=generator)`` draws (its workers' base seed first, then the sampler),
    so both yield the same batches: a list with one tensor per column, ``(B, ...)``.

    Args:
        columns: the data set's fields (all of one length).
        sampler: the item order (its ``len`` counts items, as a DataLoader's sampler).
        batch_size: items per batch; an incomplete last batch is dropped.
        generator: the loader's generator (a DataLoader draws its workers' base seed from it).
        device: where the columns are held and batches are made.
    """

    def __init__(
        self,
        columns: list[Column],
        sampler: Sampler[int],
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ):
        sizes = {len(c) for c in columns}
        if len(sizes) != 1:
            raise ValueError(f"the columns differ in length: {sorted(sizes)}")
        self.device = torch.device(device)
        self.columns = [c.to(self.device) for c in columns]
        self.sampler, self.batch_size, self.generator = sampler, batch_size, generator
        self.items = sizes.pop()

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        # A DataLoader draws one number from its generator for its workers' seeds on every pass,
        # before its sampler draws: the same draw here keeps the sampler's stream the same.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        order = iter(self.sampler)
        while len(items := list(islice(order, self.batch_size))) == self.batch_size:
            picked = torch.tensor(items, dtype=torch.long).to(self.device, non_blocking=True)
            yield [c.take(picked) for c in self.columns]
