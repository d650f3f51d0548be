"""The BentoML service for the promoted self-training model.

Serve with ``bentoml serve serving.service:SelftrainClassifier`` (or ``make serve``).
The model is the newest ``selftrain-classifier`` labelled stage=production, or the
tag in $SELFTRAIN_MODEL_TAG; it is resolved at import so that the class-level
reference names one exact model and ``bentoml build`` packs it. With no such model
the import stops with one message, and no server starts.
"""

from __future__ import annotations

import os

# Before scikit-learn loads OpenMP: one inference thread per worker, or
# HistGradientBoosting's threads collapse under concurrent load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import anyio  # noqa: E402
import bentoml  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from serving.batching import make_batcher  # noqa: E402
from serving.model import (  # noqa: E402
    TAG_ENV,
    NoPromotedModel,
    load_serving_settings,
    open_model,
    predict_rows,
    resolve_model_tag,
)
from serving.routes import app  # noqa: E402
from serving.validation import RowValidator  # noqa: E402

BATCHING_ENV = "SELFTRAIN_BATCHING"
# Requests up to this many rows share batches; larger ones go straight to the model.
SMALL_REQUEST_ROWS = 16

SETTINGS = load_serving_settings()
try:
    MODEL_TAG = resolve_model_tag(SETTINGS.model_name, os.environ.get(TAG_ENV))
except NoPromotedModel as exc:
    raise SystemExit(f"selftrain serve: cannot start: {exc}") from None


@bentoml.service(
    name="selftrain",
    workers=1,
    traffic={"timeout": 60},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
@bentoml.asgi_app(app, path="/")
class SelftrainClassifier:
    """Answers POST /predict, POST /predict_proba and GET /metadata (see serving.routes)."""

    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        threadpool_limits(1)
        self.model = open_model(self.model_ref)
        self.classes = [
            c.item() if isinstance(c, np.generic) else c for c in self.model.estimator.classes_
        ]
        self.validator = RowValidator(self.model.schema, SETTINGS.max_batch_rows)
        self.max_body_bytes = body_limit(self.model.schema.feature_names, SETTINGS.max_batch_rows)
        # One inference at a time per worker: two cores are shared with the HTTP loop.
        self._limiter = anyio.CapacityLimiter(1)
        self._batched = None
        self._in_flight = 0
        if os.environ.get(BATCHING_ENV, "1") != "0":
            self._batched = make_batcher(self._run_model, SETTINGS.max_batch_rows)

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

    async def _run_model(self, rows: np.ndarray) -> np.ndarray:
        return await anyio.to_thread.run_sync(predict_rows, self.model, rows, limiter=self._limiter)


def body_limit(feature_names: list[str], max_rows: int) -> int:
    """Bytes a request of ``max_rows`` records may need: name, quotes and a long number."""
    per_row = sum(len(name) + 32 for name in feature_names)
    return max_rows * per_row + 64 * 1024
