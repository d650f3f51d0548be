"""The evaluation gate: a candidate replaces production only when it earns it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from selftrain.config import GateSettings
from selftrain.schema import FeatureSchema
from tasks.mask import PreparedData
from tasks.model_store import open_production


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    candidate_accuracy: float = 0.0
    baseline_accuracy: float = 0.0
    champion_accuracy: float | None = None
    champion_tag: str | None = None


@task(name="gate", cache_policy=NONE)
def gate_candidate(metrics: dict, data: PreparedData, gate: GateSettings,
                   model_name: str) -> GateDecision:
    """Promote only if accurate enough, better than labeled-only, and not worse than the
    champion (scored on this run's test split) by more than ``max_regression``."""
    champion_tag, champion_acc, mismatch = score_champion(model_name, data)
    return decide(metrics["test_accuracy"], metrics["baseline_accuracy"], champion_acc,
                  champion_tag, gate, mismatch)


def decide(candidate: float, baseline: float, champion: float | None,
           champion_tag: str | None, gate: GateSettings,
           mismatch: str | None = None) -> GateDecision:
    """The gate's verdict with one line per check; ``mismatch`` (the champion reads another
    record: another problem) refuses the candidate outright."""
    reasons, ok = [], True
    if mismatch is not None:
        reasons.append(f"FAIL: {mismatch}")
        ok = False
    checks = [
        (candidate >= gate.min_accuracy,
         f"accuracy {candidate:.4f} {'≥' if candidate >= gate.min_accuracy else '<'} "
         f"gate.min_accuracy {gate.min_accuracy:.4f}"),
        (candidate >= baseline + gate.min_gain - 1e-12,
         f"accuracy {candidate:.4f} vs labeled-only baseline {baseline:.4f} + gate.min_gain "
         f"{gate.min_gain:.4f}"),
    ]
    if mismatch is None and champion is not None:
        checks.append((candidate >= champion - gate.max_regression - 1e-12,
                       f"accuracy {candidate:.4f} vs champion {champion_tag} {champion:.4f} - "
                       f"gate.max_regression {gate.max_regression:.4f}"))
    elif mismatch is None:
        reasons.append("no champion in the model store: first promotion")
    for passed, text in checks:
        ok &= passed
        reasons.append(("pass: " if passed else "FAIL: ") + text)
    return GateDecision(ok, reasons, candidate, baseline, champion, champion_tag)


def score_champion(model_name: str, data: PreparedData
                   ) -> tuple[str | None, float | None, str | None]:
    """(champion's tag, its accuracy on this run's test split, why it cannot be compared):
    the champion is the production model of the line that verifies (one warning for each
    that does not). A champion that reads other columns or predicts other classes belongs
    to another problem, and the candidate must start its own model line instead."""
    production = open_production(model_name, get_run_logger())
    if production is None:
        return None, None, None
    tag, model, schema, _ = production
    if not schema.same_problem(data.schema):
        return tag, None, line_mismatch(tag, schema, data.schema, model_name)
    ws = data.workspace  # the champion is a model of raw records: give it the raw test rows
    accuracy = float(np.mean(model.predict(ws.load_frame("X_test_raw")) == ws.load("y_test")))
    return tag, accuracy, None


def line_mismatch(tag: str, champion: FeatureSchema, candidate: FeatureSchema,
                  model_name: str) -> str:
    def describe(schema: FeatureSchema) -> str:
        names = ", ".join(schema.feature_names[:4]) + (", ..." if len(schema.feature_names) > 4
                                                       else "")
        return f"{len(schema.feature_names)} columns ({names}), classes {schema.classes[:6]}"

    return (f"the champion {tag} of model line {model_name!r} reads {describe(champion)}; this "
            f"candidate reads {describe(candidate)}: another problem, which must not replace "
            "it. Start a new line for this problem: set `project` (or serving.model_name) to a "
            "name of its own, e.g. --set project=<name>")
