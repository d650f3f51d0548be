"""The last successful run: a rerun on the same data and configuration does no training."""

from __future__ import annotations

import json
import os
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from tasks.fingerprint import RunFingerprint

LEDGER = Path(".selftrain/last_run.json")


@task(name="check-unchanged", cache_policy=NONE)
def find_unchanged_run(fingerprint: RunFingerprint) -> dict | None:
    """The previous run's summary when data and configuration are what it saw, else None."""
    if not LEDGER.is_file():
        return None
    try:
        last = json.loads(LEDGER.read_text())
    except (OSError, ValueError):
        return None
    if fingerprint.table_sha256 is None or last.get("signature") != fingerprint.signature:
        return None
    return {**last["summary"], "unchanged": True}


def record_run(fingerprint: RunFingerprint, summary: dict) -> None:
    """Remember a finished run (promoted or not), written atomically."""
    LEDGER.parent.mkdir(parents=True, exist_ok=True)
    tmp = LEDGER.with_suffix(f".{os.getpid()}.tmp")  # per run: never shared
    tmp.write_text(json.dumps({"signature": fingerprint.signature, "summary": summary},
                              default=str))
    tmp.replace(LEDGER)
