"""The training flow end to end under a real Prefect API, BentoML store and GX."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bentoml
import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from selftrain.compiled import load_predictor
from selftrain.config import load_config
from selftrain.datasets import digits_frame
from selftrain.schema import MODEL_FILE, load_model


def _run(overrides: list[str]) -> dict:
    """The training flow in this process, on params.yaml's defaults plus ``overrides``."""
    from flows.train import train_pipeline

    return train_pipeline(load_config(None, overrides))


def _store_tags(name: str = "digits") -> list[str]:  # the line of data/raw/digits.csv
    try:
        return sorted(str(m.tag) for m in bentoml.models.list(name))
    except bentoml.exceptions.NotFound:
        return []


@pytest.mark.slow
def test_pipeline_promotes_and_writes_reports(prefect_api, workspace):
    before = _store_tags()
    summary = _run([])
    metrics = json.loads(Path("metrics/metrics.json").read_text())
    for key in ("test_accuracy", "test_macro_f1", "baseline_accuracy", "chosen_round",
                "n_pseudo_labeled", "pseudo_label_accuracy", "champion_accuracy", "promoted",
                "data_fingerprint", "dvc_hash", "params_hash"):
        assert key in metrics, key
    assert metrics["promoted"] is True, summary["gate_reasons"]
    assert metrics["test_accuracy"] >= metrics["baseline_accuracy"]
    rounds = Path("metrics/rounds.csv").read_text().strip().splitlines()
    assert len(rounds) == 1 + metrics["n_rounds"]
    assert Path("reports/rounds.png").stat().st_size > 1000
    assert set(_store_tags()) - set(before) == {summary["destination"]}
    entry = bentoml.models.get(summary["destination"])
    assert entry.info.metadata["data_fingerprint"] == metrics["data_fingerprint"]
    assert entry.info.metadata["feature_names"][:2] == ["pixel_0", "pixel_1"]
    model, schema = load_model(entry.path)
    X = digits_frame().drop(columns=["id", "label"])  # a model of raw records: a frame
    assert model.predict(X).shape == (len(X),)
    assert schema.classes == list(range(10))
    # compiled at packaging, verified on the run's held-out rows, served as ONNX
    inference = entry.info.metadata["inference"]
    assert inference["kind"] == "onnx" and inference["verified"], inference
    predictor = load_predictor(entry.path, entry.info.metadata["integrity"], "promoted")
    assert predictor.kind == "onnx"
    np.testing.assert_allclose(predictor.predict_proba(X), model.predict_proba(X), atol=1e-5)


@pytest.mark.slow
def test_the_runs_log_tells_each_round_and_the_guard_and_rounds_form_a_chain(prefect_api,
                                                                            workspace):
    import logging

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    from flows.train import train_pipeline

    loggers = [logging.getLogger(f"prefect.{kind}_runs") for kind in ("task", "flow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # the suite runs Prefect at WARNING; the UI shows INFO
        logger.setLevel(logging.INFO)
    try:
        state = train_pipeline(load_config(None, ["self_training.max_rounds=3",
                                                  "self_training.stopping=holdout"]),
                               force=True, return_state=True)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    run_id = state.state_details.flow_run_id
    APILogHandler().flush()  # the logs reach the API in the background
    with get_client(sync_client=True) as client:
        logs = [log.message for log in client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run_id]}))
    rounds = [m for m in logs if m.startswith("round ")]
    assert len(rounds) >= 2, logs
    assert "0 pseudo-labels added" in rounds[0] and "validation accuracy" in rounds[0]
    assert any("pseudo-labels added (" in m for m in rounds[1:]), rounds
    assert any(m.startswith("base estimator") or m.startswith("guard:") for m in logs), logs
    [gate] = [m for m in logs if m.startswith("gate: ")]
    assert str(state.result()["destination"]) in gate and "accuracy" in gate, gate
    by_name = {run.name: run for run in runs}
    upstream = {i.id for i in by_name["round-1"].task_inputs.get("wait_for", [])}
    assert by_name["round-0"].id in upstream, by_name["round-1"].task_inputs


