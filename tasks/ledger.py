"""The last successful run: a rerun on the same data and configuration does no training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from selftrain.config import PipelineConfig
from tasks.workspace import file_digest

LEDGER = Path(".selftrain/last_run.json")


def run_signature(config: PipelineConfig) -> str:
    """The table's content hash + the whole configuration: what a run's outcome depends on."""
    params = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    data = file_digest(config.data.path) if Path(config.data.path).is_file() else "missing"
    return hashlib.sha256(f"{data}:{params}".encode()).hexdigest()


@task(name="check-unchanged", cache_policy=NONE)
def find_unchanged_run(config: PipelineConfig) -> dict | None:
    """The previous run's summary when data and configuration are what it saw, else None."""
    if not LEDGER.is_file():
        return None
    try:
        last = json.loads(LEDGER.read_text())
    except (OSError, ValueError):
        return None
    if last.get("signature") != run_signature(config):
        return None
    return {**last["summary"], "unchanged": True}


def record_run(config: PipelineConfig, summary: dict) -> None:
    """Remember a finished run (promoted or not), written atomically."""
    LEDGER.parent.mkdir(parents=True, exist_ok=True)
    tmp = LEDGER.with_suffix(".tmp")
    tmp.write_text(json.dumps({"signature": run_signature(config), "summary": summary},
                              default=str))
    tmp.replace(LEDGER)
