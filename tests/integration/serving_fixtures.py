"""A promoted model in a throw-away BentoML store, and a real server on a loopback port.

The model entry is written exactly as the pipeline's package task writes it, so the
service is tested against the contract, not against a test double.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from processes import free_port  # noqa: F401 - the serving tests take it from here
from processes import stop_process_group as stop_server  # noqa: F401
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

from selftrain.config import load_config
from selftrain.lines import record_promotion
from selftrain.offline import TELEMETRY_OFF
from selftrain.record import PackagedModel
from selftrain.schema import FeatureSchema
from tasks.model_store import store_model

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FEATURES = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
QUIET = TELEMETRY_OFF
LINE = load_config(PROJECT_ROOT / "params.yaml").model_line  # what the server follows


def digits_model(n_estimators: int = 50):
    """(fitted random forest, X as float64) on scikit-learn's digits, seeded."""
    X, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=0).fit(X, y)
    return model, X.astype(np.float64)


def promote_model(home: Path, model, name: str = LINE, facts: dict | None = None) -> str:
    """Store ``model`` at ``home`` with the package task's own code and make it the
    production model of line ``name``; its tag.

    In this process: ``tasks.model_store`` builds the entry in a staging store of its own
    and renames it into ``$BENTOML_HOME``, read at each write, so this process's BentoML
    store (the session's) need not be ``home``. A child process took ~3 s per model.
    """
    home.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BENTOML_HOME", str(home))
        return _create_entry(model, name, facts or {})


FACTS = {
    "test_accuracy": 0.97,
    "test_macro_f1": 0.968,
    "data_fingerprint": "sha256:feedbeef",
    "dvc_hash": "md5:0123",
    "params_hash": "sha256:abcd",
    "git_commit": "deadbeef",
}
# The shared server's model (tests/integration/conftest.py ``digits_server``) was trained
# on another machine, with absolute paths in its lineage and serving.max_batch_rows=100.
OUTSIDE = "/srv/teams/secret-project/data/raw/digits.csv"
INSIDE = str(PROJECT_ROOT / "params.yaml")
WINDOWS = "C:\\Users\\alice\\tables\\digits.csv"
SHARED_FACTS = {
    "data_path": OUTSIDE,
    "params_path": INSIDE,
    "dvc_source": "file://" + str(PROJECT_ROOT / "dvc.lock"),
    "config": {"seed": 0, "data": {"path": OUTSIDE, "label": "target"},
               "serving": {"max_batch_rows": 100},
               "copies": [WINDOWS, "data/raw/digits.csv"]},
}
TOKEN = secrets.token_urlsafe(32)  # the shared server's bearer token


def _create_entry(model, name: str, facts: dict) -> str:
    classes = [int(c) for c in model.classes_]
    facts = dict(facts)
    features = facts.pop("feature_names", FEATURES)
    config = facts.pop("config", {"seed": 0})
    schema = FeatureSchema(feature_names=features, dtypes=["float64"] * len(features),
                           classes=classes)
    record = PackagedModel(line=name, features=schema, facts={**FACTS, **facts}, config=config)
    tag = store_model(model, record)
    record_promotion(name, tag, by="test fixture")
    return tag


def start_server(home: Path, port: int, log: Path, **env: str) -> subprocess.Popen:
    """``bentoml serve`` of our service in its own process group, logging to ``log``."""
    from serving.run import server_command

    full_env = {**os.environ, **QUIET, "BENTOML_HOME": str(home), "OMP_NUM_THREADS": "1", **env}
    with log.open("wb") as out:
        return subprocess.Popen(
            server_command(port),
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server not ready after {timeout} s:\n{log.read_text()[-3000:]}")
