"""A real Prefect API for the whole session (the test harness), offline and quiet."""

from __future__ import annotations

import os

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
