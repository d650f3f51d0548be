"""Adaptive batching of small requests with BentoML's own batcher, minus its idle wait.

``@bentoml.api(batchable=True)`` builds a ``CorkDispatcher`` per endpoint. Used that
way it cannot serve this service: it batches before our validation could name a
bad row, answers with a per-row list instead of one body per request, splits
requests above ``max_batch_size``, and its optimizer learns to hold lone requests
after a burst (1-row p50 8.7 -> 94 ms, still 56 ms 30 s later). So the service owns
one ``CorkDispatcher`` for small validated requests, with the learned wait pinned to
zero: a batch leaves as soon as the worker is free and holds everything that queued
while it was busy. Large requests skip the queue entirely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import numpy as np
from bentoml._internal.marshal.dispatcher import CorkDispatcher, Optimizer
from bentoml.exceptions import ServiceUnavailable

# Long enough that the dispatcher never cancels a queued request under a bounded load.
MAX_LATENCY_MS = 30_000


class EagerOptimizer(Optimizer):
    """Keeps BentoML's per-row cost estimate but never waits for more requests."""

    def trigger_refresh(self) -> None:
        super().trigger_refresh()
        self.wait = 0.0


class Batcher:
    """An awaitable ``rows -> outputs`` that stacks concurrent calls into one ``infer``.

    ``infer`` maps an (n, features) array to an (n, k) array; each caller gets its rows.
    ``close`` stops the dispatcher's controller task once nothing is queued (after a
    model reload retires the model this batcher serves).
    """

    def __init__(
        self, infer: Callable[[np.ndarray], Awaitable[np.ndarray]], max_batch_rows: int
    ) -> None:
        self._dispatcher: CorkDispatcher = CorkDispatcher(
            max_latency_in_ms=MAX_LATENCY_MS,
            max_batch_size=max_batch_rows,
            fallback=_overloaded,
            get_batch_size=len,
            batch_dim=(0, 0),
        )
        self._dispatcher.optimizer = EagerOptimizer(self._dispatcher.max_latency)

        async def infer_batches(batches: Sequence[np.ndarray]) -> list[np.ndarray]:
            sizes = np.cumsum([len(b) for b in batches])[:-1]
            outputs = await infer(np.concatenate(batches))
            return np.split(outputs, sizes)

        self._call = self._dispatcher(infer_batches)

    async def __call__(self, rows: np.ndarray) -> np.ndarray:
        return await self._call(rows)

    def close(self) -> None:
        self._dispatcher.shutdown()


def make_batcher(
    infer: Callable[[np.ndarray], Awaitable[np.ndarray]], max_batch_rows: int
) -> Batcher:
    """A ``Batcher`` over ``infer``; see its docstring."""
    return Batcher(infer, max_batch_rows)


def _overloaded():
    raise ServiceUnavailable("the batcher dropped a request that waited too long")
