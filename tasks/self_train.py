"""One self-training round per Prefect task run, each a persisted checkpoint.

The cache key is the run key (data fingerprint + round-relevant configuration) plus
the round number, so a rerun after a crash skips finished rounds, and a run on other
data or settings never reuses them. The round itself is ``selftrain.run_round``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from prefect import task
from prefect.cache_policies import CacheKeyFnPolicy

import selftrain
from selftrain.config import PipelineConfig
from selftrain.metrics import evaluate_model, pseudo_label_accuracy
from selftrain.recommended import build_classifier
from selftrain.rounds import RoundState, fit_state, initial_state, round_record, run_round
from tasks.mask import PreparedData

# Called with each round's record in the flow's process: the CLI's live display.
ROUND_LISTENERS: list[Callable[[dict], None]] = []


def _round_key(context, parameters) -> str:
    # The workspace path is part of the key: a checkpoint is only valid next to its files.
    data = parameters["data"]
    where = hashlib.sha256(data.root.encode()).hexdigest()[:8]
    return f"selftrain-{selftrain.__version__}-{data.key}-{where}-round-{parameters['round_']}"


@task(
    name="self-train-round",
    task_run_name="round-{round_}",
    cache_policy=CacheKeyFnPolicy(cache_key_fn=_round_key),
    persist_result=True,
)
def train_round(data: PreparedData, config: PipelineConfig, round_: int) -> dict:
    """Fit on round ``round_``'s labels, score, and pseudo-label the next state.

    Returns the round's record: rows added, validation and test scores, and (in
    simulation mode) the accuracy of the pseudo-labels so far.
    """
    ws = data.workspace
    X = ws.load("X_train")
    state = _load_state(data, round_)
    clf = build_classifier(config.self_training, config.seed)
    policy = clf.selection_policy(int((ws.load("y_train") == -1).sum()))
    result = run_round(state, X, clf.round_estimator(), policy)
    result.state.save(ws.state_path(round_ + 1))
    record = _score_round(state, result.model, data)
    record["next_termination"] = result.state.termination
    record["pool_left"] = int((~state.labeled).sum())
    MODELS.put(data.key, round_, result.model, record["val_accuracy"])
    for listener in ROUND_LISTENERS:
        listener(record)
    return record


def round_model(data: PreparedData, config: PipelineConfig, round_: int):
    """The model of a finished round: from memory, or refitted exactly from its checkpoint."""
    model = MODELS.get(data.key, round_)
    if model is None:
        clf = build_classifier(config.self_training, config.seed)
        model = fit_state(_load_state(data, round_), data.workspace.load("X_train"),
                          clf.round_estimator())
    return model


def _load_state(data: PreparedData, round_: int) -> RoundState:
    if round_ == 0:
        return initial_state(np.asarray(data.workspace.load("y_train")))
    path = data.workspace.state_path(round_)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {path} is missing: delete {data.root} and the Prefect results to rerun"
        )
    return RoundState.load(path)


def _score_round(state: RoundState, model, data: PreparedData) -> dict:
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
    known = pseudo & (truth != -1)
    record["pseudo_label_accuracy"] = (
        pseudo_label_accuracy(state.labels[known], truth[known]) if data.mode == "simulate"
        else None
    )
    return record


class _BestModels:
    """Keeps, per run, only the model with the best validation score so far (memory)."""

    def __init__(self):
        self._best: dict[str, tuple[int, float, object]] = {}
        self._last: dict[str, tuple[int, object]] = {}

    def put(self, key: str, round_: int, model, score: float | None) -> None:
        self._last[key] = (round_, model)
        best = self._best.get(key)
        value = -np.inf if score is None else score
        if score is not None and (best is None or value > best[1] or best[0] == round_):
            self._best[key] = (round_, value, model)

    def drop(self, key: str) -> None:
        """Forget a run's models (a long-lived Dask worker trains many runs)."""
        self._best.pop(key, None)
        self._last.pop(key, None)

    def get(self, key: str, round_: int):
        for entry in (self._best.get(key), self._last.get(key)):
            if entry is not None and entry[0] == round_:
                return entry[-1]
        return None


MODELS = _BestModels()