@pytest.mark.slow
def test_gate_rejects_a_candidate_and_keeps_it_as_candidate(prefect_api, workspace):
    _run([])
    before = _store_tags()
    summary = _run(["gate.min_gain=0.5"])
    assert summary["promoted"] is False
    assert any("FAIL" in r and "min_gain" in r for r in summary["gate_reasons"])
    assert _store_tags() == before
    assert (Path(summary["destination"]) / "report.json").exists()


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: the store, compared before and after."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _fail_writing_the_model(monkeypatch, store: Path) -> None:
    """The model file is written into BentoML's temporary entry, then the disk fills up."""
    import selftrain.record

    real = selftrain.record.save_model

    def save_then_fail(directory, model, schema, **options):
        real(directory, model, schema, **options)
        raise OSError(28, "No space left on device (injected while writing the model)")

    monkeypatch.setattr(selftrain.record, "save_model", save_then_fail)


def _fail_copying_into_the_store(monkeypatch, store: Path) -> None:
    """BentoML's copy of the finished entry (into the staging store beside the store) stops
    after one file."""
    import shutil

    real = shutil.copytree

    def copy_one_file_then_fail(src, dst, *args, **kwargs):
        if not Path(dst).resolve().is_relative_to(store.parent.resolve()):
            return real(src, dst, *args, **kwargs)
        first = sorted(p for p in Path(src).iterdir() if p.is_file())[0]
        shutil.copy2(first, Path(dst) / first.name)
        raise OSError(28, "No space left on device (injected while copying into the store)")

    monkeypatch.setattr(shutil, "copytree", copy_one_file_then_fail)


QUICK_PROMOTE = ["self_training.max_rounds=2", "self_training.teacher=null",
                 "gate.min_accuracy=0", "gate.min_gain=-1", "gate.max_regression=1"]
INJECTIONS = pytest.mark.parametrize(
    "inject", [_fail_writing_the_model, _fail_copying_into_the_store],
    ids=["writing-the-model", "copying-into-the-store"])


@pytest.mark.slow
@INJECTIONS
def test_failed_packaging_leaves_the_store_unchanged(prefect_api, workspace, monkeypatch,
                                                     inject):
    """A failure inside packaging, in-process: the store, the metrics and the run ledger
    are as they were; no new entry, no half-copied one."""
    from tasks.ledger import LEDGER

    store = Path(os.environ["BENTOML_HOME"]) / "models"
    first = _run(QUICK_PROMOTE)  # a champion in the store
    assert first["promoted"] is True, first["gate_reasons"]
    before = _tree(store)
    metrics_before, ledger_before = Path("metrics/metrics.json").read_bytes(), LEDGER.read_bytes()

    with monkeypatch.context() as patch:
        inject(patch, store)
        # Another configuration, so the run is not skipped as unchanged; its gate passes,
        # so the failure happens in packaging, the last step of the promotion.
        with pytest.raises(OSError, match="injected"):
            _run([*QUICK_PROMOTE, "self_training.max_rounds=3"])

    assert _tree(store) == before  # `latest` unmoved too
    assert not list((store.parent / ".selftrain-staging").iterdir())
    assert bentoml.models.get("digits:latest").tag == (
        bentoml.models.get(first["destination"]).tag)
    # The failed run is not recorded: no metrics, and a rerun would train again.
    assert Path("metrics/metrics.json").read_bytes() == metrics_before
    assert LEDGER.read_bytes() == ledger_before


@pytest.mark.slow
@INJECTIONS
def test_failed_packaging_leaves_no_staging_directory(prefect_api, workspace, monkeypatch,
                                                      inject):
    import gc
    import tempfile

    store = Path(os.environ["BENTOML_HOME"]) / "models"
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkdtemp", recording_mkdtemp)  # BentoML stages entries here
        inject(patch, store)
        with pytest.raises(OSError, match="injected"):
            _run(QUICK_PROMOTE)
    gc.collect()
    staged = [Path(p) for p in made if Path(p).name.startswith("bentoml-model-")]
    if not staged:  # not an AssertionError: the xfail must not hide this
        pytest.fail("packaging never staged an entry: the injection missed its target")
    assert not [p for p in staged if p.exists()], "BentoML's staging directory was left"


