"""Evaluation metrics: JSON-ready, and right on a hand-checked case."""

import json

import numpy as np
import pytest

from selftrain.metrics import evaluate_model, gap_closed, mcnemar_z, pseudo_label_accuracy


class FixedModel:
    classes_ = np.array(["a", "b", "c"])

    def predict(self, X):
        return np.asarray(X)[:, 0]


def test_evaluate_model_on_a_hand_checked_case():
    X = np.array([["a"], ["a"], ["b"], ["c"]], dtype=object)
    y = np.array(["a", "b", "b", "c"])
    result = evaluate_model(FixedModel(), X, y)
    assert result["accuracy"] == 0.75
    assert result["per_class_recall"] == {"a": 1.0, "b": 0.5, "c": 1.0}
    assert result["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert result["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    json.dumps(result)


def test_evaluate_model_counts_a_class_missing_from_the_test_rows():
    X = np.array([["a"], ["b"]], dtype=object)
    result = evaluate_model(FixedModel(), X, np.array(["a", "b"]), classes=["a", "b", "c"])
    assert result["per_class_recall"]["c"] == 0.0
    assert len(result["confusion_matrix"]) == 3


def test_pseudo_label_accuracy():
    assert pseudo_label_accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert pseudo_label_accuracy([], []) is None


@pytest.mark.parametrize(
    ("score", "baseline", "oracle", "expected"),
    [(0.9, 0.8, 1.0, 0.5), (0.7, 0.8, 1.0, -0.5), (1.0, 0.8, 1.0, 1.0), (0.9, 0.9, 0.9, 0.0)],
)
def test_gap_closed(score, baseline, oracle, expected):
    assert gap_closed(score, baseline, oracle) == pytest.approx(expected)


@pytest.mark.parametrize(("harmed", "helped", "plain", "corrected"), [
    (0, 0, 0.0, 0.0), (1, 0, 1.0, 0.0), (0, 1, -1.0, 0.0), (5, 5, 0.0, 0.0),
    (16, 12, 4 / 28 ** 0.5, 3 / 28 ** 0.5), (2, 8, -6 / 10 ** 0.5, -5 / 10 ** 0.5)])
def test_mcnemar_z_plain_and_continuity_corrected(harmed, helped, plain, corrected):
    assert mcnemar_z(harmed, helped, corrected=False) == pytest.approx(plain)
    assert mcnemar_z(harmed, helped) == pytest.approx(corrected)


def test_the_rounds_artifact_has_short_headers_and_three_decimals():
    from tasks.evaluate import artifact_rows

    record = {"round": 1, "n_labeled": 40, "n_pseudo_labeled": 12, "n_added": 12,
              "mean_confidence": 0.912345678, "val_accuracy": 0.8074074074074075,
              "test_accuracy": 0.8, "test_macro_f1": 0.79999999, "pseudo_label_accuracy": None}
    [row] = artifact_rows([record])
    assert row == {"round": 1, "labeled": 40, "pseudo": 12, "added": 12, "confidence": 0.912,
                   "val acc": 0.807, "test acc": 0.8, "test F1": 0.8, "pseudo acc": None}
    assert sum(len(h) for h in row) < 80  # nine columns that fit a 1400 px page
