"""Evaluation metrics, one dictionary per model, JSON-ready."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score


def evaluate_model(model, X, y, classes=None) -> dict:
    """Accuracy, macro-F1, per-class recall and the confusion matrix of ``model`` on X, y."""
    pred = model.predict(X)
    classes = np.asarray(model.classes_ if classes is None else classes)
    recall = recall_score(y, pred, labels=classes, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=classes, average="macro", zero_division=0)),
        "per_class_recall": {str(c): float(r) for c, r in zip(classes, recall, strict=True)},
        "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
    }


def pseudo_label_accuracy(pseudo, truth) -> float | None:
    """Share of pseudo-labels equal to the hidden truth (simulation mode only)."""
    pseudo, truth = np.asarray(pseudo), np.asarray(truth)
    return float(np.mean(pseudo == truth)) if pseudo.size else None


def gap_closed(score: float, baseline: float, oracle: float) -> float:
    """Share of the labeled-only -> fully supervised gap that ``score`` closes."""
    gap = oracle - baseline
    return float((score - baseline) / gap) if abs(gap) > 1e-12 else 0.0


def mcnemar_z(harmed: int, helped: int, corrected: bool = True) -> float:
    """Signed McNemar z of model A over model B from the rows only one of them got right
    (``harmed``: A right, B wrong; ``helped``: the reverse). The continuity correction
    makes a one-row difference count for nothing."""
    if harmed + helped == 0:
        return 0.0
    diff = harmed - helped
    if corrected:
        diff = math.copysign(max(abs(diff) - 1, 0), diff)
    return float(diff / math.sqrt(harmed + helped))