def _cli_env(prefect_api: str, workspace: Path) -> dict:
    env = dict(os.environ, PREFECT_API_URL=prefect_api, BENTOML_HOME=str(workspace / "bentoml"))
    env["PREFECT_HOME"] = str(workspace / "prefect-home")
    return env


@pytest.mark.slow
def test_resume_after_crash_gives_same_model(prefect_api, workspace, tmp_path_factory):
    args = [sys.executable, "-m", "flows.cli", "run", "--set", "self_training.max_rounds=8",
            "--set", "self_training.patience=8"]
    env = _cli_env(prefect_api, workspace)
    proc = subprocess.Popen(args, env=env, cwd=workspace, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    work = workspace / ".selftrain/work"
    while time.monotonic() < deadline and not list(work.glob("*/state-003.npz")):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid round 3: no clean-up runs
    proc.wait()
    assert not (workspace / "bentoml/models").exists()
    resumed = subprocess.run(args, env=env, cwd=workspace, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for line in ("metrics: metrics/metrics.json", "plots: reports/rounds.png",
                 "Data Docs: reports/data_docs/index.html"):  # where everything went
        assert line in resumed.stdout, resumed.stdout[-2000:]
    assert (workspace / "reports/data_docs/index.html").is_file()

    clean = tmp_path_factory.mktemp("uninterrupted")
    from selftrain.datasets import export_digits

    export_digits(clean / "data/raw/digits.csv")
    fresh = subprocess.run(args, env=_cli_env(prefect_api, clean), cwd=clean,
                           capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    X = digits_frame().drop(columns=["id", "label"])
    models = []
    for home in (workspace, clean):
        entries = list((home / "bentoml/models/digits").glob(f"*/{MODEL_FILE}"))
        assert len(entries) == 1
        models.append(load_model(entries[0].parent)[0])
    np.testing.assert_array_equal(models[0].predict_proba(X), models[1].predict_proba(X))


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("masking.labeled_fraction=1.5", "masking.labeled_fraction"),
        ("self_training.nope=1", "unknown key"),
        ("self_training.max_rounds=many", "self_training.max_rounds"),
        ("self_training.base_estimator=xgboost", "self_training.base_estimator"),
        ("seed", "key=value"),
    ],
)
def test_bad_parameters_exit_2_with_one_clear_message(tmp_path, monkeypatch, override, words):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--set", override])
    assert result.exit_code == 2
    assert words in result.output
    assert "Traceback" not in result.output


QUICK = ["self_training.max_rounds=3", "self_training.teacher=null", "gate.min_gain=-1",
         "gate.max_regression=1"]  # promotes whatever champion other tests left


@pytest.mark.slow
def test_unchanged_data_trains_nothing_and_new_data_meets_the_champion(prefect_api, workspace):
    first = _run(QUICK)
    assert first["promoted"] is True, first["gate_reasons"]
    tags = _store_tags()
    again = _run(QUICK)
    assert again["unchanged"] is True and again["destination"] == first["destination"]
    assert _store_tags() == tags
    table = Path("data/raw/digits.csv")
    frame = digits_frame().iloc[:-60]  # new data: the table changed
    frame.to_csv(table, index=False)
    challenger = _run(QUICK)
    assert "unchanged" not in challenger
    assert challenger["data_fingerprint"] != first["data_fingerprint"]
    assert challenger["champion_tag"] == first["destination"]
    assert challenger["champion_accuracy"] is not None  # scored on the challenger's test split


@pytest.mark.slow
def test_bad_table_exits_1_and_leaves_the_store_alone(prefect_api, workspace, monkeypatch):
    Path("data/raw/bad.csv").write_text("id,label,f1\n1,0,0.5\n2,1\n3,0,0.1\n")
    before = _store_tags()
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    result = CliRunner().invoke(app, ["run", "--set", "data.path=data/raw/bad.csv"])
    assert result.exit_code == 1
    assert "line 3" in result.output and "Traceback" not in result.output
    lines = result.output.splitlines()
    error = next(i for i, line in enumerate(lines) if "data validation failed" in line)
    assert "validating and preparing" in result.output[:result.output.index(lines[error])]
    assert not any("validating" in line for line in lines[error:])  # no bar after the error
    assert _store_tags() == before
    assert not Path("metrics/metrics.json").exists()
