"""``SelfTrainingClassifier``: a drop-in for scikit-learn's, with opt-in safety.

With its defaults it behaves exactly like ``sklearn.semi_supervised.SelfTrainingClassifier``.
Opt in to class-balanced selection, calibrated confidences, a label-spreading teacher,
a cross-validated guard and validation-based stopping (``best_iter_``), which make
self-training safe for estimators whose confidences mislead it, random forests first.
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.utils import get_tags, safe_mask
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from selftrain.checks import check_finite, check_lengths, check_params
from selftrain.columns import split_preprocessor, with_preprocessor
from selftrain.driver import (
    adopted_selection,
    cv_guard,
    guard_score,
    in_memory_step,
    self_train,
)
from selftrain.estimators import AutoClassifier, resolve_base
from selftrain.pool import bounded_pool
from selftrain.rounds import (
    RoundState,
    _plain_value,
    fit_state,
    initial_state,
    round_record,
    row_params,
)
from selftrain.selection import SelectionPolicy
from selftrain.teacher import TEACHER_MAX_ROWS, GraphTeacher

TERMINATIONS = ("max_iter", "no_change", "all_labeled", "early_stopping")


def _estimator_has(attr):
    def check(self):
        # getattr, not hasattr: the estimator's own AttributeError becomes the __cause__
        # of ours, as in scikit-learn
        return getattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator, attr)

    return check


class SelfTrainingClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Self-training: fit on labeled rows (``-1`` = unlabeled), pseudo-label the
    confident unlabeled rows, refit, repeat.

    Beyond scikit-learn's arguments: ``balanced`` (per-class quota at the label prior),
    ``calibration`` (``"sigmoid"``/``"isotonic"``), ``teacher="label_spreading"``
    (blend a kNN-graph label spreading into the confidences, ``teacher_weight``),
    ``stopping="cv"`` (a leak-free guard over ``cv`` folds of the labels: keep round 0
    when self-training hurts beyond noise; ``cv_check_`` holds the verdict, ``None`` when
    no check ran) or ``"holdout"`` (a slice of ``validation_fraction`` scored every round,
    stop after ``patience`` rounds without gain and keep the best round), ``random_state``
    (the splits), ``callback(state, model, record)``
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
        n_jobs=None,
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
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.callback = callback

    def fit(self, X, y, **params):
        """Fit on ``X`` and ``y`` with ``-1`` marking unlabeled rows. ``**params``: metadata
        for the estimator, only with ``enable_metadata_routing=True`` (see ``_fit_params``)."""
        fit_params = self._fit_params(params)
        check_params(self)
        preprocessor, base = split_preprocessor(self.round_estimator())
        X, y, state = self._validate_input(X, y, raw=preprocessor is not None)
        if preprocessor is not None:  # unsupervised: fitted once, on every row
            X = np.asarray(preprocessor.fit_transform(X), dtype=np.float64)
        base, fallback, self.estimator_choice_ = resolve_base(base, X, state)
        state, X_work, held = self._carve_holdout(X, y, state)
        state, X_work, sampled = bounded_pool(state, X_work, self.random_state)
        work = _work_rows(len(y), held, sampled)  # X_work's rows in X (None: all of them)
        work_params = fit_params if work is None else row_params(fit_params, X, work)
        policy = self.selection_policy(int((~state.labeled).sum()), n_rows=len(state.y))
        teacher = GraphTeacher(X_work) if policy.teacher else None
        # set on every fit: a refit with other stopping must not keep an old verdict
        self.cv_check_ = check = cv_guard(
            state, X_work, base, policy, cv=self.cv, max_iter=self.max_iter,
            random_state=self.random_state, n_jobs=self.n_jobs, teacher=teacher,
            fallback=fallback, params=work_params,
        ) if self.stopping == "cv" else None
        on_round = self.callback
        if on_round is not None and preprocessor is not None:  # callbacks see raw-record models
            on_round = lambda s, m, r: self.callback(s, with_preprocessor(preprocessor, m), r)  # noqa: E731
        if check is not None:  # self-train to the end, or keep the labeled-only model
            kept = fallback if check["fallback"] and fallback is not None else base
            policy, max_iter = adopted_selection(check, policy, self.max_iter)
            rounds, last = self_train(
                state, self._step(X_work, kept, policy, teacher if policy.teacher else None,
                                  work_params),
                limit=0 if check["fallback"] else max_iter,
                max_iter=max_iter, on_round=on_round,
                score=guard_score(check))
        else:
            holdout = None if held is None else (X[safe_mask(X, held)], y[held])
            score = None if holdout is None else (
                lambda _, model: float(accuracy_score(holdout[1], model.predict(holdout[0]))))
            step = self._step(X_work, base, policy, teacher, work_params)
            rounds, last = self_train(state, step, limit=self.max_iter, max_iter=self.max_iter,
                                      score=score, on_round=on_round,
                                      patience=self.patience if holdout is not None else None)
            if held is not None:  # the held-out labels are real: train on them at the end
                rounds.best_model = fit_state(
                    rounds.states[rounds.best_index], X_work, base, params=work_params,
                    extra=(*holdout, row_params(fit_params, X, held)))
        self.history_ = rounds.records
        if self.estimator_choice_ is not None:
            self.history_[0]["estimator_choice"] = self.estimator_choice_
        self.n_iter_ = last.round
        self.termination_condition_ = last.termination
        self.best_iter_ = rounds.best_index
        self.estimator_ = with_preprocessor(preprocessor, rounds.best_model)
        self._set_transduction(y, rounds.states[self.best_iter_], held, work)
        self.classes_ = self.estimator_.classes_
        return self

    # -- the pieces the pipeline reuses --------------------------------------------------

    def round_estimator(self):
        """The estimator fitted in every round: a clone, calibrated if asked."""
        if self.estimator is None:
            raise ValueError("estimator=None: pass a classifier with fit and predict_proba")
        if not hasattr(self.estimator, "predict_proba") and self.calibration is None:
            # AttributeError, as scikit-learn raises (from its first predict_proba call);
            # checked before any fit, so that a long first round is not wasted.
            raise AttributeError(
                f"estimator={type(self.estimator).__name__} has no attribute 'predict_proba', "
                "which ranks the pseudo-labels; set calibration='sigmoid' to self-train it",
                name="predict_proba", obj=self.estimator,
            )
        if self.calibration is None:
            return clone(self.estimator)
        return CalibratedClassifierCV(clone(self.estimator), method=self.calibration, cv=3)

    def selection_policy(self, n_pool: int, n_rows: int = 0) -> SelectionPolicy:
        """The selection rule, with a share-valued ``k_best`` resolved against the pool.
        Above ``TEACHER_MAX_ROWS`` rows the teacher is off, with one warning."""
        k_best = self.k_best
        if isinstance(k_best, Real) and k_best < 1:
            k_best = max(1, math.ceil(k_best * n_pool))
        elif self.criterion == "k_best" and n_pool and k_best > n_pool:
            # a warning, as scikit-learn gives: the first round simply takes the whole pool
            warnings.warn(
                f"k_best is larger than the amount of unlabeled samples (k_best={self.k_best}, "
                f"{n_pool} unlabeled rows). All unlabeled samples will be labeled in the "
                "first iteration", UserWarning, stacklevel=3,
            )
        teacher = self.teacher
        if teacher is not None and n_rows > TEACHER_MAX_ROWS:
            warnings.warn(
                f"teacher={teacher!r} is off for {n_rows} rows (its kNN graph is built only up "
                f"to {TEACHER_MAX_ROWS} rows): self-training without it", UserWarning,
                stacklevel=3)
            teacher = None
        return SelectionPolicy(
            criterion=self.criterion,
            threshold=self.threshold,
            k_best=int(k_best),
            balanced=self.balanced,
            teacher=teacher,
            teacher_weight=self.teacher_weight,
        )

    # -- scikit-learn's delegating methods -------------------------------------------------

    @available_if(_estimator_has("predict"))
    def predict(self, X, **params):
        check_is_fitted(self)
        params = self._routed(params, "predict")
        return self.estimator_.predict(self._check_X(X), **params)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X, **params):
        check_is_fitted(self)
        params = self._routed(params, "predict_proba")
        return self.estimator_.predict_proba(self._check_X(X), **params)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        check_is_fitted(self)
        params = self._routed(params, "predict_log_proba")
        return self.estimator_.predict_log_proba(self._check_X(X), **params)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X, **params):
        check_is_fitted(self)
        params = self._routed(params, "decision_function")
        return self.estimator_.decision_function(self._check_X(X), **params)

    @available_if(_estimator_has("score"))
    def score(self, X, y, sample_weight=None, **params):
        """The estimator's score. ``sample_weight`` is passed on as it always was (scikit-learn
        refuses it without routing); other ``**params`` need metadata routing."""
        check_is_fitted(self)
        if _routing_enabled():
            if sample_weight is not None:
                params["sample_weight"] = sample_weight
            params = self._routed(params, "score")
        else:
            params = {**self._routed(params, "score"), "sample_weight": sample_weight}
        return self.estimator_.score(self._check_X(X), y, **params)

    # -- metadata routing, as scikit-learn's SelfTrainingClassifier routes it ---------------

    def get_metadata_routing(self):
        """Metadata of ``fit``, ``predict``, ... goes to the same method of ``estimator``."""
        router = MetadataRouter(owner=self)
        router.add(
            estimator=self.estimator,
            method_mapping=(
                MethodMapping()
                .add(callee="fit", caller="fit")
                .add(callee="score", caller="fit")
                .add(callee="predict", caller="predict")
                .add(callee="predict_proba", caller="predict_proba")
                .add(callee="decision_function", caller="decision_function")
                .add(callee="predict_log_proba", caller="predict_log_proba")
                .add(callee="score", caller="score")
            ),
        )
        return router

    def _routed(self, params: dict, method: str) -> dict:
        """The ``params`` the estimator's ``method`` asked for. Without
        ``enable_metadata_routing=True`` any ``params`` are a ValueError (scikit-learn's)."""
        _raise_for_params(params, self, method)
        if not _routing_enabled():
            return {}
        return dict(process_routing(self, method, **params).estimator[method])

    def _fit_params(self, params: dict) -> dict:
        """``fit``'s metadata that the estimator requested, checked as scikit-learn checks it.
        Every fit of every round and guard fold gets it sliced to the rows it fits (per-row
        arrays such as ``sample_weight``; ``rounds.row_params``): a pseudo-labeled row keeps
        its own weight. scikit-learn's own class passes it unsliced, which is a length error
        whenever a row is unlabeled."""
        if params and _routing_enabled() and isinstance(split_preprocessor(self.estimator)[1],
                                                        AutoClassifier):
            raise ValueError(
                f"fit metadata {sorted(params)} cannot reach estimator=AutoClassifier "
                "(base_estimator='auto'): not every candidate takes it (knn has no "
                "sample_weight); pass a named base estimator that requests it "
                "(set_fit_request)")
        return self._routed(params, "fit")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = get_tags(self.estimator).input_tags
            tags.input_tags.sparse = inner.sparse
            tags.input_tags.allow_nan = inner.allow_nan
        return tags

    # -- helpers ---------------------------------------------------------------------------

    def _check_X(self, X):
        if split_preprocessor(self.estimator_)[0] is not None:  # a table: the model reads it
            validate_data(self, X, reset=False, skip_check_array=True)
            return X
        return validate_data(self, X, accept_sparse=True, ensure_all_finite=False, reset=False)

    def _validate_input(self, X, y, raw: bool = False):
        """Checked ``X``, ``y`` and round 0's state; errors name the argument and value.
        ``raw``: ``X`` is a table for the preprocessor, kept as it is."""
        check_lengths(X, y)
        if raw:
            validate_data(self, X, skip_check_array=True)
            y = column_or_1d(np.asarray(y, dtype=object if _is_text(y) else None), warn=True)
        else:
            X, y = validate_data(
                self, X, y, accept_sparse=["csr", "csc"], ensure_all_finite=False
            )
            check_finite(self.estimator, X)
        if y.dtype.kind in "US":
            raise ValueError(
                "y has dtype string: use dtype object for string labels, with -1 for unlabeled"
            )
        # a single labeled class is self-trained, as scikit-learn does (every pseudo-label is
        # that class); stopping scores on held-out labels and calibration fits a probability
        # per class against the others: both need two classes.
        state = initial_state(y, min_classes=1)
        two_classes = [f"{name}={getattr(self, name)!r}" for name in ("stopping", "calibration")
                       if getattr(self, name) is not None]
        if two_classes and len(state.classes) < 2:
            raise ValueError(
                f"{two_classes[0]} needs labels of at least two classes; y has labels of only "
                f"one class ({_plain_value(state.classes[0])!r})"
            )
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

    def _step(self, X, base, policy: SelectionPolicy, teacher, params=None):
        """The in-memory round, printing scikit-learn's verbose line."""
        step = in_memory_step(X, base, policy, teacher, params)
        if not self.verbose:
            return step

        def verbose_step(state: RoundState, select: bool):
            model, nxt, extra = step(state, select)
            n_added = round_record(nxt)["n_added"] if select else 0
            if n_added:  # scikit-learn is silent on empty rounds
                print(f"End of iteration {nxt.round}, added {n_added} new labels.")
            return model, nxt, extra

        return verbose_step

    def _set_transduction(self, y, chosen: RoundState, held, keep):
        """``keep``: positions of ``chosen``'s rows in ``y`` (``None``: all rows). Rows left
        out (held out, or outside the bounded pool) keep their given label."""
        if keep is None:
            self.transduction_, self.labeled_iter_ = _decode(chosen), chosen.labeled_iter.copy()
            return
        self.transduction_ = np.array(y, copy=True)
        self.transduction_[keep] = _decode(chosen)
        self.labeled_iter_ = np.full(len(y), -1, dtype=np.int64)
        if held is not None:
            self.labeled_iter_[held] = 0
        self.labeled_iter_[keep] = chosen.labeled_iter


def _work_rows(n_rows: int, held, sampled) -> np.ndarray | None:
    """Positions, among all ``n_rows``, of the rows self-training works on: without the
    held-out slice and, above the pool bound, within the sampled pool (``None``: all)."""
    if held is None and sampled is None:
        return None
    keep = np.arange(n_rows) if held is None else np.setdiff1d(np.arange(n_rows), held)
    return keep if sampled is None else keep[sampled]


def _is_text(y) -> bool:
    """Labels given as text (or a pandas string column) stay objects, never numpy strings."""
    dtype = getattr(y, "dtype", None)
    return dtype is not None and (dtype.kind in "OUS" or str(dtype) in ("string", "str"))


def _decode(state: RoundState) -> np.ndarray:
    labels = state.labels
    return labels.astype(state.classes.dtype) if state.classes.dtype.kind != "O" else labels
