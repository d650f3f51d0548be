"""Self-training in the pipeline: the library's round driver, each step a checkpoint.

``run_rounds`` calls ``selftrain.driver.self_train``, the loop of
``SelfTrainingClassifier.fit``, with a step that is a Prefect task: the guard (the base
chosen by evidence, and the cross-validated verdict) and every round are persisted results
whose cache key is the run key (data fingerprint + round-relevant configuration) plus the
step, so a rerun after a crash skips finished work, and a run on other data or settings
never reuses it. Results are JSON and states ``.npz``: nothing here is pickled, and no model
is kept in memory between tasks: the chosen round's model is refitted from its checkpoint.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import CacheKeyFnPolicy

import selftrain
from selftrain.config import PipelineConfig
from selftrain.driver import adopted_selection, cv_guard, guard_score, self_train
from selftrain.estimators import resolve_base
from selftrain.metrics import evaluate_model, pseudo_label_accuracy
from selftrain.pool import bounded_pool
from selftrain.recommended import build_classifier
from selftrain.rounds import RoundState, fit_state, initial_state, round_record, run_round
from selftrain.teacher import GraphTeacher
from tasks.mask import PreparedData

# Called with each round's record in the flow's process: the CLI's live display.
ROUND_LISTENERS: list[Callable[[dict], None]] = []


def _step_key(context, parameters) -> str:
    # The workspace path is part of the key: a checkpoint is only valid next to its files.
    data = parameters["data"]
    where = hashlib.sha256(data.root.encode()).hexdigest()[:8]
    step = context.task.name
    if "round_" in parameters:
        step += f"-{parameters['round_']}-{'select' if parameters['select'] else 'final'}"
    return f"selftrain-{selftrain.__version__}-{data.key}-{where}-{step}"


CHECKPOINT = {"cache_policy": CacheKeyFnPolicy(cache_key_fn=_step_key), "persist_result": True,
              "result_serializer": "json"}


@task(name="guard", **CHECKPOINT)
def guard_rounds(data: PreparedData, config: PipelineConfig) -> dict:
    """The base estimator chosen by evidence (``base_estimator="auto"``) and, with
    ``stopping="cv"``, the guard's verdict: may self-training run at all?"""
    X, state, rows = _work(data, config.seed)
    clf = build_classifier(config.self_training, config.seed)
    base, fallback, choice = resolve_base(clf.round_estimator(), X, state)
    trainer = choice["self_trainer"] if choice else config.self_training.base_estimator
    policy = clf.selection_policy(int((~state.labeled).sum()), n_rows=len(state.y))
    teacher = _teacher(data, policy, X)
    check = None
    if config.self_training.stopping == "cv":
        check = cv_guard(state, X, base, policy, cv=clf.cv, max_iter=clf.max_iter,
                         random_state=config.seed, n_jobs=clf.n_jobs, teacher=teacher,
                         fallback=fallback)
    kept = choice["chosen"] if choice and check is not None and check["fallback"] else trainer
    if rows is not None:
        get_run_logger().info("the unlabeled pool is bounded: self-training works on %d of "
                              "%d training rows (selftrain.pool)", len(rows), data.n_train)
    get_run_logger().info("%s", guard_message(kept, choice, check))
    return {"base_estimator": kept, "estimator_choice": choice, "cv_check": check}


def guard_message(kept: str, choice: dict | None, check: dict | None) -> str:
    """The guard's verdict in one line of the run's log."""
    scores = ""
    if choice:
        scores = " (cross-validated: " + ", ".join(
            f"{name} {score:.3f}" for name, score in choice["cv_accuracy"].items()
            if score is not None) + ")"
    if check is None:
        return f"base estimator {kept}{scores}; no guard (stopping is not 'cv')"
    if not check["checked"]:
        return (f"guard: a class has a single label, no evidence either way; keeping the "
                f"labeled-only {kept}{scores}")
    verdict = "labeled-only model kept"
    if not check["fallback"]:
        verdict = ("self-training adopted with scikit-learn's plain rule"
                   if check.get("selection") == "plain" else "self-training adopted")
    return (f"guard: {verdict}: on held-out labeled rows it helped {check['helped_rows']} and "
            f"harmed {check['harmed_rows']} (z {check['z_help']:.2f}); base estimator "
            f"{kept}{scores}")


@task(name="self-train-round", task_run_name="round-{round_}", **CHECKPOINT)
def train_round(data: PreparedData, config: PipelineConfig, round_: int, select: bool,
                base_estimator: str, check: dict | None = None) -> dict:
    """Fit on round ``round_``'s labels and score; with ``select``, pseudo-label the next
    state with the rule the guard's ``check`` adopted. Returns the round's record: rows
    added, validation and test scores, and (in simulation mode) the accuracy of the
    pseudo-labels so far."""
    ws = data.workspace
    X, first, rows = _work(data, config.seed)
    state = _load_state(data, round_, first)
    clf = build_classifier(config.self_training, config.seed)
    base = _base(config, base_estimator)
    if select:
        policy = clf.selection_policy(int((~first.labeled).sum()), n_rows=len(state.y))
        policy, _ = adopted_selection(check, policy, clf.max_iter)
        result = run_round(state, X, base, policy, _teacher(data, policy, X))
        result.state.save(ws.state_path(round_ + 1))
        model, termination = result.model, result.state.termination
    else:
        model, termination = fit_state(state, X, base), state.termination
    record = _score_round(state, model, data, rows)
    record["next_termination"] = termination
    record["pool_left"] = int((~state.labeled).sum())
    get_run_logger().info("%s", round_message(record))
    for listener in ROUND_LISTENERS:
        listener(record)
    return record


