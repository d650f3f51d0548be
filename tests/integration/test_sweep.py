"""The sweep on a real Dask LocalCluster (2 worker processes on loopback) under a real
Prefect API: every candidate reported, the best by validation promoted or refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import bentoml
import pytest

from selftrain.config import ConfigError, load_config

GRID = {"base_estimators": ["logistic_regression", "knn"], "thresholds": [0.8, 0.95],
        "labeled_fractions": [0.1]}
FAST = ["self_training.max_rounds=3", "self_training.teacher=null"]
# Gates whose outcome is known before the run: every check passes / one check cannot pass.
ALWAYS_PROMOTE = ["gate.min_accuracy=0", "gate.min_gain=-1", "gate.max_regression=1"]
NEVER_PROMOTE = ["gate.min_gain=1"]  # accuracy >= baseline + 1: impossible below 100%


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, as an existing cluster reached by ``address``."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as local, Client(local) as client:
        yield local.scheduler_address, set(client.run(os.getpid).values())


@pytest.mark.slow
def test_sweep_reports_every_candidate_and_promotes_the_best_by_validation(
        prefect_api, workspace, cluster):
    from flows.sweep import run_sweep

    address, worker_pids = cluster
    summary = run_sweep(load_config(None, FAST + ALWAYS_PROMOTE), GRID, address=address)

    rows = summary["candidates"]
    assert [r["name"] for r in rows] == ["logistic_regression-t0.8-f0.1",
                                        "logistic_regression-t0.95-f0.1",
                                        "knn-t0.8-f0.1", "knn-t0.95-f0.1"]
    assert all(r["error"] is None for r in rows), [r["error"] for r in rows]
    # Trained in the cluster's worker processes, both of them, not in the flow's.
    assert {r["pid"] for r in rows} == worker_pids
    assert os.getpid() not in worker_pids
    best = max(rows, key=lambda r: r["metrics"]["val_accuracy"])
    assert summary["best"] == best["name"]

    assert summary["promoted"] is True, summary["gate_reasons"]
    assert not any(r.startswith("FAIL") for r in summary["gate_reasons"])
    entry = bentoml.models.get(summary["destination"])  # the best one went to the store
    chosen = entry.info.metadata["config"]["self_training"]
    assert (chosen["base_estimator"], chosen["threshold"]) == (
        best["base_estimator"], best["threshold"])
    assert entry.info.metadata["test_accuracy"] == best["metrics"]["test_accuracy"]

    report = json.loads(Path("metrics/sweep.json").read_text())
    assert [c["name"] for c in report["candidates"]] == [r["name"] for r in rows]
    assert [c["name"] for c in report["candidates"] if c["best"]] == [best["name"]]
    assert Path("reports/sweep.png").stat().st_size > 5000
    artifact = _latest_artifact("sweep-candidates")
    assert len(artifact) == 4 and {a["name"] for a in artifact} == {r["name"] for r in rows}
    assert _completed_task_runs("candidate-") >= 4  # workers reported to the same API


@pytest.mark.slow
def test_train_pipeline_runs_with_a_dask_task_runner(prefect_api, workspace, cluster):
    from prefect_dask import DaskTaskRunner

    from flows.train import train_pipeline

    flow = train_pipeline.with_options(task_runner=DaskTaskRunner(address=cluster[0]))
    summary = flow(load_config(None, FAST + NEVER_PROMOTE + ["self_training.base_estimator=knn"]))
    assert summary["n_rounds"] >= 2
    assert summary["promoted"] is False
    assert any(r.startswith("FAIL") and "min_gain" in r for r in summary["gate_reasons"])
    assert (Path(summary["destination"]) / "report.json").exists()  # kept as a candidate
    assert json.loads(Path("metrics/metrics.json").read_text())["promoted"] is False


def test_sweep_refuses_a_bad_grid_before_any_work():
    from flows.sweep import grid_configs

    config = load_config(None, [])
    with pytest.raises(ConfigError, match="self_training.threshold"):
        grid_configs(config, ["knn"], [1.5], [0.1])
    with pytest.raises(ConfigError, match="base_estimator"):
        grid_configs(config, ["boosted_trees"], [0.8], [0.1])
    with pytest.raises(ConfigError, match="thresholds is empty"):
        grid_configs(config, ["knn"], [], [0.1])
    with pytest.raises(ConfigError, match="validation_size"):
        grid_configs(load_config(None, ["split.validation_size=0"]), ["knn"], [0.8], [0.1])
    assert len(grid_configs(config, ["knn", "knn"], [0.8, 0.8], [0.1, 0.2])) == 2


def test_pick_best_uses_validation_never_test():
    from tasks.sweep_report import pick_best

    rows = [{"name": "a", "error": None, "metrics": {"val_accuracy": 0.90, "test_accuracy": 0.99}},
            {"name": "b", "error": None, "metrics": {"val_accuracy": 0.95, "test_accuracy": 0.80}},
            {"name": "c", "error": "ValueError: boom"},
            {"name": "d", "error": None, "metrics": {"val_accuracy": 0.95, "test_accuracy": 0.90}}]
    assert pick_best(rows)["name"] == "b"
    with pytest.raises(RuntimeError, match="c: ValueError: boom"):
        pick_best([rows[2]])


def _latest_artifact(key: str) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC, limit=1)
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else data


def _completed_task_runs(prefix: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            name=TaskRunFilterName(like_=prefix)))
    return sum(1 for r in runs if r.state and r.state.is_completed())


def test_cli_sweep_names_a_bad_grid_value_and_starts_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", "--estimator", "knn", "--threshold", "1.5"])
    assert result.exit_code == 2
    assert "self_training.threshold" in result.output and "1.5" in result.output
    assert not (tmp_path / ".selftrain").exists()
