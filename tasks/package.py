"""Packaging: the promoted model goes into the BentoML model store, with its lineage."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
from pathlib import Path

import bentoml
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.exceptions import MissingContextError

from selftrain.compiled import compiled_summary
from selftrain.config import PipelineConfig
from selftrain.integrity import RECORD_KEY
from selftrain.schema import save_model
from tasks.mask import PreparedData


@task(name="package", cache_policy=NONE)
def package_model(model, data: PreparedData, config: PipelineConfig, metrics: dict,
                  lineage: dict) -> str:
    """Save to the model store as ``serving.model_name``; returns the new tag.

    ``bentoml.models.create`` writes into a temporary directory and moves it into the
    store only when the block ends cleanly: a failure leaves the store as it was.
    """
    meta = model_metadata(data, config, metrics, lineage)
    entry = None
    try:
        with bentoml.models.create(
            config.serving.model_name,
            labels={"stage": "production", "run": data.key},
            metadata=meta,
        ) as entry:
            entry.info.metadata[RECORD_KEY] = save_model(entry.path, model, data.schema,
                                                         held_out=held_out_rows(data))
            entry.info.metadata["inference"] = inference_summary(entry.path)
    except BaseException:
        # BentoML removes its staging copy only when the failed entry is garbage collected,
        # and Prefect keeps the exception (and so the entry) alive: remove it here
        if entry is not None:
            shutil.rmtree(entry.path, ignore_errors=True)
        raise
    return str(entry.tag)


@task(name="keep-candidate", cache_policy=NONE)
def keep_candidate(model, data: PreparedData, config: PipelineConfig, metrics: dict,
                   lineage: dict, candidates_dir: str, reasons: list[str]) -> str:
    """A rejected candidate is kept on disk with its report, never in the store."""
    target = Path(candidates_dir) / data.key
    record = save_model(target, model, data.schema)
    report = {"reasons": reasons, **model_metadata(data, config, metrics, lineage),
              RECORD_KEY: record}
    (target / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return str(target)


def held_out_rows(data: PreparedData) -> list:
    """The raw validation and test rows: what the compiled model must agree on."""
    return [data.workspace.load_frame(name) for name in ("X_val_raw", "X_test_raw")]


def inference_summary(directory) -> dict:
    """Which form is served (``onnx`` or ``sklearn``) and why, for /metadata and the log."""
    summary = compiled_summary(directory)
    try:
        log = get_run_logger()
    except MissingContextError:  # called outside a flow run (a script, a test)
        log = logging.getLogger("selftrain.package")
    log.info("inference: %s (%s)", summary["kind"], summary["why"])
    return summary


def model_metadata(data: PreparedData, config: PipelineConfig, metrics: dict,
                   lineage: dict) -> dict:
    """Everything needed to trace a served model to its data, parameters and code."""
    scalar = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
    return _without_none({
        **scalar,
        **lineage,
        "config": config.model_dump(mode="json"),
        "classes": data.schema.classes,
        "feature_names": data.schema.feature_names,
        "dtypes": data.schema.dtypes,
        "columns": data.schema.columns(),
        "dropped_columns": data.schema.dropped,
        "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })


def _without_none(value):
    # BentoML metadata accepts basic types only: a missing value is an absent key.
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
