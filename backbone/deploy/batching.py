"""Micro-batching: requests that arrive together share one forward pass.

One worker task owns the model. It takes the first waiting request, then every request already
queued, runs them as one batch (up to ``max_batch`` rows) in a thread of its own, and hands each
request its rows. Requests that arrive while a batch runs queue for the next one, so under load
the batches grow by themselves. A request announces its rows when it starts (:meth:`reserve`),
before its images are decoded and aligned: while rows are announced but not yet queued, a batch
waits for them, up to ``window`` seconds. A lone request never waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np


@dataclass
class _Job:
    items: np.ndarray  # (k, ...)
    done: asyncio.Future


class MicroBatcher:
    """Batches calls of ``fn`` (``(N, ...) -> (N, ...)``, row by row) across concurrent requests.

    Args:
        fn: the batched function (the model's forward pass); runs in one thread, one batch at a time.
        max_batch: the most rows in one call (a request larger than this runs alone).
        window: seconds a batch waits for announced rows (requests still decoding their images).
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], max_batch: int = 32, window: float = 0.005):
        if max_batch < 1 or window < 0:
            raise ValueError(f"max_batch must be >= 1 and window >= 0, got {max_batch} and {window}")
        self.fn, self.max_batch, self.window = fn, max_batch, window
        self.queue: asyncio.Queue[_Job] | None = None  # made by start(), in its event loop
        self.executor: ThreadPoolExecutor | None = None
        self.batches = 0  # forward passes so far
        self.rows = 0  # rows embedded so far
        self.announced = 0  # rows of requests that are on their way (reserve) but not queued yet
        self._worker: asyncio.Task | None = None
        self._held: _Job | None = None  # the job that did not fit the last batch: first in the next

    def start(self) -> None:
        """Start the worker in the running event loop (an app's startup; again after stop())."""
        self.queue, self._held = asyncio.Queue(), None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker (an app's shutdown); requests still queued get a RuntimeError."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        left = [self._held] if self._held else []
        while self.queue is not None and not self.queue.empty():
            left.append(self.queue.get_nowait())
        for job in left:
            if not job.done.done():
                job.done.set_exception(RuntimeError("the service is shutting down"))
        self._held = None
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    async def __call__(self, items: np.ndarray) -> np.ndarray:
        """``fn(items)``, batched with whatever else is waiting."""
        if self._worker is None:
            raise RuntimeError("the batcher is not running (start() it inside the event loop)")
        job = _Job(items, asyncio.get_running_loop().create_future())
        self.queue.put_nowait(job)
        return await job.done

    @asynccontextmanager
    async def reserve(self, rows: int) -> AsyncIterator[Callable[[np.ndarray], Awaitable[np.ndarray]]]:
        """Announce ``rows`` that will come (a request about to decode its images); yields the
        call that submits them, which withdraws the announcement, as does leaving without it."""
        self.announced += rows
        pending = rows

        async def submit(items: np.ndarray) -> np.ndarray:
            nonlocal pending
            self.announced -= pending
            pending = 0
            return await self(items)

        try:
            yield submit
        finally:
            self.announced -= pending

    async def _collect(self) -> list[_Job]:
        jobs = [self._held or await self.queue.get()]
        self._held = None
        rows = len(jobs[0].items)
        deadline = time.monotonic() + self.window
        while rows < self.max_batch:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0 or self.announced == 0:  # nothing more is on its way
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            if rows + len(job.items) > self.max_batch:
                self._held = job
                break
            jobs.append(job)
            rows += len(job.items)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            jobs = [job for job in jobs if not job.done.cancelled()]  # clients that gave up
            if not jobs:
                continue
            try:
                out = await loop.run_in_executor(self.executor, self.fn, np.concatenate([j.items for j in jobs]))
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure
                for job in jobs:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            self.batches += 1
            self.rows += len(out)
            start = 0
            for job in jobs:
                if not job.done.done():
                    job.done.set_result(out[start : start + len(job.items)])
                start += len(job.items)
