"""The round driver: the one self-training loop of the estimator and the pipeline.

``self_train`` runs rounds until the pool is exhausted, no row is added, the round limit
or the patience runs out, and ends with a fit on the last state. ``cv_guard`` decides,
before training, whether self-training may run at all. ``SelfTrainingClassifier.fit``
calls both with in-memory rounds; the Prefect pipeline calls both with a ``step`` that is
a checkpointed task, so the served model is the model the benchmarks measure.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import safe_mask

from selftrain.metrics import mcnemar_z
from selftrain.rounds import (
    RoundResult,
    RoundState,
    best_round,
    fit_state,
    initial_state,
    round_record,
    rounds_stale,
    row_params,
    run_round,
)
from selftrain.selection import SelectionPolicy
from selftrain.teacher import GraphTeacher

# The burden of proof is on self-training: it is adopted only when, pooled over the
# guard's folds, the rows it fixed outnumber the rows it broke beyond noise (continuity-
# corrected McNemar z of "helped" over "harmed" above HELP_Z). Chosen on some tables and
# confirmed on others by benchmarks/guard_rules.py (see the README).
HELP_Z = 0.5
# The guard's second candidate: scikit-learn's own rule (confident pseudo-labels above 0.75,
# no teacher, no class balance, 10 rounds). On tables whose structure the kNN teacher misses
# it is the one that helps; the guard adopts whichever candidate the held-out rows support
# best, and only beyond noise. Weighed only when the configured rule differs from it.
PLAIN = SelectionPolicy(criterion="threshold", threshold=0.75, k_best=10, balanced=False,
                        teacher=None, teacher_weight=0.5)
PLAIN_MAX_ITER = 10
# The guard's folds self-train the configured rule on a forest base with this many trees,
# not the base's own number: a forest's fit costs in proportion to its trees (a 100-tree
# fit of 30 rows takes 0.08 s, mostly per-tree overhead), and the folds are 3 of the fit's
# 4 self-training runs. The configured rule ranks rows (k_best), which a lighter forest
# ranks much alike; both sides of its comparison (round 0 and the last round) are the
# lighter forest. scikit-learn's plain rule thresholds the forest's vote shares at 0.75,
# which depend on the number of trees: it is weighed with the base's own forest (with 25
# trees for both rules it was adopted where it harmed: diamonds at 5 %, -0.06). Measured
# by benchmarks/fit_speed.py against the previous guard on the same fits (README); the
# model that is kept keeps the base's trees.
GUARD_TREES = 25
_FORESTS = (RandomForestClassifier, ExtraTreesClassifier)

# A step fits a model on ``state``; with ``select`` it also pseudo-labels the next rows.
# It returns the model (or None when the caller keeps models elsewhere), the next state,
# and extra fields for the round's record.
Step = Callable[[RoundState, bool], tuple[object | None, RoundState, dict]]


@dataclass
class Rounds:
    """Records and states of every round, and the chosen round's model (memory)."""

    records: list[dict]
    states: list[RoundState]
    best_index: int = -1
    best_model: object = None
    keep_last: bool = False  # no early stopping: the last round is the model

    def add(self, state: RoundState, model, record: dict) -> None:
        """Keep ``model`` when its round becomes the best one (``best_round``'s choice: the
        best is always the previous best or this round, so no other model is kept)."""
        self.states.append(state)
        self.records.append(record)
        latest = len(self.records) - 1
        if self.keep_last or best_round([r.get("val_score") for r in self.records]) == latest:
            self.best_index, self.best_model = latest, model

    def stale(self, patience: int) -> bool:
        return rounds_stale([r.get("val_score") for r in self.records], patience)


def in_memory_step(X, base, policy: SelectionPolicy, teacher: GraphTeacher | None,
                   params: dict | None = None) -> Step:
    """The estimator's step: ``run_round`` (or a plain fit on the last state); ``params``:
    fit metadata of ``X``'s rows (a ``sample_weight``), sliced to every fit's rows."""
    def step(state: RoundState, select: bool):
        if not select:
            return fit_state(state, X, base, params=params), state, {}
        result: RoundResult = run_round(state, X, base, policy, teacher, params)
        return result.model, result.state, {}
    return step


