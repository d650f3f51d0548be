"""The guard-rule comparison: what each rule picks, and one real run end to end."""

from __future__ import annotations

import json

import pytest

from benchmarks import guard_rules
from selftrain.driver import HELP_Z
from selftrain.estimators import ESTIMATOR_NAMES

BASELINE, FINAL = 0.70, 0.74  # round 0 (labeled-only) and the last round, on test


def _z(a: int, b: int) -> float:
    """Continuity-corrected McNemar z of ``a`` over ``b``, written out here."""
    diff = a - b
    diff = (abs(diff) - 1 if abs(diff) > 1 else 0) * (1 if diff > 0 else -1)
    return diff / (a + b) ** 0.5 if a + b else 0.0


@pytest.mark.parametrize(("harmed", "helped"), [(0, 0), (0, 1), (0, 3), (1, 0), (16, 12),
                                                 (12, 16), (10, 30), (30, 10)])
def test_each_rule_adopts_self_training_exactly_when_its_own_z_says_so(harmed, helped):
    scores = guard_rules.rule_scores(harmed, helped, BASELINE, FINAL)
    assert (scores["baseline"], scores["no guard"], scores["hindsight"]) == (BASELINE, FINAL,
                                                                             FINAL)
    assert scores["harm z>0.5 (before)"] == (BASELINE if _z(harmed, helped) > 0.5 else FINAL)
    for t in guard_rules.HELP_THRESHOLDS:
        assert scores[f"help z>{t:g}"] == (FINAL if _z(helped, harmed) > t else BASELINE), t


def test_no_evidence_keeps_the_labeled_only_model_under_the_library_rule():
    scores = guard_rules.rule_scores(0, 1, BASELINE, FINAL)  # one row: nothing shown
    assert scores[f"help z>{HELP_Z:g}"] == BASELINE
    assert f"help z>{HELP_Z:g}" in guard_rules.RULES  # the library's rule is compared


@pytest.mark.slow
def test_a_real_run_writes_every_rule_and_its_summary(tmp_path):
    out = tmp_path / "guard.json"
    argv = ["--tables", "wine", "--fractions", "0.2", "--seeds", "1", "--out", str(out)]
    assert guard_rules.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["help_z"] == HELP_Z
    (cell,) = result["cells"]
    assert (cell["table"], cell["fraction"], cell["seeds"]) == ("wine", 0.2, 1)
    (run,) = cell["per_seed"]
    assert cell["mean"] == {rule: run[rule] for rule in guard_rules.RULES}  # one seed
    assert run["checked"] and run["chosen"] in ESTIMATOR_NAMES
    for t in guard_rules.HELP_THRESHOLDS:  # each rule recomputed from the recorded counts
        adopt = _z(run["helped_rows"], run["harmed_rows"]) > t
        assert run[f"help z>{t:g}"] == (run["no guard"] if adopt else run["baseline"])
    assert run["hindsight"] == max(run["baseline"], run["no guard"])
    summary = result["summary"]["tune"]  # wine is a tuning table
    assert summary["baseline"]["mean_gain_over_fallback"] == 0.0
    assert result["summary"]["confirm"] == {}
