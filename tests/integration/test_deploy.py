"""``selftrain deploy`` against a real ``prefect server start``: the schedule, runs created
through the API the way the UI's Run button creates them, and refused parameters."""

from __future__ import annotations

import copy
import json
from datetime import UTC

import pytest
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from prefect_server import CRON, served_deployment, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def served(request, tmp_path_factory):
    served = served_deployment(request, tmp_path_factory)
    with temporary_settings(updates={PREFECT_API_URL: served.api_url,
                                     PREFECT_API_AUTH_STRING: served.auth}):
        yield served


def test_deployment_registers_with_its_schedule_and_params_yaml(served):
    deployment = _call(served, lambda c: c.read_deployment_by_name("train-pipeline/nightly"))
    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        CRON, "UTC", True)
    assert {"selftrain", "training"} <= set(deployment.tags)
    assert "train-summary" in deployment.description
    assert deployment.enforce_parameter_schema is True
    # The workspace's params.yaml, not the code's defaults (max_rounds 20).
    assert deployment.parameters["config"]["self_training"]["max_rounds"] == 2
    scheduled = []
    wait_for(lambda: scheduled.extend(_runs(served, deployment.id, StateType.SCHEDULED))
             or scheduled, 60, "the scheduler to create runs")
    for run in scheduled:
        start = run.expected_start_time.astimezone(UTC)
        assert (start.hour, start.minute) == (3, 15), start
        assert run.parameters == deployment.parameters


def test_a_run_with_changed_parameters_completes_and_promotes(served):
    parameters = _defaults(served)
    parameters["config"]["seed"] = 1
    run = run_deployment("train-pipeline/nightly", parameters=parameters, timeout=600,
                         poll_interval=2)
    assert run.state_type == StateType.COMPLETED, f"{run.state}\n{served.log_tail()}"
    assert run.parameters["config"]["seed"] == 1
    metrics = json.loads((served.workspace / "metrics/metrics.json").read_text())
    assert metrics["promoted"] is True, metrics["gate_reasons"]
    name, version = metrics["destination"].split(":")
    assert (served.bentoml_home / "models" / name / version / "model.yaml").is_file()
    artifacts = _call(served, lambda c: c.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))))
    keys = {a.key for a in artifacts}
    assert {"self-training-rounds", "train-summary"} <= keys, keys


@pytest.mark.parametrize(("key", "value", "message"), [
    ("masking.labeled_fraction", 2,
     "'config.masking.labeled_fraction'. Failure reason: 2 is greater than the maximum of 1"),
    ("self_training.base_estimator", "xgboost", "'config.self_training.base_estimator'"),
    ("self_training.thresold", 0.9, "thresold"),
])
def test_out_of_schema_parameters_are_refused_and_nothing_runs(served, key, value, message):
    parameters = _defaults(served)
    section, field = key.split(".")
    parameters["config"][section][field] = value
    before = _runs(served, _deployment_id(served))
    with pytest.raises(PrefectHTTPStatusError) as refused:
        run_deployment("train-pipeline/nightly", parameters=parameters, timeout=0)
    assert refused.value.response.status_code == 409
    assert message in str(refused.value)
    assert len(_runs(served, _deployment_id(served))) == len(before)


def test_a_cross_field_error_fails_the_run_before_any_task(served):
    """JSON schema cannot say min_rows <= max_rows: the server accepts the run, and the
    flow's own pydantic validation fails it before the first task."""
    parameters = _defaults(served)
    parameters["config"]["data"].update(min_rows=100, max_rows=50)
    run = run_deployment("train-pipeline/nightly", parameters=parameters, timeout=300,
                         poll_interval=2)
    assert run.state_type == StateType.FAILED
    assert "data.min_rows (100) exceeds data.max_rows (50)" in run.state.message
    tasks = _call(served, lambda c: c.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))))
    assert tasks == []


def test_the_api_takes_credentials_csrf_and_only_its_own_origin(served):
    """``selftrain server``: 401 without the credentials or with wrong ones, 403 for a
    state-changing request without Prefect's CSRF token, CORS for its own UI only."""
    import httpx

    user, password = served.auth.split(":", 1)
    version = f"{served.api_url}/admin/version"
    assert httpx.get(version, timeout=30).status_code == 401
    assert httpx.get(version, timeout=30, auth=(user, password + "x")).status_code == 401
    assert httpx.get(version, timeout=30, auth=(user, password)).status_code == 200
    no_csrf = httpx.post(f"{served.api_url}/flows/", json={"name": "intruder"}, timeout=30,
                         auth=(user, password))
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    for origin, allowed in ((served.ui_url, True), ("http://evil.example", False)):
        preflight = httpx.options(f"{served.api_url}/flows/filter", timeout=30, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed


def test_deploy_without_the_credentials_exits_with_one_message(served, tmp_path):
    import os
    import subprocess

    from prefect_server import QUIET, SELFTRAIN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SELFTRAIN_"))}
    env |= QUIET | {"PREFECT_API_URL": served.api_url, "PREFECT_HOME": str(tmp_path / "home"),
                    "SELFTRAIN_PREFECT_AUTH_FILE": str(tmp_path / "no-such-file")}
    done = subprocess.run([str(SELFTRAIN), "deploy", "--name", "intruder"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    message = " ".join(done.stderr.split())  # as rich wrapped it
    assert done.returncode == 2
    assert "refused this client (401)" in message and "Traceback" not in message


def test_gate_thresholds_are_not_parameters(served):
    parameters = _defaults(served)
    assert "gate" not in parameters["config"] and "roots" not in parameters["config"]["data"]
    parameters["config"]["gate"] = {"min_accuracy": 0, "min_gain": -1, "max_regression": 1}
    with pytest.raises(PrefectHTTPStatusError) as refused:
        run_deployment("train-pipeline/nightly", parameters=parameters, timeout=0)
    assert refused.value.response.status_code == 409 and "gate" in str(refused.value)
    roots = _defaults(served)
    roots["config"]["data"]["roots"] = ["/"]
    with pytest.raises(PrefectHTTPStatusError) as refused:
        run_deployment("train-pipeline/nightly", parameters=roots, timeout=0)
    assert refused.value.response.status_code == 409 and "roots" in str(refused.value)


def test_a_data_path_outside_the_data_roots_fails_the_run_before_any_task(served):
    parameters = _defaults(served)
    parameters["config"]["data"]["path"] = "/etc/passwd"
    run = run_deployment("train-pipeline/nightly", parameters=parameters, timeout=300,
                         poll_interval=2)
    assert run.state_type == StateType.FAILED
    assert "data.path '/etc/passwd' is outside the allowed data roots (data)" in (
        run.state.message)
    tasks = _call(served, lambda c: c.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))))
    assert tasks == []


def _defaults(served) -> dict:
    deployment = _call(served, lambda c: c.read_deployment_by_name("train-pipeline/nightly"))
    return copy.deepcopy(deployment.parameters)


def _deployment_id(served):
    return _call(served, lambda c: c.read_deployment_by_name("train-pipeline/nightly")).id


def _runs(served, deployment_id, state: StateType | None = None) -> list:
    runs = _call(served, lambda c: c.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))))
    return [r for r in runs if state is None or r.state_type == state]


def _call(served, call):
    from prefect_server import call_api

    return call_api(served.api_url, call)
