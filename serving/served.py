"""One loaded model with everything a request needs from it.

A request takes the service's current ``ServedModel`` once and uses it to the end:
its validator, its batcher, its model and its tag. A reload swaps in a new one, so a
request in flight finishes on the model it started with and its answer names that
model; no batch ever mixes rows of two models.
"""

from __future__ import annotations

import anyio
import numpy as np

from serving.batching import Batcher, make_batcher
from serving.model import LoadedModel, predict_rows
from serving.validation import RowValidator

# Requests up to this many rows share batches; larger ones go straight to the model.
SMALL_REQUEST_ROWS = 16


class ServedModel:
    """A model, its request validator and its own batcher; ``retire`` when replaced."""

    def __init__(
        self,
        model: LoadedModel,
        max_rows: int,
        limiter: anyio.CapacityLimiter,
        batching: bool = True,
    ) -> None:
        self.model = model
        self.tag = model.tag
        self.classes = [
            c.item() if isinstance(c, np.generic) else c for c in model.estimator.classes_
        ]
        self.validator = RowValidator(model.schema, max_rows)
        self.max_body_bytes = body_limit(model.schema.feature_names, max_rows)
        # Shared by every ServedModel of the service: old and new never run at once.
        self._limiter = limiter
        self._batched: Batcher | None = None
        if batching:
            self._batched = make_batcher(self._run_model, max_rows)
        self._in_flight = 0
        self._retired = False

    async def infer(self, rows: np.ndarray) -> np.ndarray:
        """Label index in column 0, probabilities after.

        Small requests share batches when others are in flight; a lone request, or a
        large one, goes straight to the model instead of through the batcher's queue.
        """
        self._in_flight += 1
        try:
            shared = self._batched is not None and self._in_flight > 1
            if shared and len(rows) <= SMALL_REQUEST_ROWS:
                return await self._batched(rows)
            return await self._run_model(rows)
        finally:
            self._in_flight -= 1
            if self._retired and self._in_flight == 0:
                self._close()

    def retire(self) -> None:
        """Replaced by a newer model: close the batcher once the last request is done.

        Call on the event loop (the batcher's controller task lives there).
        """
        self._retired = True
        if self._in_flight == 0:
            self._close()

    async def _run_model(self, rows: np.ndarray) -> np.ndarray:
        return await anyio.to_thread.run_sync(predict_rows, self.model, rows, limiter=self._limiter)

    def _close(self) -> None:
        if self._batched is not None:
            self._batched.close()
            self._batched = None


def body_limit(feature_names: list[str], max_rows: int) -> int:
    """Bytes a request of ``max_rows`` records may need: name, quotes and a long number."""
    per_row = sum(len(name) + 32 for name in feature_names)
    return max_rows * per_row + 64 * 1024
