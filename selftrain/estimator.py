"""``SelfTrainingClassifier``: a drop-in for scikit-learn's, with opt-in safety.

With its defaults it behaves exactly like ``sklearn.semi_supervised.SelfTrainingClassifier``.
Opt in to class-balanced selection, calibrated confidences, a label-spreading teacher
and validation-based stopping (``best_iter_``), which make self-training safe for
estimators whose confidences mislead it, random forests first.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils import get_tags, safe_mask
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from selftrain.checks import check_finite, check_lengths, check_params
from selftrain.rounds import (
    RoundState,
    fit_state,
    initial_state,
    round_record,
    rounds_stale,
    run_round,
)
from selftrain.selection import SelectionPolicy

TERMINATIONS = ("max_iter", "no_change", "all_labeled", "early_stopping")


def _estimator_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class SelfTrainingClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Self-training: fit on labeled rows (``-1`` = unlabeled), pseudo-label the
    confident unlabeled rows, refit, repeat.

    Beyond scikit-learn's arguments: ``balanced`` (per-class quota at the label prior),
    ``calibration`` (``"sigmoid"``/``"isotonic"``), ``teacher="label_spreading"``
    (blend a kNN-graph label spreading into the confidences, ``teacher_weight``),
    ``stopping`` (``"holdout"`` slice of ``validation_fraction`` or ``"cv"`` folds,
    scored every round; stop after ``patience`` rounds without gain and keep the best
    round), ``random_state`` (holdout and CV splits), ``callback(state, model, record)``
    called after every round. ``k_best`` may be a share (< 1) of the unlabeled pool.
    """

    def __init__(
        self,
        estimator=None,
        threshold=0.75,
        criterion="threshold",
        k_best=10,
        max_iter=10,
        verbose=False,
        *,
        balanced=False,
        calibration=None,
        teacher=None,
        teacher_weight=0.5,
        stopping=None,
        validation_fraction=0.2,
        patience=3,
        cv=3,
        random_state=None,
        callback=None,
    ):
        self.estimator = estimator
        self.threshold = threshold
        self.criterion = criterion
        self.k_best = k_best
        self.max_iter = max_iter
        self.verbose = verbose
        self.balanced = balanced
        self.calibration = calibration
        self.teacher = teacher
        self.teacher_weight = teacher_weight
        self.stopping = stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.cv = cv
        self.random_state = random_state
        self.callback = callback

    def fit(self, X, y):
        """Fit on ``X`` and ``y`` with ``-1`` marking unlabeled rows."""
        check_params(self)
        base = self.round_estimator()
        X, y, state = self._validate_input(X, y)
        state, X_work, held = self._carve_holdout(X, y, state)
        holdout = None if held is None else (X[safe_mask(X, held)], y[held])
        policy = self.selection_policy(int((~state.labeled).sum()))
        rounds = _RoundLog()
        while state.termination is None and (self.max_iter is None or state.round < self.max_iter):
            result = run_round(state, X_work, base, policy)
            rounds.add(*self._scored(result.fitted_on, result.model, X_work, holdout, base))
            state = result.state
            n_added = round_record(state)["n_added"]
            if self.verbose and n_added:  # scikit-learn stays silent on a round that adds none
                print(f"End of iteration {state.round}, added {n_added} new labels.")
            if self.stopping and rounds.stale(self.patience):
                state = replace(state, termination="early_stopping")
        if state.termination not in ("all_labeled", "early_stopping") and (
            self.max_iter is not None and state.round == self.max_iter
        ):
            state = replace(state, termination="max_iter")
        if state.termination != "early_stopping":
            final = fit_state(state, X_work, base)
            rounds.add(*self._scored(state, final, X_work, holdout, base))

        self.history_ = rounds.records
        self.n_iter_ = state.round
        self.termination_condition_ = state.termination
        self.best_iter_ = rounds.best_index
        chosen = rounds.states[self.best_iter_]
        self.estimator_ = rounds.best_model
        if held is not None:  # the held-out labels are real: train on them at the end
            self.estimator_ = fit_state(chosen, X_work, base, extra=holdout)
        self._set_transduction(y, chosen, held)
        self.classes_ = self.estimator_.classes_
        return self

    # -- the pieces the pipeline reuses --------------------------------------------------

    def round_estimator(self):
        """The estimator fitted in every round: a clone, calibrated if asked."""
        if self.estimator is None:
            raise ValueError("estimator=None: pass a classifier with fit and predict_proba")
        if not hasattr(self.estimator, "predict_proba") and self.calibration is None:
            raise ValueError(
                f"estimator={type(self.estimator).__name__} has no predict_proba; "
                "set calibration='sigmoid' to self-train it"
            )
        if self.calibration is None:
            return clone(self.estimator)
        return CalibratedClassifierCV(clone(self.estimator), method=self.calibration, cv=3)

    def selection_policy(self, n_pool: int) -> SelectionPolicy:
        """The selection rule, with a share-valued ``k_best`` resolved against the pool."""
        k_best = self.k_best
        if isinstance(k_best, Real) and k_best < 1:
            k_best = max(1, math.ceil(k_best * n_pool))
        elif self.criterion == "k_best" and n_pool and k_best > n_pool:
            raise ValueError(
                f"k_best={self.k_best} is larger than the unlabeled pool ({n_pool} rows)"
            )
        return SelectionPolicy(
            criterion=self.criterion,
            threshold=self.threshold,
            k_best=int(k_best),
            balanced=self.balanced,
            teacher=self.teacher,
            teacher_weight=self.teacher_weight,
        )

    # -- scikit-learn's delegating methods -------------------------------------------------

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        check_is_fitted(self)
        return self.estimator_.predict(self._check_X(X))

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        check_is_fitted(self)
        return self.estimator_.predict_proba(self._check_X(X))

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(self._check_X(X))

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        check_is_fitted(self)
        return self.estimator_.decision_function(self._check_X(X))

    @available_if(_estimator_has("score"))
    def score(self, X, y, sample_weight=None):
        check_is_fitted(self)
        return self.estimator_.score(self._check_X(X), y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = get_tags(self.estimator).input_tags
            tags.input_tags.sparse = inner.sparse
            tags.input_tags.allow_nan = inner.allow_nan
        return tags

    # -- helpers ---------------------------------------------------------------------------

    def _check_X(self, X):
        return validate_data(self, X, accept_sparse=True, ensure_all_finite=False, reset=False)

    def _validate_input(self, X, y):
        """Checked ``X``, ``y`` and round 0's state; errors name the argument and value."""
        check_lengths(X, y)
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], ensure_all_finite=False
        )
        if y.dtype.kind in "US":
            raise ValueError(
                "y has dtype string: use dtype object for string labels, with -1 for unlabeled"
            )
        check_finite(self.estimator, X)
        state = initial_state(y)
        check_classification_targets(y[state.labeled])
        if state.labeled.all():
            warnings.warn("y contains no unlabeled samples", UserWarning, stacklevel=3)
        return X, y, state

    def _carve_holdout(self, X, y, state: RoundState):
        """With ``stopping='holdout'``, set a stratified slice of the labeled rows aside."""
        if self.stopping != "holdout":
            return state, X, None
        labeled = np.flatnonzero(state.labeled)
        try:
            _, held = train_test_split(
                labeled, test_size=self.validation_fraction, random_state=self.random_state,
                stratify=state.y[labeled],
            )
        except ValueError as exc:
            raise ValueError(
                f"stopping='holdout' with validation_fraction={self.validation_fraction} cannot "
                f"hold out a stratified slice of {labeled.size} labeled rows: {exc}"
            ) from None
        keep = np.setdiff1d(np.arange(len(y)), held)
        work = initial_state(y[keep], classes=state.classes)
        return work, X[safe_mask(X, keep)], np.sort(held)

    def _scored(self, fitted_on: RoundState, model, X, holdout, base):
        record = round_record(fitted_on)
        if self.stopping == "holdout":
            record["val_score"] = float(accuracy_score(holdout[1], model.predict(holdout[0])))
        elif self.stopping == "cv":
            record["val_score"] = self._cv_score(fitted_on, X, base)
        else:
            record["val_score"] = None
        if self.callback is not None:
            self.callback(fitted_on, model, record)
        return fitted_on, model, record

    def _cv_score(self, state: RoundState, X, base) -> float:
        """Score on the original labels only, each fold trained on the rest plus pseudo-labels."""
        original = np.flatnonzero(state.labeled_iter == 0)
        y_orig = state.y[original]
        counts = np.bincount(y_orig, minlength=len(state.classes))
        smallest = int(counts.min())
        if smallest < 2:
            rare = np.asarray(state.classes, dtype=object)[int(counts.argmin())]
            raise ValueError(
                f"stopping='cv' needs at least 2 labeled rows in every class; class {rare!r} "
                f"has {smallest}"
            )
        folds = StratifiedKFold(min(self.cv, smallest), shuffle=True,
                                random_state=self.random_state)
        correct = 0
        for _, test in folds.split(original, y_orig):
            rows = original[test]
            masked = state.y.copy()
            masked[rows] = -1
            model = fit_state(RoundState(state.classes, masked, state.labeled_iter,
                                         state.confidence), X, base)
            correct += int((model.predict(X[safe_mask(X, rows)]) == state.labels[rows]).sum())
        return correct / len(original)

    def _set_transduction(self, y, chosen: RoundState, held):
        if held is None:
            self.transduction_, self.labeled_iter_ = _decode(chosen), chosen.labeled_iter.copy()
            return
        keep = np.setdiff1d(np.arange(len(y)), held)
        self.transduction_ = np.array(y, copy=True)
        self.transduction_[keep] = _decode(chosen)
        self.labeled_iter_ = np.zeros(len(y), dtype=np.int64)
        self.labeled_iter_[keep] = chosen.labeled_iter


class _RoundLog:
    """Scores and states of every round, and only the best model (memory)."""

    def __init__(self):
        self.records, self.states, self.best_index, self.best_model = [], [], -1, None

    def add(self, state, model, record):
        score, best = record["val_score"], self.best_index
        if best < 0 or score is None or score > self.records[best]["val_score"]:
            self.best_index, self.best_model = len(self.states), model
        self.states.append(state)
        self.records.append(record)

    def stale(self, patience: int) -> bool:
        return rounds_stale([r["val_score"] for r in self.records], patience)


def _decode(state: RoundState) -> np.ndarray:
    labels = state.labels
    return labels.astype(state.classes.dtype) if state.classes.dtype.kind != "O" else labels
