"""Bearer-token authentication for the whole server.

With $SELFTRAIN_API_TOKEN (or $SELFTRAIN_API_TOKEN_FILE) set, every path of the server
except the probes /livez, /readyz and /healthz needs ``Authorization: Bearer <token>``:
``BearerTokenAuth`` is a service-wide ASGI middleware (BentoML's public
``add_asgi_middleware``), so it covers BentoML's own /metrics, /, /docs.json and
/schema.json as well as our endpoints, and answers 401 before any body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from starlette.responses import Response

logger = logging.getLogger("selftrain.serving")

TOKEN_ENV = "SELFTRAIN_API_TOKEN"
TOKEN_FILE_ENV = "SELFTRAIN_API_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
# Probes answer without a token: they tell nothing but "up" and "ready".
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})


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
        raise AuthConfigError(f"the API token in {source} must be printable ASCII without spaces")
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
            logger.warning("API authentication is off: set $%s or $%s to require a bearer token",
                           TOKEN_ENV, TOKEN_FILE_ENV)

    async def __call__(self, scope, receive, send) -> None:
        if self._digest is None or scope["type"] not in ("http", "websocket") \
                or scope["path"] in OPEN_PATHS or self._authorized(scope.get("headers") or []):
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


def bearer_token_or_exit() -> str | None:
    """The token, read now (at import of the service) so that a bad setting stops
    ``bentoml serve`` with one message instead of starting an open server."""
    try:
        return api_token()
    except AuthConfigError as exc:
        raise SystemExit(f"selftrain serve: cannot start: {exc}") from None


def _unauthorized() -> Response:
    return Response(b'{"error":"missing or invalid bearer token: send \'Authorization: Bearer '
                    b'<token>\'"}', status_code=401, media_type="application/json",
                    headers={"WWW-Authenticate": "Bearer"})


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
