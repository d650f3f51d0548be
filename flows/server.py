"""``selftrain server``: the Prefect server and UI, locked down for one machine.

Anyone who reaches an open Prefect API can start runs with any parameters, so the
server this project starts asks for credentials (Prefect's basic auth,
``PREFECT_SERVER_API_AUTH_STRING``: taken from the environment, else from a local secret
file created on first use, mode 0600), accepts browser requests only from its own UI's
origin (CORS), and requires Prefect's CSRF token on state-changing requests. Clients of
this project (``selftrain deploy``, the tests) read the same secret (``client_auth``); the
UI asks for it once, on first load.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path

SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_AUTH_ENV = "PREFECT_API_AUTH_STRING"
AUTH_FILE_ENV = "SELFTRAIN_PREFECT_AUTH_FILE"
USER = "selftrain"


def auth_file() -> Path:
    """``$SELFTRAIN_PREFECT_AUTH_FILE``, else ``~/.config/selftrain/prefect-auth``."""
    configured = os.environ.get(AUTH_FILE_ENV)
    return Path(configured) if configured else Path.home() / ".config/selftrain/prefect-auth"


def auth_string(create: bool = False) -> str | None:
    """``user:password`` for the Prefect API: the environment's, else the secret file's
    (created with a random password when ``create``); None when there is neither."""
    for name in (SERVER_AUTH_ENV, CLIENT_AUTH_ENV):
        if os.environ.get(name):
            return os.environ[name]
    path = auth_file()
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{USER}:{secrets.token_urlsafe(24)}\n")
        with contextlib.suppress(FileExistsError):  # first writer wins, the rest read it
            os.link(tmp, path)
        tmp.unlink()
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def server_env(port: int, environ: dict[str, str]) -> dict[str, str]:
    """The environment of a hardened ``prefect server start`` on 127.0.0.1:``port``."""
    origin = f"http://127.0.0.1:{port}"
    return {
        **environ,
        SERVER_AUTH_ENV: auth_string(create=True),
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": origin,
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_UI_API_URL": f"{origin}/api",
    }


def start_server(port: int) -> None:
    """Replace this process with the hardened Prefect server (signals reach it directly)."""
    prefect = str(Path(sys.executable).with_name("prefect"))
    os.execve(prefect, [prefect, "server", "start", "--host", "127.0.0.1", "--port",
                        str(port)], server_env(port, dict(os.environ)))


def client_auth() -> None:
    """Give this process's Prefect client (and the flow runs it starts) the credentials,
    unless the environment already names them. Call before Prefect is imported."""
    if not os.environ.get(CLIENT_AUTH_ENV):
        found = auth_string()
        if found:
            os.environ[CLIENT_AUTH_ENV] = found
