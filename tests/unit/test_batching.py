"""The serving batcher: concurrent requests share model calls, each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading

import anyio
import numpy as np
import pytest

from serving.batching import Batcher

pytestmark = pytest.mark.timeout(20)  # a lost wake-up would hang, not fail


class CountingModel:
    """Doubles its input; records the size of every call; ``gate`` holds the first call."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()

    def __call__(self, rows: np.ndarray):
        self.gate.wait(5)
        self.calls.append(len(rows))
        return rows[:, 0] * 2, rows * 2


def run(coro):
    return asyncio.run(coro)


def test_requests_that_wait_share_one_call_and_get_their_own_rows():
    model = CountingModel()

    async def scenario():
        batcher = Batcher(model, max_rows=100, limiter=anyio.CapacityLimiter(1))
        first = asyncio.create_task(batcher(np.full((1, 2), 0.0)))
        await asyncio.sleep(0.05)  # the first call is running (held by the gate)
        rest = [asyncio.create_task(batcher(np.full((n, 2), float(n)))) for n in (1, 2, 3)]
        await asyncio.sleep(0.05)
        model.gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = run(scenario())
    assert model.calls == [1, 6]  # the three that queued went together
    for n, (labels, proba) in zip((1, 2, 3), rest, strict=True):
        assert labels.tolist() == [2.0 * n] * n and proba.shape == (n, 2)
    assert first[1].tolist() == [[0.0, 0.0]]


def test_a_batch_never_exceeds_max_rows_and_never_splits_a_request():
    model = CountingModel()

    async def scenario():
        batcher = Batcher(model, max_rows=4, limiter=anyio.CapacityLimiter(1))
        first = asyncio.create_task(batcher(np.zeros((1, 2))))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(batcher(np.zeros((n, 2)))) for n in (3, 2, 6)]
        await asyncio.sleep(0.05)
        model.gate.set()
        await first
        return await asyncio.gather(*queued)

    answers = run(scenario())
    assert model.calls == [1, 3, 2, 6]  # 3+2 > 4; a 6-row request goes whole, alone
    assert [len(labels) for labels, _ in answers] == [3, 2, 6]


def test_a_model_error_reaches_every_request_of_its_batch_and_the_next_call_runs():
    calls = []

    def failing(rows):
        calls.append(len(rows))
        if len(calls) == 1:
            raise ValueError("model broke")
        return rows[:, 0], rows

    async def scenario():
        batcher = Batcher(failing, max_rows=10, limiter=anyio.CapacityLimiter(1))
        with pytest.raises(ValueError, match="model broke"):
            await batcher(np.zeros((2, 2)))
        return await batcher(np.ones((1, 2)))

    labels, _ = run(scenario())
    assert labels.tolist() == [1.0] and calls == [2, 1]


def test_a_cancelled_request_does_not_disturb_the_others():
    model = CountingModel()

    async def scenario():
        batcher = Batcher(model, max_rows=10, limiter=anyio.CapacityLimiter(1))
        first = asyncio.create_task(batcher(np.zeros((1, 2))))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(batcher(np.ones((1, 2))))
        kept = asyncio.create_task(batcher(np.full((1, 2), 3.0)))
        await asyncio.sleep(0.05)
        gone.cancel()  # its client hung up
        model.gate.set()
        await first
        return await kept

    labels, _ = run(scenario())
    assert labels.tolist() == [6.0]
