"""Micro-batching (backbone.deploy.batching): concurrent calls share forward passes, and each gets
its own rows back."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from backbone.deploy.batching import MicroBatcher


class Forward:
    """A fake forward pass: row ``r`` -> ``10 * r``, recording the size of every batch it gets."""

    def __init__(self, delay: float = 0.0):
        self.sizes: list[int] = []
        self.delay, self.failing = delay, False

    def __call__(self, items: np.ndarray) -> np.ndarray:
        self.sizes.append(len(items))
        time.sleep(self.delay)
        if self.failing:
            raise ValueError("the model fell over")
        return items * 10


def requests(n: int, rows=lambda i: 1 + i % 3) -> list[np.ndarray]:
    """``n`` requests, request ``i`` of ``rows(i)`` rows, every row unique: ``[i, j]``."""
    return [np.array([[i, j] for j in range(rows(i))]) for i in range(n)]


async def running(batcher: MicroBatcher, *calls):
    batcher.start()
    try:
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await batcher.stop()


def test_concurrent_calls_share_forward_passes_and_each_gets_its_own_rows():
    forward = Forward()
    batcher = MicroBatcher(forward, max_batch=64, window=0.05)
    asked = requests(16)
    answers = asyncio.run(running(batcher, *(batcher(x) for x in asked)))
    for x, y in zip(asked, answers):
        assert np.array_equal(y, x * 10)
    assert len(forward.sizes) < 16 and sum(forward.sizes) == sum(len(x) for x in asked)
    assert (batcher.batches, batcher.rows) == (len(forward.sizes), sum(forward.sizes))


def test_max_batch_is_never_exceeded_and_a_larger_request_runs_alone():
    forward = Forward(delay=0.01)  # requests queue up behind each forward pass
    batcher = MicroBatcher(forward, max_batch=5, window=0.05)
    asked = requests(16) + [np.arange(14).reshape(7, 2)]
    answers = asyncio.run(running(batcher, *(batcher(x) for x in asked)))
    for x, y in zip(asked, answers):
        assert np.array_equal(y, x * 10)
    assert sorted(forward.sizes)[-1] == 7 and forward.sizes.count(7) == 1  # the large one, alone
    assert all(size <= 5 for size in forward.sizes if size != 7)
    assert sum(forward.sizes) == sum(len(x) for x in asked)


def test_a_failure_reaches_every_waiting_caller_and_the_batcher_goes_on():
    forward = Forward()
    forward.failing = True
    batcher = MicroBatcher(forward, max_batch=4, window=0.02)

    async def go():
        batcher.start()
        try:
            failed = await asyncio.gather(*(batcher(x) for x in requests(8)), return_exceptions=True)
            forward.failing = False
            after = await asyncio.gather(*(batcher(x) for x in requests(3)))
            return failed, after
        finally:
            await batcher.stop()

    failed, after = asyncio.run(go())
    assert all(isinstance(e, ValueError) and str(e) == "the model fell over" for e in failed)
    for x, y in zip(requests(3), after):
        assert np.array_equal(y, x * 10)
    assert batcher.rows == sum(len(x) for x in requests(3))  # failed passes count no rows


def test_a_caller_that_gives_up_is_not_computed_and_does_not_disturb_the_others():
    forward = Forward(delay=0.3)
    batcher = MicroBatcher(forward, max_batch=32, window=0.0)

    async def go():
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher(np.array([[1, 1]])))
            await asyncio.sleep(0.05)  # the first forward pass is running
            impatient = asyncio.wait_for(batcher(np.array([[2, 2], [2, 3]])), 0.05)
            patient = batcher(np.array([[3, 3]]))
            return await asyncio.gather(first, impatient, patient, return_exceptions=True)
        finally:
            await batcher.stop()

    first, impatient, patient = asyncio.run(go())
    assert np.array_equal(first, [[10, 10]]) and np.array_equal(patient, [[30, 30]])
    assert isinstance(impatient, TimeoutError)
    assert forward.sizes == [1, 1]  # the impatient caller's two rows never ran


def test_calling_before_start_or_after_stop_raises():
    batcher = MicroBatcher(Forward())

    async def before():
        await batcher(np.zeros((1, 2)))

    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(before())

    async def after():
        batcher.start()
        assert np.array_equal(await batcher(np.ones((1, 2))), [[10, 10]])
        await batcher.stop()
        await batcher(np.zeros((1, 2)))

    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(after())


@pytest.mark.parametrize("max_batch, window", [(0, 0.01), (4, -1.0)])
def test_settings_out_of_range_are_refused(max_batch, window):
    with pytest.raises(ValueError, match="max_batch must be >= 1 and window >= 0"):
        MicroBatcher(Forward(), max_batch=max_batch, window=window)


def test_a_stopped_batcher_serves_again_when_started_in_a_new_event_loop():
    batcher = MicroBatcher(Forward())

    async def lifespan():
        batcher.start()
        try:
            return await asyncio.wait_for(batcher(np.ones((1, 2))), 2.0)
        finally:
            await batcher.stop()

    assert np.array_equal(asyncio.run(lifespan()), [[10, 10]])
    assert np.array_equal(asyncio.run(lifespan()), [[10, 10]])  # as `with TestClient(app)` a second time


async def _reserved(batcher: MicroBatcher, x: np.ndarray, decoding: float, announce: bool = True):
    """A request that announces its rows, decodes for ``decoding`` seconds, then submits."""
    if not announce:
        await asyncio.sleep(decoding)
        return await batcher(x)
    async with batcher.reserve(len(x)) as submit:
        await asyncio.sleep(decoding)
        return await submit(x)


@pytest.mark.parametrize("announce", [True, False])
def test_a_batch_waits_for_rows_that_are_announced_and_only_for_those(announce):
    forward = Forward()
    batcher = MicroBatcher(forward, max_batch=8, window=5.0)
    first, second = np.array([[1, 0]]), np.array([[2, 0], [2, 1]])
    answers = asyncio.run(running(batcher, _reserved(batcher, first, 0.0), _reserved(batcher, second, 0.05, announce)))
    assert np.array_equal(answers[0], first * 10) and np.array_equal(answers[1], second * 10)
    # announced: the first request's batch waits for the second's rows; not announced: it goes alone
    assert forward.sizes == ([3] if announce else [1, 2])
    assert batcher.announced == 0


def test_a_lone_request_does_not_wait_for_the_window():
    forward = Forward()
    batcher = MicroBatcher(forward, max_batch=8, window=30.0)  # a wait would time the test out
    answers = asyncio.run(asyncio.wait_for(running(batcher, _reserved(batcher, np.array([[1, 1]]), 0.0)), 10))
    assert np.array_equal(answers[0], [[10, 10]]) and forward.sizes == [1]


def test_a_request_that_fails_before_submitting_withdraws_its_rows():
    batcher = MicroBatcher(Forward(), max_batch=8, window=5.0)

    async def failing():
        async with batcher.reserve(2):
            raise ValueError("not an image")

    (error,) = asyncio.run(running(batcher, failing()))
    assert isinstance(error, ValueError) and batcher.announced == 0
