"""One run at a time: two real ``selftrain run`` processes in one workspace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ARGS = [sys.executable, "-m", "flows.cli", "run", "--force", "--set", "self_training.max_rounds=2",
        "--set", "self_training.teacher=null", "--set", "gate.min_gain=-1",
        "--set", "gate.max_regression=1"]


def _env(prefect_api: str, workspace: Path) -> dict:
    env = dict(os.environ, PREFECT_API_URL=prefect_api, BENTOML_HOME=str(workspace / "bentoml"))
    env["PREFECT_HOME"] = str(workspace / "prefect-home")
    return env


def _wait_for_lock(lock: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not (lock.exists() and f"pid {proc.pid}" in lock.read_text()):
        assert proc.poll() is None, "the first run ended before it took the lock"
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.05)


def test_a_second_run_exits_at_once_or_queues_with_wait(prefect_api, workspace):
    env, lock = _env(prefect_api, workspace), workspace / ".selftrain/run.lock"
    # The first run lingers 45 s in packaging, holding the lock: on a loaded machine a
    # second process can take longer to start than a whole quick run takes.
    slow = {**env, "SELFTRAIN_PAUSE_AT": "written", "SELFTRAIN_PAUSE_SECONDS": "45"}
    first = subprocess.Popen(ARGS, env=slow, cwd=workspace, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_lock(lock, first)
        refused = subprocess.run(ARGS, env=env, cwd=workspace, capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        message = refused.stdout + refused.stderr
        assert "not started" in message and "this workspace is busy" in message
        assert f"pid {first.pid}" in message and "--wait" in message
        assert "Traceback" not in message
        queued = subprocess.Popen([*ARGS, "--wait"], env=env, cwd=workspace,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first_out, _ = first.communicate(timeout=600)
        first_done = time.monotonic()
        assert first.returncode == 0, first_out[-2000:]
        queued_out, _ = queued.communicate(timeout=600)
        assert queued.returncode == 0, queued_out[-2000:]
        assert time.monotonic() >= first_done  # it ran after the first, not beside it
        assert f"pid {queued.pid}" in lock.read_text()  # the lock was its own in the end
    finally:
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