def self_train(state: RoundState, step: Step, *, limit: int | None, max_iter: int | None,
               score: Callable | None = None, patience: int | None = None,
               on_round: Callable | None = None) -> tuple[Rounds, RoundState]:
    """The loop: each round's model scored by ``score(state, model)`` (``val_score``).

    Ends with the pool, ``limit`` rounds or ``patience`` stale rounds (then the best
    scored round is kept); otherwise ends with a fit on the last state, which is kept.
    ``on_round(state, model, record)`` sees every round. Termination names follow
    scikit-learn's: ``all_labeled``, ``no_change``, ``max_iter``, ``early_stopping``."""
    rounds = Rounds([], [], keep_last=patience is None)

    def log(fitted_on: RoundState, model, extra: dict) -> None:
        record = round_record(fitted_on) | extra
        if score is not None or "val_score" not in record:  # a step may score its own round
            record["val_score"] = None if score is None else score(fitted_on, model)
        if on_round is not None:
            on_round(fitted_on, model, record)
        rounds.add(fitted_on, model, record)

    while state.termination is None and (limit is None or state.round < limit):
        model, nxt, extra = step(state, True)
        log(state, model, extra)
        state = nxt
        if patience is not None and rounds.stale(patience):
            return rounds, replace(state, termination="early_stopping")
    if state.termination in (None, "no_change") and limit is not None and state.round == limit:
        state = replace(state, termination="max_iter" if limit == max_iter else "early_stopping")
    model, _, extra = step(state, False)
    log(state, model, extra)
    return rounds, state


def cv_guard(state: RoundState, X, base, policy: SelectionPolicy, *, cv: int,
             max_iter: int | None, random_state=None, n_jobs=None,
             teacher: GraphTeacher | None = None, fallback=None, params=None) -> dict:
    """Does self-training beat the labeled-only model on labels it never saw?

    Per fold of the labeled rows: self-train without the fold's rows, to the end as the
    main loop will, scoring every round on them; with the configured ``policy`` first and,
    only if that is not adopted and differs from it, with scikit-learn's plain rule
    (``PLAIN``). Pooled over folds, the rows that the labeled-only model (``fallback``, or
    else round 0) gets right and a candidate's last round wrong (``harmed``) against the
    reverse (``helped``) give the verdict: a candidate is adopted (``selection``:
    ``"configured"`` or ``"plain"``) only when its corrected McNemar z of helped over harmed
    is above ``HELP_Z``; otherwise the fit keeps the labeled-only model. The configured
    rule self-trains a forest base with ``GUARD_TREES`` trees (``guard_estimator``), the
    plain rule the base itself; a ``fallback`` that is the base is each candidate's own
    round 0, any other ``fallback`` is fitted once per fold. Folds run in parallel
    (``n_jobs``) on one shared kNN graph. With a class of a single label there is no
    evidence at all: the labeled-only model is kept, with a warning. ``params``: fit
    metadata of ``X``'s rows (a ``sample_weight``), reaching every fit of every fold."""
    labeled = np.flatnonzero(state.labeled)
    counts = np.bincount(state.y[labeled], minlength=len(state.classes))
    if counts.min() < 2:
        rare = np.asarray(state.classes, dtype=object)[int(counts.argmin())]
        warnings.warn(
            f"stopping='cv' needs at least 2 labeled rows in every class; class {rare!r} "
            f"has {counts.min()}: no evidence for self-training, the labeled-only model is "
            "kept", UserWarning, stacklevel=3)
        return {"curve": [], "baseline_accuracy": None, "final_accuracy": None,
                "harmed_rows": 0, "helped_rows": 0, "z": 0.0, "z_help": 0.0,
                "fallback": True, "checked": False, "selection": None, "candidates": {}}
    folds = StratifiedKFold(min(cv, int(counts.min())), shuffle=True, random_state=random_state)
    splits = [labeled[test] for _, test in folds.split(labeled, state.y[labeled])]
    if fallback is not None and _same_estimator(fallback, base):
        fallback = None  # its fit on a fold's labels is round 0's: not fitted twice
    candidates = {"configured": (policy, max_iter, guard_estimator(base))}
    if policy != PLAIN:  # a threshold on a forest's votes: weighed with the base's own trees
        candidates["plain"] = (PLAIN, PLAIN_MAX_ITER, base)
    verdicts, alone = {}, {}
    for name, (rule, limit, estimator) in candidates.items():  # the next only if not adopted
        hits = Parallel(n_jobs=n_jobs)(
            delayed(_fold_hits)(state, X, rows, estimator, (rule, limit), teacher,
                                None if alone else fallback, params)  # fallback fitted once
            for rows in splits)
        # against the fallback (the first candidate's fits), else its own round 0
        alone[name] = alone["configured"] if fallback is not None and alone else \
            np.concatenate([first for _, first in hits])
        verdicts[name] = _verdict([fold for fold, _ in hits], alone[name], labeled.size)
        if verdicts[name]["z_help"] > HELP_Z:
            break
    adopted = name if verdicts[name]["z_help"] > HELP_Z else None
    shown = adopted or "configured"  # the top-level counts: the adopted rule's
    return {**verdicts[shown], "baseline_accuracy": float(alone[shown].mean()),
            "fallback": adopted is None, "checked": True, "selection": adopted,
            "candidates": {name: {k: v[k] for k in ("helped_rows", "harmed_rows", "z_help",
                                                    "final_accuracy")}
                           for name, v in verdicts.items()}}


def guard_estimator(base):
    """The estimator the configured rule self-trains in the guard's folds: a forest base with
    ``GUARD_TREES`` trees (when it has more), any other base as it is."""
    if isinstance(base, _FORESTS) and base.get_params()["n_estimators"] > GUARD_TREES:
        return clone(base).set_params(n_estimators=GUARD_TREES)
    return base


def _same_estimator(a, b) -> bool:
    """Would ``a`` and ``b`` fit the same model (same class, same parameters)?"""
    if type(a) is not type(b):
        return False
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    return pa.keys() == pb.keys() and all(
        pa[k] is pb[k] or (type(pa[k]) is type(pb[k]) and _plain_param(pa[k])
                           and pa[k] == pb[k]) for k in pa)


def _plain_param(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool | tuple)


def adopted_selection(check: dict | None, policy: SelectionPolicy,
                      max_iter: int | None) -> tuple[SelectionPolicy, int | None]:
    """The rule and round limit the fit self-trains with after the guard's ``check``: the
    configured ones, or scikit-learn's plain rule when the guard adopted that one."""
    if check is not None and check.get("selection") == "plain":
        return PLAIN, PLAIN_MAX_ITER
    return policy, max_iter


def _verdict(rounds: list[list[np.ndarray]], first: np.ndarray, n_labeled: int) -> dict:
    """One candidate's evidence pooled over folds: its accuracy curve by round and the rows
    its last round helped and harmed against the labeled-only hits ``first``."""
    longest = max(len(h) for h in rounds)  # a fold that ended early keeps its last score
    curve = np.sum([np.pad([h.sum() for h in fold], (0, longest - len(fold)), mode="edge")
                    for fold in rounds], axis=0)
    last = np.concatenate([fold[-1] for fold in rounds])
    harmed, helped = int((first & ~last).sum()), int((~first & last).sum())
    z_help = mcnemar_z(helped, harmed)
    return {"curve": [float(v) for v in curve / n_labeled], "final_accuracy": float(last.mean()),
            "harmed_rows": harmed, "helped_rows": helped, "z": -z_help, "z_help": z_help}


def guard_score(check: dict) -> Callable:
    """A round's score from the guard's verdict: its cross-validated accuracy at that round
    (the last one measured for longer runs; ``None`` when no fold could be scored)."""
    curve = check["curve"] or [None]
    return lambda state, _model: curve[min(state.round, len(curve) - 1)]


def _fold_hits(state: RoundState, X, rows: np.ndarray, base, candidate: tuple,
               teacher: GraphTeacher | None, fallback=None,
               params=None) -> tuple[list, np.ndarray]:
    """Which of the fold's ``rows`` each round's model got right, self-training on the
    rest with ``candidate`` (policy, max_iter); and which the labeled-only model
    (``fallback`` fitted on the fold's labels, else round 0) got right."""
    keep = np.setdiff1d(np.arange(len(state.y)), rows)
    X_keep, X_rows, truth = X[safe_mask(X, keep)], X[safe_mask(X, rows)], state.labels[rows]
    fold = initial_state(state.labels[keep], classes=state.classes)
    fold_params = row_params(params, X, keep)
    policy, max_iter = candidate
    view = None if teacher is None or not policy.teacher else teacher.view(keep)
    hits: list[np.ndarray] = []

    def score(_, model) -> float:
        hits.append(model.predict(X_rows) == truth)
        return float(hits[-1].mean())

    self_train(fold, in_memory_step(X_keep, base, policy, view, fold_params), limit=max_iter,
               max_iter=max_iter, score=score)
    alone = hits[0]
    if fallback is not None:
        alone = fit_state(fold, X_keep, fallback, params=fold_params).predict(X_rows) == truth
    return hits, alone
