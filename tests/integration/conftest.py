"""A real Prefect API for the whole session (the test harness), offline and quiet."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from selftrain.offline import set_offline_defaults

set_offline_defaults(PREFECT_SERVER_LOGGING_LEVEL="CRITICAL", PREFECT_LOGGING_LEVEL="WARNING")

import tempfile  # noqa: E402

import pytest  # noqa: E402

# BentoML reads BENTOML_HOME once per process: one private store for the whole session.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="selftrain-bentoml-")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """Yields the API URL of a real Prefect server shared by the session's flow tests."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A project directory with the digits table."""
    from selftrain.datasets import export_digits

    monkeypatch.chdir(tmp_path)
    export_digits(tmp_path / "data/raw/digits.csv")
    return tmp_path


@dataclass(frozen=True)
class SharedServer:
    home: Path  # its BentoML store
    tag: str  # the production model it serves
    model: object  # that model in process
    X: object  # digits, float64
    url: str
    log: Path
    token: str


@pytest.fixture(scope="session")
def digits_server(tmp_path_factory):
    """A digits forest promoted into its own store and served by one real ``bentoml serve``
    that asks for a bearer token (read from a file): shared by test_serving and
    test_serving_security, since each server start costs ~10 s. Its lineage holds
    absolute paths and its recorded config ``serving.max_batch_rows=100``."""
    from serving_fixtures import (
        FACTS,
        SHARED_FACTS,
        TOKEN,
        digits_model,
        free_port,
        promote_model,
        start_server,
        stop_server,
        wait_ready,
    )

    from serving.auth import TOKEN_ENV, TOKEN_FILE_ENV

    model, X = digits_model()
    home = tmp_path_factory.mktemp("shared_bentoml_home")
    tag = promote_model(home, model, facts={**FACTS, **SHARED_FACTS})
    workdir = tmp_path_factory.mktemp("shared_server")
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    port, log = free_port(), workdir / "server.log"
    with pytest.MonkeyPatch.context() as env:
        env.delenv(TOKEN_ENV, raising=False)
        proc = start_server(home, port, log, **{TOKEN_FILE_ENV: str(token_file)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        yield SharedServer(home, tag, model, X, url, log, TOKEN)
    finally:
        stop_server(proc)
