"""The gate's decision, a pure function: each check, its line, and the model-line rule."""

import pytest

from selftrain.config import GateSettings
from selftrain.schema import FeatureSchema
from tasks.gate import decide, line_mismatch

GATE = GateSettings(min_accuracy=0.5, min_gain=0.0, max_regression=0.01)


def test_first_promotion_passes_on_accuracy_and_gain():
    d = decide(0.9, 0.85, None, None, GATE)
    assert d.promote
    assert d.reasons[0] == "no champion in the model store: first promotion"
    assert all(r.startswith("pass: ") for r in d.reasons[1:])


@pytest.mark.parametrize(("candidate", "baseline", "champion", "failed"), [
    (0.4, 0.3, None, "gate.min_accuracy"),
    (0.84, 0.85, None, "gate.min_gain"),
    (0.88, 0.85, 0.90, "gate.max_regression"),
])
def test_each_failed_check_is_named(candidate, baseline, champion, failed):
    d = decide(candidate, baseline, champion, "m:1" if champion else None, GATE)
    assert not d.promote
    assert [r for r in d.reasons if r.startswith("FAIL")] == [
        next(r for r in d.reasons if failed in r)]


def test_a_regression_within_the_allowance_passes():
    assert decide(0.895, 0.85, 0.90, "m:1", GATE).promote


def test_a_champion_of_another_problem_refuses_the_candidate_and_says_why():
    digits = FeatureSchema(feature_names=[f"pixel_{i}" for i in range(64)],
                           dtypes=["float64"] * 64, classes=list(range(10)))
    churn = FeatureSchema(feature_names=["city", "age"], dtypes=["object", "float64"],
                          classes=["churn", "stay"], roles={"city": "categorical"})
    why = line_mismatch("selftrain-classifier:abc", digits, churn, "selftrain-classifier")
    d = decide(0.99, 0.5, None, "selftrain-classifier:abc", GATE, why)
    assert not d.promote
    assert d.reasons[0].startswith("FAIL: the champion selftrain-classifier:abc")
    assert "64 columns (pixel_0, pixel_1, pixel_2, pixel_3, ...)" in d.reasons[0]
    assert "2 columns (city, age), classes ['churn', 'stay']" in d.reasons[0]
    assert "--set project=" in d.reasons[0]
    assert "first promotion" not in " ".join(d.reasons)
