"""The HTTP face of the service: POST /predict, POST /predict_proba, GET /metadata.

These routes read the raw body themselves (size limit, JSON, schema check) so that a
bad request gets a 400/422 naming its row and field, and never reaches the model.
BentoML serves them as a mounted ASGI app next to its own /livez, /readyz, /metrics.
"""

from __future__ import annotations

import logging

import anyio
import bentoml
import numpy as np
import orjson
from bentoml.exceptions import ServiceUnavailable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.validation import RequestError

logger = logging.getLogger("selftrain.serving")

# Bodies above this are validated in a worker thread, not on the event loop.
INLINE_PARSE_BYTES = 64 * 1024


async def predict(request: Request) -> Response:
    """Labels, class probabilities and the tag of the model that answered."""
    return await _answer(request, with_labels=True)


async def predict_proba(request: Request) -> Response:
    """Class probabilities only, columns in the order of ``classes``."""
    return await _answer(request, with_labels=False)


async def metadata(request: Request) -> Response:
    """Tag, schema, test metrics and lineage of the served model."""
    return _json(bentoml.get_current_service().current.model.describe())


app = Starlette(
    routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/predict_proba", predict_proba, methods=["POST"]),
        Route("/metadata", metadata, methods=["GET"]),
    ]
)


async def _answer(request: Request, with_labels: bool) -> Response:
    # One model for the whole request, even if a reload swaps in another meanwhile.
    served = bentoml.get_current_service().current
    try:
        body = await read_body(request, served.max_body_bytes)
        if len(body) <= INLINE_PARSE_BYTES:
            rows = served.validator.parse(body)
        else:
            rows = await anyio.to_thread.run_sync(served.validator.parse, body)
    except RequestError as exc:
        logger.info("refused %s %s: %s", request.method, request.url.path, exc)
        return _json(exc.body(), status=exc.status)
    try:
        outputs = await served.infer(rows)
    except ServiceUnavailable as exc:
        return _json({"error": str(exc)}, status=503)
    answer = {"model_tag": served.tag, "classes": served.classes}
    if with_labels:
        answer["labels"] = [served.classes[i] for i in outputs[:, 0].astype(np.int64)]
    answer["probabilities"] = np.ascontiguousarray(outputs[:, 1:])
    return _json(answer)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (400) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(
            400, f"request body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(400, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(content, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )
