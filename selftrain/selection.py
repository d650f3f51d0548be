"""Which predictions become pseudo-labels.

Plain scikit-learn selection (``balanced=False``) keeps the most confident rows,
which on real data are mostly the easy classes: the model drifts towards them.
Balanced selection caps each class's share of a round at its share of the labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SelectionPolicy:
    """The estimator's selection arguments for one fit (no defaults here: they are the
    estimator's and the config's)."""

    criterion: str  # selftrain.choices.CRITERIA
    threshold: float
    k_best: int  # rows per round (already resolved from a share of the pool)
    balanced: bool
    teacher: str | None
    teacher_weight: float


def select_pseudo_labels(
    proba: np.ndarray, policy: SelectionPolicy, prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick pool rows to pseudo-label.

    ``proba`` is (n_pool, n_classes); returns (chosen pool positions, predicted class
    index per pool row, confidence per pool row). Ties break on the row order, so the
    choice is deterministic.
    """
    pred = np.argmax(proba, axis=1)
    conf = np.max(proba, axis=1)
    if policy.criterion == "threshold":
        eligible = np.flatnonzero(conf > policy.threshold)
        budget = eligible.size
    else:
        eligible = np.arange(conf.size)
        budget = min(policy.k_best, conf.size)
    if not policy.balanced:
        if policy.criterion == "threshold":
            return eligible, pred, conf
        return _top(eligible, conf, budget), pred, conf
    if policy.criterion == "threshold":  # k_best rounds are already prior-sized
        budget = _balanced_budget(pred, eligible, prior, budget)
    chosen = [
        _top(eligible[pred[eligible] == c], conf, _quota(prior[c], budget))
        for c in range(proba.shape[1])
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64), pred, conf


def _balanced_budget(pred, eligible, prior, budget: int) -> int:
    """The largest round in which every class still predicted in the pool fills its
    prior-sized quota: the scarcest class sets the pace, so no class is swamped."""
    present = np.bincount(pred, minlength=len(prior)) > 0
    counts = np.bincount(pred[eligible], minlength=len(prior))
    limits = [counts[c] / prior[c] for c in np.flatnonzero(present & (prior > 0))]
    return min([budget, *(math.floor(x) for x in limits)])


def _quota(prior: float, budget: int) -> int:
    # ceil so that a small class still gets a row in a small round
    return math.ceil(prior * budget) if budget else 0


def _top(candidates: np.ndarray, conf: np.ndarray, k: int) -> np.ndarray:
    if k >= candidates.size:
        return candidates
    order = np.argsort(-conf[candidates], kind="stable")[:k]
    return np.sort(candidates[order])
