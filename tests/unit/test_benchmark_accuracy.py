"""The accuracy benchmark's core on a tiny slice: the recorded structure, and numbers
checked against the same fits made here by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from benchmarks import accuracy
from benchmarks.cells import METHODS
from selftrain import mask_labels

FRACTION, SEED = 0.2, 0


@pytest.fixture(scope="module")
def wine_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "accuracy.json"
    argv = ["--datasets", "wine", "--fractions", str(FRACTION), "--seeds", "1", "--extras",
            "none", "--out", str(out)]
    assert accuracy.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def by_hand():
    """The labeled-only and fully supervised forests of the protocol, fitted here: a fixed
    stratified 25% test split (seed 0), 20% of the training labels kept (seed 0)."""
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(float), y, test_size=0.25, stratify=y, random_state=0)
    y_masked = mask_labels(y_train, labeled=FRACTION, random_state=SEED)
    rows = y_masked != -1

    def score(X_fit, y_fit):
        forest = RandomForestClassifier(n_estimators=100, random_state=SEED).fit(X_fit, y_fit)
        return float(np.mean(forest.predict(X_test) == y_test))

    return {"n_train": len(X_train), "n_labeled": int(rows.sum()),
            "baseline": score(X_train[rows], y_masked[rows]), "oracle": score(X_train, y_train)}


@pytest.mark.slow
def test_json_has_one_cell_with_every_method(wine_result, by_hand):
    result = json.loads(wine_result.read_text())
    assert result["protocol"]["datasets"] == ["wine"]
    assert result["protocol"]["seeds"] == [SEED]
    (cell,) = result["cells"]
    assert (cell["dataset"], cell["fraction"]) == ("wine", FRACTION)
    assert (cell["n_train"], cell["n_labeled"]) == (by_hand["n_train"], by_hand["n_labeled"])
    assert set(cell["methods"]) == set(METHODS)
    assert cell["failed_methods"] == {}
    for method, stats in cell["methods"].items():
        assert len(stats["accuracy_per_seed"]) == 1, method
        assert stats["accuracy_mean"] == stats["accuracy_per_seed"][0], method
        assert stats["accuracy_std"] == 0.0, method  # one seed: no spread


@pytest.mark.slow
def test_baseline_and_oracle_match_the_forests_fitted_by_hand(wine_result, by_hand):
    (cell,) = json.loads(wine_result.read_text())["cells"]
    assert cell["methods"]["baseline"]["accuracy_per_seed"] == [by_hand["baseline"]]
    assert cell["methods"]["oracle"]["accuracy_per_seed"] == [by_hand["oracle"]]


@pytest.mark.slow
def test_gap_closed_is_the_share_of_the_baseline_to_oracle_gap(wine_result, by_hand):
    (cell,) = json.loads(wine_result.read_text())["cells"]
    base, oracle = by_hand["baseline"], by_hand["oracle"]
    assert oracle - base > 0.01, "no gap on this slice: gap_closed would be 0 for every row"
    for method, stats in cell["methods"].items():
        expected = (stats["accuracy_mean"] - base) / (oracle - base)
        assert stats["gap_closed"] == pytest.approx(expected), method
    assert cell["methods"]["baseline"]["gap_closed"] == 0.0
    assert cell["methods"]["oracle"]["gap_closed"] == pytest.approx(1.0)


@pytest.mark.slow
def test_verdicts_and_bars_follow_the_recorded_scores(wine_result):
    result = json.loads(wine_result.read_text())
    (cell,) = result["cells"]
    rec, st, base = (cell["methods"][m] for m in ("recommended", "sklearn_st", "baseline"))
    expected = {
        "recommended_ge_sklearn_st": rec["accuracy_mean"] >= st["accuracy_mean"],
        "recommended_not_below_baseline":
            rec["accuracy_mean"] >= base["accuracy_mean"] - base["accuracy_std"],
    }
    assert cell["verdict"] == expected
    bars = result["bars"]
    assert bars["recommended >= sklearn ST in every cell"]["passed"] is (
        expected["recommended_ge_sklearn_st"])
    assert bars["recommended never below baseline by more than 1 std"]["passed"] is (
        expected["recommended_not_below_baseline"])
    digits = bars["digits@10%: beats best peer and closes >= 50% of the gap"]
    assert digits["passed"] is None  # digits at 10% was not run
    markdown = wine_result.with_suffix(".md").read_text()
    assert markdown.count("| wine |") == 1


def test_digits_bar_needs_both_the_best_peer_and_half_the_gap():
    def cell(rec, gap, peer=0.90):
        return [{"dataset": "digits", "fraction": 0.1, "methods": {
            "recommended": {"accuracy_mean": rec, "gap_closed": gap},
            "sklearn_st": {"accuracy_mean": peer}}}]

    assert accuracy.judge_digits(cell(0.95, 0.6))["passed"] is True
    assert accuracy.judge_digits(cell(0.95, 0.4))["passed"] is False  # gap not half closed
    assert accuracy.judge_digits(cell(0.93, 0.9))["passed"] is False  # below the 0.937
    assert accuracy.judge_digits(cell(0.95, 0.9, peer=0.96))["passed"] is False  # a peer wins


def test_unknown_dataset_is_refused():
    with pytest.raises(SystemExit):
        accuracy.parse_args(["--datasets", "mnist"])
