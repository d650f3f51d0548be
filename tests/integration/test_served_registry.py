"""Every registry estimator, packaged as a run packages it, answers through a real
``bentoml serve`` exactly as it answers in process.

Each model is stored by the package task's own ``store_model``: once with held-out rows (so
its ONNX form is compiled, verified and served, as after a run) and once without (the
scikit-learn form serves). One server per table follows its model line while the test
promotes each entry in turn (``serving.reload``): two servers answer for twenty models.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_fixtures import free_port, start_server, stop_server, wait_ready
from threadpoolctl import threadpool_limits

from selftrain.compiled import TOLERANCE
from selftrain.estimators import ESTIMATOR_NAMES
from selftrain.lines import record_promotion
from selftrain.record import PackagedModel
from tasks.model_store import store_model
from tests.model.registry_models import TABLES, fitted

pytestmark = pytest.mark.slow
FORMS = {"onnx": TOLERANCE, "sklearn": 1e-12}  # the served form, and how close it answers


@dataclass(frozen=True)
class Stored:
    tag: str
    model: object  # the in-process scikit-learn model the server must agree with
    rows: pd.DataFrame  # raw rows, most of them never seen by the packaging check


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small fits and predictions on 2 shared cores: one OpenMP/BLAS thread is fastest
    (HistGradientBoosting's threads collapse under contention)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module", params=TABLES)
def served(request, tmp_path_factory, one_thread):
    """(client, line, {(estimator, form): Stored}): a real server following the line
    ``registry-<table>``, whose entries are every registry estimator in both forms."""
    table = request.param
    line = f"registry-{table}"
    entries: dict[tuple[str, str], Stored] = {}
    proc = None
    port, log = free_port(), tmp_path_factory.mktemp(f"server-{table}") / "server.log"
    try:
        for name in ESTIMATOR_NAMES:
            model, schema, rows = fitted(name, table)
            half = len(rows) // 2
            record = PackagedModel(line=line, features=schema)
            for form in FORMS:  # as tasks.package stores it: compiled, checked on held-out rows
                held_out = [rows.iloc[:half]] if form == "onnx" else None
                tag = store_model(model, record, held_out=held_out)
                # fresh rows, and the first ten: an unseen category, missing numbers
                entries[name, form] = Stored(tag, model, pd.concat([rows.iloc[:10],
                                                                    rows.iloc[half:]]))
            if proc is None:  # the server starts up while the other models are fitted
                record_promotion(line, tag, by="test")
                proc = start_server(Path(os.environ["BENTOML_HOME"]), port, log,
                                    SELFTRAIN_MODEL_NAME=line, SELFTRAIN_RELOAD_SECONDS="0.2")
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url, log)
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, line, entries
    finally:
        if proc is not None:
            stop_server(proc)


def serve(client: httpx.Client, line: str, tag: str, seconds: float = 60) -> dict:
    """Promote ``tag`` on ``line`` and wait until the server answers with it; its /metadata."""
    record_promotion(line, tag, by="test")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get("/metadata").json()
        if body["model_tag"] == tag:
            return body
        time.sleep(0.1)
    raise AssertionError(f"the server did not swap to {tag} within {seconds} s "
                         f"(still {body['model_tag']})")


def records(frame: pd.DataFrame) -> list[dict]:
    """Raw records as a client sends them: null for missing, true/false, ISO date text."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else
             (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict(orient="records")]


def arrays(frame: pd.DataFrame) -> list[list]:
    """The same rows as arrays in the schema's order."""
    return [list(row.values()) for row in records(frame)]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_served_answers_equal_in_process_scikit_learn(served, name, form):
    client, line, entries = served
    stored = entries[name, form]
    predictor = serve(client, line, stored.tag)["predictor"]
    assert predictor["kind"] == form, predictor
    if form == "onnx":
        assert "verified on" in predictor["why"], predictor
    rows, model = stored.rows, stored.model
    want_proba, want_labels = model.predict_proba(rows), model.predict(rows).tolist()
    for route, payload in (("/predict", records(rows)), ("/predict_proba", arrays(rows)),
                           ("/predict", arrays(rows.iloc[:1]))):
        response = client.post(route, json=payload)
        assert response.status_code == 200, (route, response.text[:500])
        body = response.json()
        assert body["model_tag"] == stored.tag
        assert body["classes"] == model.classes_.tolist()
        n = len(payload)
        np.testing.assert_allclose(body["probabilities"], want_proba[:n], rtol=0,
                                   atol=FORMS[form], err_msg=f"{route}, {n} rows")
        if route == "/predict":
            assert body["labels"] == want_labels[:n], route
