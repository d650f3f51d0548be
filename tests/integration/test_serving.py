"""The BentoML service, tested through a real ``bentoml serve`` on a loopback port (the
server test_serving_security shares, ``digits_server`` in conftest.py).

Every registry estimator, in both served forms, is in test_served_registry.py."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from serving_fixtures import (
    FEATURES,
    LINE,
    PROJECT_ROOT,
    QUIET,
    free_port,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(digits_server):
    return digits_server.model, digits_server.X


@pytest.fixture(scope="module")
def store(digits_server):
    return digits_server.home, digits_server.tag


@pytest.fixture(scope="module")
def server(digits_server):
    """A client of the shared server (conftest.py), with its token."""
    with httpx.Client(base_url=digits_server.url, timeout=30,
                      headers={"Authorization": f"Bearer {digits_server.token}"}) as client:
        yield client


def test_predict_matches_in_process_model_for_arrays_and_records(server, trained, store):
    model, X = trained
    rows = X[:40]
    as_arrays = server.post("/predict", json=rows.tolist())
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    as_records = server.post("/predict", json={"rows": records})
    for response in (as_arrays, as_records):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_tag"] == store[1]
        assert body["labels"] == model.predict(rows).tolist()
        np.testing.assert_allclose(body["probabilities"], model.predict_proba(rows), atol=1e-12)


def test_single_rows_through_the_batcher_match_in_process_model(server, trained):
    model, X = trained
    rows = X[100:112]

    def ask(row):
        return server.post("/predict", json=[row.tolist()]).json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, rows))
    assert [a["labels"][0] for a in answers] == model.predict(rows).tolist()
    got = np.array([a["probabilities"][0] for a in answers])
    np.testing.assert_allclose(got, model.predict_proba(rows), atol=1e-12)


def test_predict_proba_returns_probabilities_in_class_order(server, trained):
    model, X = trained
    body = server.post("/predict_proba", json=X[:5].tolist()).json()
    assert body["classes"] == model.classes_.tolist()
    assert "labels" not in body
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(X[:5]), atol=1e-12)


def test_metadata_describes_model_schema_metrics_and_lineage(server, store):
    body = server.get("/metadata").json()
    assert body["model_tag"] == store[1]
    assert body["feature_names"] == FEATURES
    assert body["dtypes"] == ["float64"] * 64
    assert body["classes"] == list(range(10))
    assert body["test_accuracy"] == 0.97
    assert body["data_fingerprint"] == "sha256:feedbeef"
    assert body["params_hash"] == "sha256:abcd"
    assert "promoted_at" in body


def test_openapi_page_lists_the_endpoints_with_the_model_schema(server, trained):
    spec = server.get("/docs.json").json()
    for route in ("/predict", "/predict_proba"):
        body = spec["paths"][route]["post"]["requestBody"]["content"]["application/json"]
        rows = body["schema"]["properties"]["rows"]
        record = spec["components"]["schemas"][rows["items"]["$ref"].split("/")[-1]]
        assert record["required"] == FEATURES
        assert record["properties"]["pixel_3_4"]["type"] == "number"
        assert record["additionalProperties"] is False
    answer = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    fields = answer["application/json"]["schema"]["properties"]
    assert {"model_tag", "classes", "labels", "probabilities"} <= set(fields)


ROW = [1.0] * 64
RECORD = dict(zip(FEATURES, ROW, strict=True))
BAD_REQUESTS = {
    "too few features": ([ROW[:63]], 422, "row 0: expected 64 values, got 63"),
    "64 rows of 63 features": ([ROW[:63]] * 64, 422, "row 0: expected 64 values, got 63"),
    "missing feature": (
        [RECORD, {k: v for k, v in RECORD.items() if k != "pixel_3_4"}],
        422,
        "row 1, field 'pixel_3_4': missing",
    ),
    "unknown feature": ([{**RECORD, "colour": 1}], 422, "field 'colour': is not a feature"),
    "string value": ([ROW[:5] + ["7"] + ROW[6:]], 422, "field 'pixel_0_5': must be a number"),
    "null value": ([ROW, ROW[:-1] + [None]], 422, "row 1, field 'pixel_7_7': must be a number"),
    "boolean value": ([[True] + ROW[1:]], 422, "row 0, field 'pixel_0_0': must be a number"),
    "NaN": ("[[1" + ",1" * 62 + ",NaN]]", 422, "field 'pixel_7_7': must be a finite"),
    "Infinity": ("[[-Infinity" + ",1" * 63 + "]]", 422, "field 'pixel_0_0': must be a finite"),
    "beyond float32": ([[1e39] + ROW[1:]], 422, "field 'pixel_0_0': out of range"),
    "empty list": ([], 422, "no rows"),
    "too many rows": ([ROW] * 101, 422, "101 rows exceed the limit of 100"),  # recorded
    "malformed JSON": ("[[1, 2,", 400, "malformed JSON"),
    "not JSON at all": ("pixel_0_0=1", 400, "malformed JSON"),
    "scalar body": ("3", 422, "body must be a JSON array"),
    "mixed row kinds": ([RECORD, ROW], 422, "row 1: each row must be an object"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_bad_request_is_refused_with_row_and_field(server, case):
    payload, status, fragment = BAD_REQUESTS[case]
    content = payload if isinstance(payload, str) else json.dumps(payload)
    for route in ("/predict", "/predict_proba"):
        response = server.post(route, content=content, headers={"content-type": "application/json"})
        assert response.status_code == status, (route, response.text)
        assert fragment in response.json()["error"]
        assert len(response.content) < 2000  # the body is never echoed back


def test_body_over_the_size_limit_is_refused_without_echo(server):
    body = b"[" + b",".join([json.dumps(ROW).encode()] * 2000) + b" " * 3_000_000 + b"]"
    response = server.post("/predict", content=body)
    assert response.status_code == 400
    assert "exceeds the limit" in response.json()["error"]
    assert len(response.content) < 500


def test_burst_of_concurrent_requests_has_no_error(server, trained):
    model, X = trained
    sizes = [1] * 150 + [3, 20, 100, 5] * 5

    def ask(i_size):
        i, size = i_size
        rows = X[i % 1500 : i % 1500 + size]
        response = server.post("/predict", json=rows.tolist())
        return response.status_code, response.json().get("labels"), model.predict(rows).tolist()

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(ask, enumerate(sizes)))
    assert [status for status, _, _ in results] == [200] * len(sizes)
    assert all(got == want for _, got, want in results)


def test_metrics_count_predictions_and_refusals(server):
    server.post("/predict", json=[ROW])
    server.post("/predict", json=[])
    text = server.get("/metrics").text
    assert 'endpoint="/predict",http_response_code="200"' in text
    assert 'endpoint="/predict",http_response_code="422"' in text
    assert server.get("/livez").status_code == 200


def test_server_refuses_to_start_without_a_promoted_model(tmp_path):
    from serving.run import server_command

    env = {**QUIET, "PATH": "/usr/bin:/bin", "BENTOML_HOME": str(tmp_path / "empty")}
    done = subprocess.run(
        server_command(free_port()),
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"model line '{LINE}' has no production model" in output
    assert "Traceback" not in output
