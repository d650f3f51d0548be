"""The HTTP face of the service: POST /predict, POST /predict_proba, GET /metadata.

These routes read the raw body themselves (size limit, JSON, schema check) so that a
bad request gets a 400/422 naming its row and field, and never reaches the model.
BentoML serves them as a mounted ASGI app next to its own /livez, /readyz, /metrics.

With $SELFTRAIN_API_TOKEN (or $SELFTRAIN_API_TOKEN_FILE) set, every path of the server
except the probes /livez, /readyz and /healthz needs ``Authorization: Bearer <token>``:
``BearerTokenAuth`` is a service-wide ASGI middleware (``require_bearer_token``), so it
covers BentoML's own /metrics, /, /docs.json and /schema.json as well as these routes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import anyio
import bentoml
import numpy as np
import orjson
from bentoml.exceptions import ServiceUnavailable
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from serving.validation import MAX_ECHO, RequestError

logger = logging.getLogger("selftrain.serving")
# BentoML leaves the root logger at WARNING: without a level of its own, the service's
# info lines (refusals, disconnects, reloads) would never reach the server log.
if logger.level == logging.NOTSET:
    logger.setLevel(logging.INFO)

TOKEN_ENV = "SELFTRAIN_API_TOKEN"
TOKEN_FILE_ENV = "SELFTRAIN_API_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
# Probes answer without a token: they tell nothing but "up" and "ready".
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
# Not a standard status (nginx's "client closed request"): never sent, the client is gone;
# it keeps an aborted upload out of the 5xx counts of /metrics.
CLIENT_CLOSED = 499

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
        verb = "dropped" if exc.status == CLIENT_CLOSED else "refused"
        logger.info("%s %s %s: %s", verb, request.method, request.url.path, exc)
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
    """The body, refused (400) as soon as it is known to exceed ``limit`` bytes.

    A client that hangs up mid-body gets a quiet 499 (nobody reads it), not a 500.
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            400, f"request body of {declared[:MAX_ECHO]} bytes exceeds the limit of {limit} bytes"
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(400, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError(
            CLIENT_CLOSED, f"client disconnected after {size} bytes of the body"
        ) from None
    return b"".join(chunks)


class AuthConfigError(ValueError):
    """The token settings are unusable; the server must not start (nor start open)."""


def api_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token from $SELFTRAIN_API_TOKEN or the file $SELFTRAIN_API_TOKEN_FILE
    names (surrounding whitespace stripped); None when neither is set (auth off).

    A variable that is set but empty, an unreadable file, both variables at once, or a
    token shorter than 16 characters or with spaces or non-ASCII raises AuthConfigError.
    """
    inline, path = environ.get(TOKEN_ENV), environ.get(TOKEN_FILE_ENV)
    if inline is not None and path is not None:
        raise AuthConfigError(f"set ${TOKEN_ENV} or ${TOKEN_FILE_ENV}, not both")
    if path is not None:
        source = f"the file ${TOKEN_FILE_ENV} names ({path})"
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise AuthConfigError(f"cannot read the API token from {source}: {reason}") from None
    elif inline is not None:
        source, token = f"${TOKEN_ENV}", inline.strip()
    else:
        return None
    if not token:
        raise AuthConfigError(f"the API token in {source} is empty")
    if len(token) < MIN_TOKEN_CHARS:
        raise AuthConfigError(
            f"the API token in {source} has {len(token)} characters, fewer than "
            f"{MIN_TOKEN_CHARS}: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if not all(33 <= ord(c) <= 126 for c in token):
        raise AuthConfigError(
            f"the API token in {source} must be printable ASCII without spaces"
        )
    return token


class BearerTokenAuth:
    """ASGI middleware: without ``Authorization: Bearer <token>``, a 401 before anything
    else runs (no body is read); the probes in OPEN_PATHS stay open. ``token=None`` lets
    every request through and says once, at startup, that authentication is off.
    """

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self._digest = None if token is None else _sha256(token.encode("ascii"))
        if token is None:
            logger.warning(
                "API authentication is off: set $%s or $%s to require a bearer token",
                TOKEN_ENV,
                TOKEN_FILE_ENV,
            )

    async def __call__(self, scope, receive, send) -> None:
        if (
            self._digest is None
            or scope["type"] not in ("http", "websocket")
            or scope["path"] in OPEN_PATHS
            or self._authorized(scope.get("headers") or [])
        ):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _unauthorized()(scope, receive, send)

    def _authorized(self, headers) -> bool:
        values = [value for name, value in headers if name.lower() == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, credentials = values[0].strip().partition(b" ")
        # Both sides hashed first: equal lengths, so the comparison time says nothing.
        given = _sha256(credentials.strip())
        return scheme.lower() == b"bearer" and hmac.compare_digest(given, self._digest)


def require_bearer_token(service):
    """Class decorator, above ``@bentoml.service``: adds ``BearerTokenAuth`` to the whole
    server (BentoML's public ``add_asgi_middleware``), with the token read now, at import,
    so that a bad token setting stops ``bentoml serve`` with one message."""
    try:
        token = api_token()
    except AuthConfigError as exc:
        raise SystemExit(f"selftrain serve: cannot start: {exc}") from None
    service.add_asgi_middleware(BearerTokenAuth, token=token)
    return service


def _unauthorized() -> Response:
    return Response(
        b'{"error":"missing or invalid bearer token: send \'Authorization: Bearer <token>\'"}',
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _json(content, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )

