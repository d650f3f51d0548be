"""Hide labels of a fully labeled table, to measure self-training honestly."""

from __future__ import annotations

import numpy as np


def mask_labels(y, labeled=0.1, random_state=None, unlabeled_value=-1) -> np.ndarray:
    """A copy of ``y`` in which all but a stratified, seeded subset is ``unlabeled_value``.

    ``labeled`` is a share of the rows in (0, 1], or an int: rows kept per class.
    Every class keeps at least one label.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array, got shape {y.shape}")
    per_class = isinstance(labeled, int | np.integer) and not isinstance(labeled, bool)
    if per_class and labeled < 1:
        raise ValueError(f"labeled={labeled} is invalid: a count per class must be >= 1")
    if not per_class and not 0 < labeled <= 1:
        raise ValueError(f"labeled={labeled} is invalid: a share must be in (0, 1]")
    rng = np.random.default_rng(random_state)
    keep = np.zeros(y.size, dtype=bool)
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        n = labeled if per_class else max(1, round(labeled * rows.size))
        keep[rng.permutation(rows)[: min(n, rows.size)]] = True
    out = y.astype(object) if y.dtype.kind in "US" else y.copy()
    out[~keep] = unlabeled_value
    return out
