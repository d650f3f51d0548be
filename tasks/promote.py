"""Promotion: gate, then package or keep as a candidate, as one transaction, under the
model line's lock.

A candidate competes only with the production model of its own line
(``config.model_line``). Packaging stores a complete entry (``tasks.model_store``) and only
then makes it production (``selftrain.lines``), the last step. A candidate identical to its
line's champion (the same table bytes, parameters and code) is reported as such and not
stored again: ``dvc repro`` and ``dvc exp run`` would otherwise add copies of one model. An
identical entry that never was production was stored by a run killed before its switch:
the rerun gates it and completes that promotion instead of storing another copy.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger
from prefect.transactions import transaction

from selftrain.config import PipelineConfig
from selftrain.lines import ever_production, production_tag, record_promotion, store_home
from selftrain.store import line_entries
from tasks.gate import gate_candidate
from tasks.mask import PreparedData
from tasks.model_store import clear_stale_staging
from tasks.package import keep_candidate, package_model, packaged_record
from tasks.workspace import CANDIDATES_DIR, exclusive


def promote_candidate(model, data: PreparedData, config: PipelineConfig, metrics: dict,
                      lineage: dict) -> dict:
    """The gate's decision and where the model went (a store tag or a candidate folder)."""
    line = config.model_line
    with exclusive(line_lock(line), f"model line {line!r}", wait=True):  # gate + package
        result = _promote(model, data, config, metrics, lineage)
    get_run_logger().info("%s", promotion_message(result))
    return result


def promotion_message(result: dict) -> str:
    """The gate's decision, its reasons and where the model went, for the run's log."""
    verdict = "promoted" if result["promoted"] else "not promoted"
    where = ("production of line " + repr(result["line"]) if result["promoted"]
             else "kept" if result.get("identical") else "kept as a candidate")
    return (f"gate: {verdict}; model {result['destination']} ({where}); "
            + "; ".join(result["gate_reasons"]))


def line_lock(line: str) -> Path:
    """The lock file of a model line, beside the BentoML store that holds it."""
    return store_home() / ".selftrain-locks" / f"{line}.lock"


def _promote(model, data: PreparedData, config: PipelineConfig, metrics: dict,
             lineage: dict) -> dict:
    line = config.model_line
    clear_stale_staging()  # what runs killed mid-packaging left beside the store
    same = identical_entry(line, packaged_record(data, config, metrics, lineage).identity())
    champion = production_tag(line)
    if same is not None and (same == champion or same in ever_production(line)):
        why = ("the champion" if same == champion else
               "an earlier production model of this line, since rolled back:")
        return {"promoted": False, "identical": True, "champion_tag": champion,
                "champion_accuracy": metrics["test_accuracy"] if same == champion else None,
                "destination": same, "line": line,
                "gate_reasons": [f"identical to {why} {same} (same table, parameters and "
                                 "code): not stored again"]}
    with transaction():
        decision = gate_candidate(metrics, data, config.gate, line)
        if decision.promote:
            # An identical idle entry: a run stored it and was killed before its switch.
            destination = same or package_model(model, data, config, metrics, lineage)
            note = "completes an interrupted promotion" if same else ""
            record_promotion(line, destination, by="selftrain run", note=note)
        else:
            destination = keep_candidate(model, data, config, metrics, lineage, CANDIDATES_DIR,
                                         decision.reasons)
    return {"promoted": decision.promote, "gate_reasons": decision.reasons,
            "champion_accuracy": decision.champion_accuracy, "line": line,
            "champion_tag": decision.champion_tag, "destination": destination}


def identical_entry(line: str, identity: tuple | None) -> str | None:
    """The newest readable entry of ``line`` from the same data, parameters and code as
    this candidate (whose git commit is known); else None."""
    if identity is None:
        return None
    for entry in reversed(line_entries(line)):
        if entry.record is not None and entry.record.identity() == identity:
            return entry.tag
    return None