def round_message(record: dict) -> str:
    """One round in one line of the run's log: what it added and how it scores."""
    added = ", ".join(f"{c}: {n}" for c, n in record["added_per_class"].items() if n)
    val = record["val_accuracy"]
    return (f"round {record['round']}: {record['n_added']} pseudo-labels added"
            f"{f' ({added})' if added else ''}, {record['n_labeled']} labeled in all, "
            f"{record['pool_left']} left in the pool; validation accuracy "
            f"{'n/a' if val is None else f'{val:.3f}'}, test {record['test_accuracy']:.3f}")


def run_rounds(data: PreparedData, config: PipelineConfig, verdict: dict) -> tuple[list, int]:
    """The driver's loop over checkpointed rounds: (records, chosen round). With the
    guard's fallback it stops at round 0; with ``stopping="holdout"`` the pipeline's
    validation split scores every round, with ``patience``."""
    settings, check = config.self_training, verdict["cv_check"]

    holdout = check is None and settings.stopping == "holdout" and data.n_val > 0

    previous: list[dict] = []  # the round before: the run graph shows rounds as a chain

    def step(state: RoundState, select: bool):
        record = train_round(data, config, state.round, select, verdict["base_estimator"],
                             check, wait_for=previous[-1:])
        previous.append(record)
        if holdout:
            record["val_score"] = record["val_accuracy"]
        return None, (_load_state(data, state.round + 1, first) if select else state), record

    score = None if check is None else guard_score(check)
    _, max_iter = adopted_selection(check, None, settings.max_rounds)
    limit = 0 if check is not None and check["fallback"] else max_iter
    first = _work(data, config.seed)[1]
    rounds, _ = self_train(first, step, limit=limit, max_iter=max_iter,
                           score=score, patience=settings.patience if holdout else None)
    return rounds.records, rounds.best_index


def round_model(data: PreparedData, config: PipelineConfig, round_: int, base_estimator: str):
    """The model of a finished round, refitted exactly from its checkpoint."""
    X, first, _ = _work(data, config.seed)
    return fit_state(_load_state(data, round_, first), X, _base(config, base_estimator))


def _base(config: PipelineConfig, name: str):
    clf = build_classifier(config.self_training.model_copy(update={"base_estimator": name}),
                           config.seed)
    return clf.round_estimator()


def _teacher(data: PreparedData, policy, X) -> GraphTeacher | None:
    """The run's kNN graph, built once and kept in the workspace (``.npz``, no pickle)."""
    if policy.teacher is None:
        return None
    path = data.workspace.root / "teacher-graph.npz"
    if path.exists():
        return GraphTeacher.load(path)
    teacher = GraphTeacher(X)
    teacher.save(path)
    return teacher


def _work(data: PreparedData, seed: int):
    """``(X, round 0's state, rows)``: the rows self-training works on, drawn as ``fit``
    draws them (``selftrain.pool``): every training row (``rows`` is ``None``) or, above
    the pool bound, the labeled rows and a sample of the pool seeded by the run's seed."""
    ws = data.workspace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the guard's log says it once
        state, X, rows = bounded_pool(initial_state(np.asarray(ws.load("y_train"))),
                                      ws.load("X_train"), seed)
    return X, state, rows


def _load_state(data: PreparedData, round_: int, first: RoundState) -> RoundState:
    """Round ``round_``'s state: ``first`` (round 0, from ``_work``) or its checkpoint."""
    if round_ == 0:
        return first
    path = data.workspace.state_path(round_)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {path} is missing: delete {data.root} and the Prefect results to rerun"
        )
    return RoundState.load(path)


def _score_round(state: RoundState, model, data: PreparedData, rows=None) -> dict:
    ws = data.workspace
    record = round_record(state)
    test = evaluate_model(model, ws.load("X_test"), ws.load("y_test"), data.schema.classes)
    record["test_accuracy"], record["test_macro_f1"] = test["accuracy"], test["macro_f1"]
    record["test_report"] = test
    y_val = ws.load("y_val")
    record["val_accuracy"] = (
        float(np.mean(model.predict(ws.load("X_val")) == y_val)) if len(y_val) else None
    )
    pseudo = state.labeled_iter > 0
    truth = np.asarray(ws.load("y_train_true"))
    truth = truth if rows is None else truth[rows]  # the state's rows (a bounded pool)
    known = pseudo & (truth != -1)
    record["pseudo_label_accuracy"] = (
        pseudo_label_accuracy(state.labels[known], truth[known]) if data.mode == "simulate"
        else None
    )
    return record


__all__ = ["guard_rounds", "round_model", "run_rounds", "train_round"]
