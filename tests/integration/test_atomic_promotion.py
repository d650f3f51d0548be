"""Atomic promotion: real ``selftrain run`` processes killed with SIGKILL at several points
of packaging, while a real ``bentoml serve`` follows the line. The server keeps the previous
champion through every kill, the store stays readable, and a rerun completes the promotion
(without storing another copy of a model a killed run already stored)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import free_port, start_server, stop_server, wait_ready

from tasks.model_store import PAUSE_ENV, PAUSE_POINTS

pytestmark = pytest.mark.slow
QUICK = ["self_training.max_rounds=2", "self_training.teacher=null", "gate.min_gain=-1",
         "gate.max_regression=1"]


def _run_args(seed: int) -> list[str]:
    sets = [arg for item in [*QUICK, f"seed={seed}"] for arg in ("--set", item)]
    return [sys.executable, "-m", "flows.cli", "run", *sets]


def _env(prefect_api: str, workspace: Path, **extra: str) -> dict:
    return {**os.environ, "PREFECT_API_URL": prefect_api, "BENTOML_HOME": str(
        workspace / "bentoml"), "PREFECT_HOME": str(workspace / "prefect-home"), **extra}


def _kill_at(point: str, prefect_api: str, workspace: Path) -> str:
    """Run until packaging pauses at ``point``, then SIGKILL the run's process group."""
    proc = subprocess.Popen(_run_args(seed=1), cwd=workspace, start_new_session=True,
                            env=_env(prefect_api, workspace, **{PAUSE_ENV: point}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:  # the run announces the pause on stderr
            seen.append(line)
            if f"paused at {point}" in line:
                break
        else:
            pytest.fail(f"the run ended without pausing at {point}:\n{''.join(seen)[-2000:]}")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return "".join(seen)


def _served_tag(url: str) -> str:
    return httpx.get(f"{url}/metadata", timeout=30).json()["model_tag"]


def _git_workspace(workspace: Path) -> None:
    # A known commit: a model's identity includes the code's version.
    for cmd in (["git", "init", "-q"], ["git", "-c", "user.email=t@t", "-c", "user.name=t",
                                        "commit", "-q", "--allow-empty", "-m", "code"]):
        subprocess.run(cmd, cwd=workspace, check=True)


def test_sigkill_at_every_point_of_packaging_keeps_the_champion_served(prefect_api, workspace,
                                                                       tmp_path_factory):
    _git_workspace(workspace)
    env = _env(prefect_api, workspace)
    first = subprocess.run(_run_args(seed=0), cwd=workspace, env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    store = workspace / "bentoml"
    champion = _current(workspace)
    port, log = free_port(), tmp_path_factory.mktemp("server") / "server.log"
    server = start_server(store, port, log, SELFTRAIN_RELOAD_SECONDS="1")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, url, log)
        assert _served_tag(url) == champion
        for point in PAUSE_POINTS:
            _kill_at(point, prefect_api, workspace)
            time.sleep(3)  # three reload checks of the server
            assert _served_tag(url) == champion, f"killed at {point}"
            assert _current(workspace) == champion, f"killed at {point}"
            listing = _models(workspace)
            assert "unreadable" not in listing, listing
        idle = [v for v in _versions(store) if f"digits:{v}" != champion]
        assert len(idle) == 1  # only the kill after the rename left an entry: complete, idle

        rerun = subprocess.run([*_run_args(seed=1), "--verbose"], cwd=workspace, env=env,
                               capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert _current(workspace) == f"digits:{idle[0]}"  # promoted the stored entry...
        assert len(_versions(store)) == 2  # ...instead of storing another copy
        assert not list((store / ".selftrain-staging").iterdir())  # killed runs' staging gone
        deadline = time.monotonic() + 60
        while _served_tag(url) != f"digits:{idle[0]}":
            assert time.monotonic() < deadline, "the server never followed the promotion"
            time.sleep(0.5)
    finally:
        stop_server(server)
    assert "Traceback" not in log.read_text()


def _versions(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "models/digits").iterdir() if p.is_dir())


def _current(workspace: Path) -> str:
    from selftrain.lines import LineEvent

    history = workspace / "bentoml/selftrain-lines/digits.jsonl"
    events = [LineEvent.model_validate_json(raw) for raw in history.read_text().splitlines()]
    return events[-1].tag


def _models(workspace: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "flows.cli", "models"], cwd=workspace,
                          env={**os.environ, "BENTOML_HOME": str(workspace / "bentoml"),
                               "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr
