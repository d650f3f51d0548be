"""Packaging: the promoted model goes into the BentoML model store, with its lineage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from selftrain.config import PipelineConfig
from selftrain.record import PackagedModel
from tasks.mask import PreparedData
from tasks.model_store import store_model


@task(name="package", cache_policy=NONE)
def package_model(model, data: PreparedData, config: PipelineConfig, metrics: dict,
                  lineage: dict) -> str:
    """Store the model as a new entry of its line (``config.model_line``); the new tag.

    The entry enters the store complete, with one rename (``tasks.model_store``): a failure
    or a kill leaves the store as it was. It is not production yet: the caller switches.
    """
    return store_model(model, packaged_record(data, config, metrics, lineage),
                       held_out=held_out_rows(data), log=get_run_logger())


@task(name="keep-candidate", cache_policy=NONE)
def keep_candidate(model, data: PreparedData, config: PipelineConfig, metrics: dict,
                   lineage: dict, candidates_dir: str, reasons: list[str]) -> str:
    """A rejected candidate is kept on disk with its report, never in the store."""
    target = Path(candidates_dir) / data.key
    record = packaged_record(data, config, metrics, lineage).save(target, model)
    report = {"reasons": reasons, **record.metadata()}
    (target / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return str(target)


def held_out_rows(data: PreparedData) -> list:
    """The raw validation and test rows: what the compiled model must agree on."""
    return [data.workspace.load_frame(name) for name in ("X_val_raw", "X_test_raw")]




def packaged_record(data: PreparedData, config: PipelineConfig, metrics: dict,
                    lineage: dict) -> PackagedModel:
    """Everything needed to trace a served model to its data, parameters and code."""
    return PackagedModel.build(config.model_line, data.key, data.schema, metrics, lineage,
                               config.model_dump(mode="json"))


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
