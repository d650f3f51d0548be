"""The self-training loop, one round at a time.

``run_round`` is a pure function from one small, serialisable ``RoundState`` to the
next. ``SelfTrainingClassifier.fit`` loops over it; the Prefect pipeline runs each
call as a checkpointed task. One implementation, two uses.

Labels inside a state are class indices (``-1`` = unlabeled) so that string labels
and file round-trips need no pickling; ``classes`` maps them back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.utils import safe_mask
from sklearn.utils.validation import (
    _check_method_params,
    _is_arraylike_not_scalar,
    _num_samples,
)

from selftrain.labels import is_unlabeled
from selftrain.selection import SelectionPolicy, select_pseudo_labels
from selftrain.teacher import GraphTeacher


@dataclass(frozen=True)
class RoundState:
    """Where the loop stands after ``round`` rounds of pseudo-labelling."""

    classes: np.ndarray
    y: np.ndarray  # class index per row, -1 while unlabeled (original + pseudo-labels)
    labeled_iter: np.ndarray  # 0 = labeled at the start, k = added in round k, -1 = never
    confidence: np.ndarray  # confidence when pseudo-labeled, nan otherwise
    round: int = 0
    termination: str | None = None

    @property
    def labeled(self) -> np.ndarray:
        return self.y != -1

    @property
    def labels(self) -> np.ndarray:
        """Labels in the user's vocabulary (``-1`` for rows still unlabeled)."""
        out = np.asarray(self.classes, dtype=object)[np.maximum(self.y, 0)]
        out[self.y == -1] = -1
        return out

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for arr in (self.y, self.labeled_iter):
            digest.update(np.ascontiguousarray(arr).tobytes())
        digest.update(f"{self.round}:{self.termination}".encode())
        return digest.hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        """Write the state as one ``.npz`` file (no pickle); written atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        meta = {"round": self.round, "termination": self.termination}
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                classes=_plain(self.classes),
                y=self.y,
                labeled_iter=self.labeled_iter,
                confidence=self.confidence,
                meta=np.array(json.dumps(meta)),
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> RoundState:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                classes=data["classes"],
                y=data["y"],
                labeled_iter=data["labeled_iter"],
                confidence=data["confidence"],
                round=meta["round"],
                termination=meta["termination"],
            )


@dataclass(frozen=True)
class RoundResult:
    """``model`` was fitted on ``fitted_on``'s labels; ``state`` is the state after selection."""

    model: object
    state: RoundState
    fitted_on: RoundState = field(repr=False)


def initial_state(y, classes=None, min_classes: int = 2) -> RoundState:
    """Round 0: the given labels, ``-1`` marking unlabeled rows. ``min_classes=1`` accepts
    a single labeled class, as scikit-learn's ``SelfTrainingClassifier`` does."""
    y = np.asarray(y)
    labeled = ~is_unlabeled(y)
    if not labeled.any():
        raise ValueError(
            f"y has no labeled rows (all {len(y)} are -1): at least two classes need labels"
        )
    seen = np.unique(y[labeled])
    classes = seen if classes is None else np.asarray(classes)
    if len(seen) < min_classes:
        raise ValueError(
            f"y has labels of only one class ({_plain_value(seen[0])!r}): self-training needs "
            "at least two labeled classes"
        )
    encoded = np.full(len(y), -1, dtype=np.int64)
    encoded[labeled] = np.searchsorted(classes, y[labeled])
    labeled_iter = np.where(labeled, 0, -1).astype(np.int64)
    confidence = np.full(len(y), np.nan)
    termination = None if (~labeled).any() else "all_labeled"
    return RoundState(classes, encoded, labeled_iter, confidence, 0, termination)


def fit_state(state: RoundState, X, estimator, extra=None, params=None):
    """A clone of ``estimator`` fitted on the state's labeled rows (plus ``extra`` = (X, y)
    or (X, y, params)). ``params``: fit metadata of ``X``'s rows (``row_params``), sliced
    to the rows fitted; a pseudo-labeled row keeps its own ``sample_weight``."""
    mask = state.labeled
    X_fit, y_fit = X[safe_mask(X, mask)], state.labels[mask]
    fit_params = row_params(params, X, np.flatnonzero(mask))
    if extra is not None:
        X_fit = (
            sparse.vstack([X_fit, extra[0]], format="csr")
            if sparse.issparse(X_fit)
            else np.concatenate([np.asarray(X_fit), np.asarray(extra[0])])
        )
        y_fit = np.concatenate([y_fit, extra[1]])
        if fit_params:  # the extra rows' per-row metadata follows them
            fit_params = {k: np.concatenate([v, extra[2][k]]) if _per_row(params[k], X) else v
                          for k, v in fit_params.items()}
    return clone(estimator).fit(X_fit, _as_label_array(y_fit, state.classes), **fit_params)


def row_params(params: dict | None, X, rows: np.ndarray) -> dict:
    """Fit metadata for ``X``'s ``rows``: per-row arrays (one entry per row of ``X``, such
    as ``sample_weight``) sliced, anything else as it is (scikit-learn's own rule for
    cross-validation)."""
    return _check_method_params(X, params, rows) if params else {}


def _per_row(value, X) -> bool:
    return _is_arraylike_not_scalar(value) and _num_samples(value) == _num_samples(X)


def run_round(state: RoundState, X, estimator, policy: SelectionPolicy,
              teacher: GraphTeacher | None = None, params: dict | None = None) -> RoundResult:
    """Fit on the state's labels, pseudo-label the chosen pool rows: the next state.

    Deterministic for a seeded estimator: the same state and inputs give the same
    next state, which is what makes a checkpointed rerun end with the same model.
    ``teacher``: the kNN graph of ``X``'s rows, built once by the caller; built here when
    the policy asks for a teacher and none is given. ``params``: fit metadata of ``X``'s rows.
    """
    model = fit_state(state, X, estimator, params=params)
    pool = np.flatnonzero(~state.labeled)
    if pool.size == 0:
        return RoundResult(model, replace(state, termination="all_labeled"), state)
    proba = _align_proba(model, X[safe_mask(X, pool)], state.classes)
    if policy.teacher == "label_spreading":
        teacher = teacher if teacher is not None else GraphTeacher(X)
        proba = ((1 - policy.teacher_weight) * proba
                 + policy.teacher_weight * teacher.proba(state.y, pool, len(state.classes)))
    prior = np.bincount(state.y[state.labeled], minlength=len(state.classes)) / state.labeled.sum()
    chosen, pred, conf = select_pseudo_labels(proba, policy, prior)
    nxt_round = state.round + 1
    y, it, cf = state.y.copy(), state.labeled_iter.copy(), state.confidence.copy()
    rows = pool[chosen]
    y[rows], it[rows], cf[rows] = pred[chosen], nxt_round, conf[chosen]
    termination = None
    if rows.size == 0:
        termination = "no_change"
    elif (y != -1).all():
        termination = "all_labeled"
    return RoundResult(model, RoundState(state.classes, y, it, cf, nxt_round, termination), state)


def round_record(state: RoundState) -> dict:
    """What a round added: counts per class and their mean confidence."""
    added = state.labeled_iter == state.round if state.round > 0 else np.zeros_like(state.labeled)
    per_class = np.bincount(state.y[added], minlength=len(state.classes))
    return {
        "round": state.round,
        "n_labeled": int(state.labeled.sum()),
        "n_pseudo_labeled": int((state.labeled_iter > 0).sum()),
        "n_added": int(added.sum()),
        "added_per_class": {str(c): int(n) for c, n in zip(state.classes, per_class, strict=True)},
        "mean_confidence": float(np.mean(state.confidence[added])) if added.any() else None,
    }


def best_round(scores: list[float | None]) -> int:
    """The first round with the highest score; the last round when nothing was scored."""
    valued = [(-np.inf if s is None else s) for s in scores]
    return len(scores) - 1 if all(s is None for s in scores) else int(np.argmax(valued))


def rounds_stale(scores: list[float | None], patience: int) -> bool:
    """True when the last ``patience`` rounds brought no gain over the best one."""
    return len(scores) - 1 - best_round(scores) >= patience


def _align_proba(model, X_pool, classes) -> np.ndarray:
    """Probabilities with one column per class of the state, even if the model saw fewer."""
    proba = model.predict_proba(X_pool)
    model_classes = np.asarray(model.classes_)
    if len(model_classes) == len(classes):
        return proba
    full = np.zeros((proba.shape[0], len(classes)))
    full[:, np.searchsorted(classes, model_classes)] = proba
    return full


def _as_label_array(y_fit, classes) -> np.ndarray:
    # Fit on the user's own label type, so that estimator_.classes_ matches scikit-learn's.
    dtype = np.asarray(classes).dtype
    return np.asarray(list(y_fit), dtype=object if dtype.kind in "OUS" else dtype)


def _plain(classes) -> np.ndarray:
    # npz without pickle holds no object arrays: ints stay ints, anything else becomes str
    arr = np.asarray(classes)
    if arr.dtype.kind != "O":
        return arr
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr):
        return arr.astype(np.int64)
    return arr.astype(str)


def _plain_value(value):
    return value.item() if isinstance(value, np.generic) else value
