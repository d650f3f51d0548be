"""The BentoML service for the promoted self-training model.

Serve with ``bentoml serve serving.service:SelftrainClassifier`` (or ``selftrain serve``).
The model is resolved at import (see serving.model) so that the class-level reference
names one exact model, ``bentoml build`` packs it, and the endpoints' typed input is the
model's own feature schema, shown on the OpenAPI page (/docs.json). With no such model
the import stops with one message, and no server starts. Unless pinned, the running
server follows newer promotions of its line (serving.reload).

Around the endpoints, as ASGI middleware: the bearer-token check (serving.auth), then our
strict request check (serving.guard), so a bad request gets a 4xx naming row and field.
"""

from __future__ import annotations

import os

# Before scikit-learn loads OpenMP: one inference thread per worker, or
# HistGradientBoosting's threads collapse under concurrent load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import asyncio  # noqa: E402

import anyio  # noqa: E402
import bentoml  # noqa: E402
import numpy as np  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from selftrain.row_rules import RowValidator  # noqa: E402
from selftrain.store import NoServableModel  # noqa: E402
from serving.auth import BearerTokenAuth, bearer_token_or_exit  # noqa: E402
from serving.batching import Batcher  # noqa: E402
from serving.guard import RequestGuard  # noqa: E402
from serving.model import (  # noqa: E402
    TAG_ENV,
    LoadedModel,
    Prediction,
    Probabilities,
    model_line,
    open_model,
    packed_model_tag,
    resolve_model_tag,
    stored_schema,
)
from serving.reload import ModelWatcher, reload_interval  # noqa: E402

BATCHING_ENV = "SELFTRAIN_BATCHING"
WORKERS_ENV = "SELFTRAIN_WORKERS"

PACKED_TAG = packed_model_tag()
try:
    MODEL_TAG = resolve_model_tag(model_line(), os.environ.get(TAG_ENV) or PACKED_TAG)
    RELOAD_SECONDS = reload_interval(pinned=PACKED_TAG is not None)
    WORKERS = os.environ.get(WORKERS_ENV, "1")
    if not (WORKERS.isdigit() and int(WORKERS) >= 1):
        raise ValueError(f"${WORKERS_ENV} must be a number of processes >= 1, got {WORKERS!r}")
except (NoServableModel, ValueError) as exc:
    raise SystemExit(f"selftrain serve: cannot start: {exc}") from None
TOKEN = bearer_token_or_exit()
# The typed input of both endpoints: the rows of the model's schema, as records or arrays.
# A reload never changes the schema (serving.reload), so this stays true for the server.
Rows = RowValidator(stored_schema(MODEL_TAG), 1).rows_type


async def metadata(request) -> JSONResponse:
    """Tag, schema, test metrics, lineage and predictor of the served model."""
    return JSONResponse(bentoml.get_current_service().current.model.describe())


@bentoml.service(
    name="selftrain",
    # Worker processes, each with its own model and event loop (default 1).
    workers=int(WORKERS),
    # timeout: a request (body upload included) that takes longer gets a 504.
    # max_concurrency: requests in progress at once per server (probes and /metrics
    # exempt); the next one gets an immediate 429 instead of queueing without bound.
    traffic={"timeout": 60, "max_concurrency": 256},
    # No OpenTelemetry span nor access-log line per prediction: together they took 60 % of
    # the event loop's time at 64 clients (py-spy; 239 -> 604 requests/s). Refusals are
    # logged by serving.guard, and /metrics counts every request by status.
    tracing={"excluded_urls": ["/predict", "/predict_proba"]},
    logging={"access": {"enabled": False}},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
@bentoml.asgi_app(Starlette(routes=[Route("/metadata", metadata)]), path="/")
class SelftrainClassifier:
    """POST /predict, POST /predict_proba (typed, batched), GET /metadata."""

    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        threadpool_limits(1)
        # One inference at a time per worker: two cores are shared with the HTTP loop.
        self._limiter = anyio.CapacityLimiter(1)
        self._batching = os.environ.get(BATCHING_ENV, "1") != "0"
        self.current = ServedModel(open_model(self.model_ref), self._limiter, self._batching)
        self._watch: asyncio.Task | None = None

    @bentoml.api(route="/predict")
    async def predict(self, rows: Rows) -> Prediction:
        """Labels and class probabilities (columns in the order of ``classes``) of each row,
        and the tag of the model that answered."""
        served = self.current  # one model for the whole request, even across a reload
        labels, proba = await served.infer(rows)
        return Prediction.model_construct(model_tag=served.tag, classes=served.classes,
                                          labels=labels.tolist(), probabilities=proba.tolist())

    @bentoml.api(route="/predict_proba")
    async def predict_proba(self, rows: Rows) -> Probabilities:
        """Class probabilities only, columns in the order of ``classes``."""
        served = self.current
        _, proba = await served.infer(rows)
        return Probabilities.model_construct(model_tag=served.tag, classes=served.classes,
                                             probabilities=proba.tolist())

    @bentoml.on_startup
    async def watch_store(self) -> None:
        """Follow newer production models of this line (see serving.reload), unless pinned."""
        if RELOAD_SECONDS is not None:
            line = self.current.tag.split(":")[0]
            watcher = ModelWatcher(line, RELOAD_SECONDS, self.current.model, self.swap)
            self._watch = asyncio.get_running_loop().create_task(watcher.run())

    @bentoml.on_shutdown
    async def stop_watching(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    def swap(self, model: LoadedModel) -> None:
        """Serve ``model`` from the next request on; on the event loop only."""
        self.current = ServedModel(model, self._limiter, self._batching)


class ServedModel:
    """A loaded model with what a request needs from it: validator, body limit, batcher."""

    def __init__(self, model: LoadedModel, limiter: anyio.CapacityLimiter, batching: bool):
        self.model, self.tag, self._limiter = model, model.tag, limiter
        self.classes = [c.item() if isinstance(c, np.generic) else c
                        for c in model.predictor.classes_]
        max_rows = model.settings.max_batch_rows
        self.validator = RowValidator(model.schema, max_rows)
        # Bytes a request of max_rows records may need: name, quotes and a long number.
        self.max_body_bytes = max_rows * sum(len(n) + 32 for n in model.schema.feature_names)
        self.max_body_bytes += 64 * 1024
        self._batcher = Batcher(model.predict, max_rows, limiter) if batching else None

    async def infer(self, rows: list) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) of validated rows, sharing a model call with the
        requests that arrived meanwhile when batching is on."""
        array = self.validator.as_array(rows)
        if self._batcher is not None:
            return await self._batcher(array)
        return await anyio.to_thread.run_sync(self.model.predict, array, limiter=self._limiter)


# Outermost first: the token check, then ours, then the typed endpoint.
SelftrainClassifier.add_asgi_middleware(BearerTokenAuth, token=TOKEN)
SelftrainClassifier.add_asgi_middleware(
    RequestGuard, served=lambda: bentoml.get_current_service().current)
