"""Promotion: gate, then package or keep as a candidate, as one transaction.

Packaging is the last step inside the transaction, so a failure leaves the model store as
it was. A candidate identical to its line's champion (the same table bytes, parameters and
code) is reported as such and not stored again: ``dvc repro`` and ``dvc exp run`` would
otherwise add copies of one model.
"""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
from prefect.transactions import transaction

from selftrain.config import PipelineConfig
from tasks.gate import gate_candidate
from tasks.mask import PreparedData
from tasks.package import keep_candidate, package_model
from tasks.workspace import CANDIDATES_DIR, exclusive

# What makes two models the same model: the data, the parameters and the code.
IDENTITY = ("data_fingerprint", "params_hash", "git_commit")


def promote_candidate(model, data: PreparedData, config: PipelineConfig, metrics: dict,
                      lineage: dict) -> dict:
    """The gate's decision and where the model went (a store tag or a candidate folder)."""
    with exclusive(line_lock(config.serving.model_name), f"model line "
                   f"{config.serving.model_name!r}", wait=True):  # gate + package, atomically
        return _promote(model, data, config, metrics, lineage)


def line_lock(model_name: str) -> Path:
    """The lock file of a model line, beside the BentoML store that holds it."""
    home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    return home / ".selftrain-locks" / f"{model_name}.lock"


def _promote(model, data: PreparedData, config: PipelineConfig, metrics: dict,
             lineage: dict) -> dict:
    same = identical_champion(config.serving.model_name, lineage)
    if same is not None:
        return {"promoted": False, "identical": True, "champion_tag": same,
                "champion_accuracy": metrics["test_accuracy"], "destination": same,
                "gate_reasons": [f"identical to the champion {same} (same table, parameters "
                                 "and code): not stored again"]}
    with transaction():
        decision = gate_candidate(metrics, data, config.gate, config.serving.model_name)
        if decision.promote:
            destination = package_model(model, data, config, metrics, lineage)
        else:
            destination = keep_candidate(model, data, config, metrics, lineage, CANDIDATES_DIR,
                                         decision.reasons)
    return {"promoted": decision.promote, "gate_reasons": decision.reasons,
            "champion_accuracy": decision.champion_accuracy,
            "champion_tag": decision.champion_tag, "destination": destination}


def identical_champion(model_name: str, lineage: dict) -> str | None:
    """The tag of the line's newest entry when it came from the same data, parameters and
    code as this candidate (and the git commit is known); else None."""
    if lineage.get("git_commit") is None:
        return None
    try:
        champion = bentoml.models.get(f"{model_name}:latest")
    except bentoml.exceptions.BentoMLException:
        return None
    recorded = champion.info.metadata
    if all(recorded.get(key) == lineage.get(key) for key in IDENTITY):
        return str(champion.tag)
    return None
