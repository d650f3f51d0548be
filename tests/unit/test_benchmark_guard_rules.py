"""The guard-rule comparison: what each rule picks, and one real run end to end."""

from __future__ import annotations

import json

import pytest

from benchmarks import guard_rules

CURVE = [0.70, 0.72, 0.75, 0.74]  # round 0 (labeled-only) to the last round, on test


@pytest.mark.parametrize(("z", "fallbacks"), [
    (-3.0, []), (0.3, ["fallback z>0"]), (0.7, ["fallback z>0", "fallback z>0.5"]),
    (1.5, ["fallback z>0", "fallback z>0.5", "fallback z>1"]),
    (2.5, ["fallback z>0", "fallback z>0.5", "fallback z>1", "fallback z>2"])])
def test_fallback_rules_take_round_zero_only_above_their_z(z, fallbacks):
    scores = guard_rules.rule_scores({"curve": [0.5, 0.9, 0.6, 0.6], "z": z}, CURVE)
    assert (scores["baseline"], scores["no guard"], scores["hindsight best"]) == (0.70, 0.74, 0.75)
    assert scores["CV best round"] == 0.72  # round 1 scored best in cross-validation
    for rule in ("fallback z>0", "fallback z>0.5", "fallback z>1", "fallback z>2"):
        assert scores[rule] == (0.70 if rule in fallbacks else 0.74)


def test_cv_best_round_past_the_last_fitted_round_is_the_last_round():
    scores = guard_rules.rule_scores({"curve": [0.1, 0.2, 0.3, 0.4, 0.9], "z": 0.0}, CURVE)
    assert scores["CV best round"] == CURVE[-1]


def test_a_real_run_writes_every_rule(tmp_path):
    out = tmp_path / "guard.json"
    argv = ["--datasets", "wine", "--fractions", "0.2", "--seeds", "1", "--out", str(out)]
    assert guard_rules.main(argv) == 0
    result = json.loads(out.read_text())
    (cell,) = result["cells"]
    assert set(cell["mean"]) == set(guard_rules.RULES)
    assert all(0 < v <= 1 for v in cell["mean"].values())
    assert cell["mean"]["hindsight best"] >= max(cell["mean"].values())
