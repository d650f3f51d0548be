"""The bounded pool: how self-training stays affordable on a very large table.

Every round refits the base estimator on the labeled and pseudo-labeled rows, and the
recommended configuration pseudo-labels a share of the pool per round until it is used
up, in each of the guard's folds and in the final run. With the whole pool that is a
forest on (nearly) every row of the table, about ten times per run and four runs per fit:
on a 1,000,000 x 64 table a single 100-tree forest on the 750,000 training rows takes
about half an hour on one core (``benchmarks/large_table.py``), the fit days.

So above ``POOL_MAX_ROWS`` unlabeled rows, self-training works on every labeled row and a
seeded, uniform sample of ``POOL_MAX_ROWS`` unlabeled rows, with one warning; the guard
judges exactly that run (same rows, same rounds). The other unlabeled rows stay
unlabeled, as rows that ``max_iter`` never reached do (``transduction_`` and
``labeled_iter_`` say -1). Pseudo-labels are the model's own predictions: they carry the
data's shape, not new labels, and a pool many times the labeled set already gives the
rounds all they can use. Every table the accuracy benchmarks measured (at most ~10,000
rows) is below the bound, and fits there are unchanged.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
from sklearn.utils import check_random_state, safe_mask

from selftrain.rounds import RoundState

POOL_MAX_ROWS = 20_000


def bounded_pool(state: RoundState, X, random_state=None):
    """``(state, X, rows)`` for self-training: unchanged with ``rows=None`` when the pool is
    within ``POOL_MAX_ROWS``; else restricted to the labeled rows and a seeded sample of
    the pool, ``rows`` holding their positions in the given ``X`` (sorted)."""
    pool = np.flatnonzero(~state.labeled)
    if pool.size <= POOL_MAX_ROWS:
        return state, X, None
    warnings.warn(
        f"the unlabeled pool has {pool.size} rows: self-training uses a seeded sample of "
        f"{POOL_MAX_ROWS} of them (selftrain.pool.POOL_MAX_ROWS), the others stay unlabeled",
        UserWarning, stacklevel=3)
    sample = check_random_state(random_state).choice(pool, POOL_MAX_ROWS, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(state.labeled), sample]))
    sampled = replace(state, y=state.y[rows], labeled_iter=state.labeled_iter[rows],
                      confidence=state.confidence[rows])
    return sampled, X[safe_mask(X, rows)], rows
