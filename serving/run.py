"""Start the prediction server: the body of ``selftrain serve`` and ``make serve``.

``bentoml serve`` runs in a process group of its own (it starts workers of its own);
SIGTERM or SIGINT to ``selftrain serve`` is passed on to that whole group (SIGHUP, a
closed terminal, as SIGTERM: to BentoML's process manager SIGHUP means reload), and
``selftrain serve`` returns only once the server has stopped: SIGKILL to the group when
it has not stopped within ``STOP_TIMEOUT`` seconds. So no orphan server keeps answering.
(A SIGKILL to ``selftrain serve`` itself cannot be passed on: stop it with SIGTERM.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from selftrain.offline import TELEMETRY_OFF
from selftrain.record import recorded_serving
from serving.model import LINE_ENV, TAG_ENV, model_line, resolve_model_tag

SERVICE = "serving.service:SelftrainClassifier"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUIET_ENV = {**TELEMETRY_OFF, "OMP_NUM_THREADS": "1"}
# Signal received -> signal sent to the server's process group.
FORWARDED_SIGNALS = {signal.SIGTERM: signal.SIGTERM, signal.SIGINT: signal.SIGINT,
                     signal.SIGHUP: signal.SIGTERM}
STOP_TIMEOUT = 30.0


def serve(port: int | None = None, tag: str | None = None, host: str = "127.0.0.1") -> int:
    """Run ``bentoml serve`` in the foreground until it stops; returns its exit code.

    With ``tag`` (or $SELFTRAIN_MODEL_TAG) the server serves that model only; without,
    the production model of the line (the model line of params.yaml), and it follows
    the line's promotions and rollbacks. The port defaults to the one recorded with the
    model (``serving.port``).

    Raises ``selftrain.store.NoServableModel`` before starting anything when the
    store has no model to serve (or not the requested ``tag``).
    """
    requested = tag or os.environ.get(TAG_ENV)
    line = requested.split(":")[0] if requested and ":" in requested else model_line()
    resolved = resolve_model_tag(line, requested)
    import bentoml

    settings = recorded_serving(bentoml.models.get(resolved).info.metadata, resolved)
    # Only a requested tag is pinned: otherwise the server follows new promotions.
    env = server_env(resolved if requested else None, **{LINE_ENV: line})
    return run_server(server_command(port or settings.port, host), env)


def run_server(command: Sequence[str], env: dict[str, str] | None = None,
               stop_timeout: float = STOP_TIMEOUT) -> int:
    """Run ``command`` in a new process group until it exits; its exit code
    (128 + signal number when a signal ended it).

    A stop signal received meanwhile goes to the whole group; if the group's leader
    has not exited ``stop_timeout`` seconds after the first one, the group is killed.
    Once the leader has exited, any process left in its group gets SIGTERM, then SIGKILL.
    """
    received: list[int] = []

    def forward(signum, _frame) -> None:
        received.append(FORWARDED_SIGNALS[signum])
        if proc is not None:
            _signal_group(proc.pid, received[-1])

    proc: subprocess.Popen | None = None
    previous = _install(dict.fromkeys(FORWARDED_SIGNALS, forward))
    try:
        proc = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        if received:  # a signal arrived before the server existed
            _signal_group(proc.pid, received[0])
        deadline = None
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and deadline is None:
                deadline = time.monotonic() + stop_timeout
            if deadline is not None and time.monotonic() > deadline:
                _signal_group(proc.pid, signal.SIGKILL)
                code = proc.wait()
                break
        _reap_group(proc.pid, timeout=min(stop_timeout, 10.0))
        return 128 - code if code < 0 else code
    finally:
        if proc is not None and proc.poll() is None:  # an exception above: no orphans
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        _install(previous)


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


def _install(handlers: dict) -> dict:
    """Set the {signal: handler} ``handlers``; the handlers they replaced. Only the main
    thread may set handlers: elsewhere, nothing changes (and no signal is forwarded)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, signal.SIG_DFL if action is None else action)
            for signum, action in handlers.items()}


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group ``pgid``; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):  # none left, or none of ours
        return False


def _reap_group(pgid: int, timeout: float) -> None:
    """After the leader exited: SIGTERM to what is left of its group, SIGKILL if it stays."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not _signal_group(pgid, 0):
            return
    _signal_group(pgid, signal.SIGKILL)
