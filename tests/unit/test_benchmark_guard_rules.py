"""The guard-rule comparison: what each rule picks, and one real run end to end."""

from __future__ import annotations

import json

import pytest

from benchmarks import guard_rules
from selftrain.estimator import HARM_Z

CURVE = [0.70, 0.72, 0.75, 0.74]  # round 0 (labeled-only) to the last round, on test


@pytest.mark.parametrize(("harmed", "helped", "fallbacks"), [
    (0, 3, []),
    (1, 0, ["fallback z>0.5"]),  # z = 1.0: one row; only the plain z > 0.5 rule falls back
    (16, 12, ["fallback z>0.5", "fallback corrected z>0", "fallback corrected z>0.5"]),
    (30, 10, [f"fallback {f[0]}" for f in guard_rules.FALLBACKS]),
])
def test_fallback_rules_take_round_zero_only_above_their_z(harmed, helped, fallbacks):
    check = {"curve": [0.5, 0.9, 0.6, 0.6], "harmed_rows": harmed, "helped_rows": helped}
    scores = guard_rules.rule_scores(check, CURVE)
    assert (scores["baseline"], scores["no guard"], scores["hindsight best"]) == (0.70, 0.74, 0.75)
    assert scores["CV best round"] == 0.72  # round 1 scored best in cross-validation
    for label, _, _ in guard_rules.FALLBACKS:
        rule = f"fallback {label}"
        assert scores[rule] == (0.70 if rule in fallbacks else 0.74), rule


def test_the_library_rule_is_one_of_the_compared_rules():
    assert ("corrected z>0.5", True, HARM_Z) in guard_rules.FALLBACKS


def test_cv_best_round_past_the_last_fitted_round_is_the_last_round():
    check = {"curve": [0.1, 0.2, 0.3, 0.4, 0.9], "harmed_rows": 0, "helped_rows": 0}
    assert guard_rules.rule_scores(check, CURVE)["CV best round"] == CURVE[-1]


def test_a_real_run_writes_every_rule(tmp_path):
    out = tmp_path / "guard.json"
    argv = ["--datasets", "wine", "--fractions", "0.2", "--seeds", "1", "--out", str(out)]
    assert guard_rules.main(argv) == 0
    result = json.loads(out.read_text())
    (cell,) = result["cells"]
    assert set(cell["mean"]) == set(guard_rules.RULES)
    assert all(0 < v <= 1 for v in cell["mean"].values())
    assert cell["mean"]["hindsight best"] >= max(cell["mean"].values())
    assert {"harmed_rows", "helped_rows"} <= set(cell["per_seed"][0])
