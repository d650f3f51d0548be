"""Start the prediction server: the body of ``selftrain serve`` and ``make serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from selftrain.offline import TELEMETRY_OFF
from serving.model import TAG_ENV, load_serving_settings, resolve_model_tag

SERVICE = "serving.service:SelftrainClassifier"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUIET_ENV = {**TELEMETRY_OFF, "OMP_NUM_THREADS": "1"}


def serve(port: int | None = None, tag: str | None = None, host: str = "127.0.0.1") -> int:
    """Run ``bentoml serve`` in the foreground until it stops; returns its exit code.

    With ``tag`` (or $SELFTRAIN_MODEL_TAG) the server serves that model only; without,
    the newest promoted one, and it reloads when a newer one is promoted.

    Raises ``serving.model.NoPromotedModel`` before starting anything when the
    store has no model to serve (or not the requested ``tag``).
    """
    settings = load_serving_settings()
    requested = tag or os.environ.get(TAG_ENV)
    resolved = resolve_model_tag(settings.model_name, requested)
    # Only a requested tag is pinned: otherwise the server follows new promotions.
    env = server_env(resolved if requested else None)
    return subprocess.call(server_command(port or settings.port, host), env=env, cwd=PROJECT_ROOT)


def server_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``bentoml serve`` command line, from the interpreter's own environment."""
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    return [str(bentoml_cli), "serve", SERVICE, "--host", host, "--port", str(port)]


def server_env(tag: str | None = None, **extra: str) -> dict[str, str]:
    """The current environment, telemetry off, one OpenMP thread, the tag pinned."""
    env = {**os.environ, **QUIET_ENV, **extra}
    if tag:
        env[TAG_ENV] = tag
    return env


def main() -> None:
    """``python -m serving.run [PORT]``: what ``make serve`` calls."""
    from serving.model import NoPromotedModel

    port = int(sys.argv[1]) if len(sys.argv) > 1 else None
    try:
        sys.exit(serve(port))
    except NoPromotedModel as exc:
        sys.exit(f"selftrain serve: cannot start: {exc}")


if __name__ == "__main__":
    main()
