"""The BentoML service for the promoted self-training model.

Serve with ``bentoml serve serving.service:SelftrainClassifier`` (or ``make serve``).
The model is the production model of the configuration's model line (selftrain.lines), or
the tag in $SELFTRAIN_MODEL_TAG, or, in a built Bento, the model it packed. It is resolved
at import so that the class-level reference names one exact model and ``bentoml build``
packs it. With no such model the import stops with one message, and no server starts.
Unless the model is pinned, the running server follows newer promotions
(serving.reload).
"""

from __future__ import annotations

import os

# Before scikit-learn loads OpenMP: one inference thread per worker, or
# HistGradientBoosting's threads collapse under concurrent load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import asyncio  # noqa: E402

import anyio  # noqa: E402
import bentoml  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from serving.model import (  # noqa: E402
    TAG_ENV,
    LoadedModel,
    NoPromotedModel,
    load_serving_settings,
    open_model,
    packed_model_tag,
    resolve_model_tag,
)
from serving.reload import ModelWatcher, reload_interval  # noqa: E402
from serving.routes import app, require_bearer_token  # noqa: E402
from serving.served import ServedModel  # noqa: E402

BATCHING_ENV = "SELFTRAIN_BATCHING"

SETTINGS = load_serving_settings()
PACKED_TAG = packed_model_tag(SETTINGS.model_name)
try:
    MODEL_TAG = resolve_model_tag(SETTINGS.model_name, os.environ.get(TAG_ENV) or PACKED_TAG)
    RELOAD_SECONDS = reload_interval(pinned=PACKED_TAG is not None)
except (NoPromotedModel, ValueError) as exc:
    raise SystemExit(f"selftrain serve: cannot start: {exc}") from None


# Outermost: the token check covers every path of the server, BentoML's own included.
@require_bearer_token
@bentoml.service(
    name="selftrain",
    workers=1,
    # timeout: a request (body upload included) that takes longer gets a 504.
    # max_concurrency: requests in progress at once per server (probes and /metrics
    # exempt); the next one gets an immediate 429 instead of queueing without bound.
    traffic={"timeout": 60, "max_concurrency": 256},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
@bentoml.asgi_app(app, path="/")
class SelftrainClassifier:
    """Answers POST /predict, POST /predict_proba and GET /metadata (see serving.routes)."""

    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        threadpool_limits(1)
        # One inference at a time per worker: two cores are shared with the HTTP loop.
        self._limiter = anyio.CapacityLimiter(1)
        self._batching = os.environ.get(BATCHING_ENV, "1") != "0"
        self.current = self._serve(open_model(self.model_ref))
        self._watch: asyncio.Task | None = None

    @bentoml.on_startup
    async def watch_store(self) -> None:
        """Follow newer production models (see serving.reload), unless pinned."""
        if RELOAD_SECONDS is None:
            return
        watcher = ModelWatcher(SETTINGS.model_name, RELOAD_SECONDS, self.current.model, self.swap)
        self._watch = asyncio.get_running_loop().create_task(watcher.run())

    @bentoml.on_shutdown
    async def stop_watching(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    def swap(self, model: LoadedModel) -> None:
        """Serve ``model`` from the next request on; on the event loop only."""
        previous, self.current = self.current, self._serve(model)
        previous.retire()

    def _serve(self, model: LoadedModel) -> ServedModel:
        return ServedModel(model, SETTINGS.max_batch_rows, self._limiter, self._batching)
