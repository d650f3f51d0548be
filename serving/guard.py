"""Our strict check in front of the typed endpoints, as an ASGI middleware.

A POST to /predict or /predict_proba is read here first: the body within its size limit
(a client that hangs up mid-body is logged and counted as 499, never a 5xx), then parsed
and validated against the served model's schema (``selftrain.row_rules``). A bad request
gets its 400/422 naming the row and field and never reaches BentoML; a good one is
handed on to the ``@bentoml.api`` endpoint as ``{"rows": [...]}``, its documented body.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from selftrain.row_rules import MAX_ECHO, RequestError

logger = logging.getLogger("selftrain.serving")
GUARDED_PATHS = frozenset({"/predict", "/predict_proba"})
# Not a standard status (nginx's "client closed request"): never sent, the client is gone;
# it keeps an aborted upload out of the 5xx counts of /metrics.
CLIENT_CLOSED = 499
# Bodies above this are validated in a worker thread, not on the event loop.
INLINE_PARSE_BYTES = 64 * 1024


class RequestGuard:
    """ASGI middleware; ``served()`` gives the model in service now (its validator and
    body limit)."""

    def __init__(self, app, served: Callable) -> None:
        self.app, self._served = app, served

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in GUARDED_PATHS \
                or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        served = self._served()
        try:
            # Without a BOM, what we checked is byte for byte what BentoML parses next.
            body = (await read_body(Request(scope, receive), served.max_body_bytes)
                    ).removeprefix(codecs.BOM_UTF8)
            if len(body) <= INLINE_PARSE_BYTES:
                served.validator.check(body)
            else:
                await anyio.to_thread.run_sync(served.validator.check, body)
        except RequestError as exc:
            verb = "dropped" if exc.status == CLIENT_CLOSED else "refused"
            logger.info("%s %s %s: %s", verb, scope["method"], scope["path"], exc)
            response = Response(orjson.dumps(exc.body()), exc.status, media_type="application/json")
            return await response(scope, receive, send)
        if body.lstrip()[:1] == b"[":
            body = b'{"rows":' + body + b"}"
        headers = [(k, v) for k, v in scope["headers"]
                   if k not in (b"content-length", b"content-type", b"transfer-encoding")]
        headers += [(b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json")]
        await self.app({**scope, "headers": headers}, _replay(body, receive), send)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (400) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            400, f"request body of {declared[:MAX_ECHO]} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(400, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError(
            CLIENT_CLOSED, f"client disconnected after {size} bytes of the body") from None
    return b"".join(chunks)


def _replay(body: bytes, receive):
    """A ``receive`` that gives ``body`` once, then whatever the client sends (disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
