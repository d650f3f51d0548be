"""Compiled inference: the whole fitted model, preprocessing included, as one ONNX graph run
by onnxruntime, trusted only after it agreed with scikit-learn on held-out rows.

Why: a 100-tree forest spends milliseconds per row in Python overhead inside scikit-learn;
the same trees in onnxruntime answer in microseconds.

How the raw record reaches the graph. ``skl2onnx`` converts scikit-learn's imputers,
one-hot encoder (infrequent categories included), scalers and estimators, but not our
``FunctionTransformer`` steps (``as_numbers``, ``as_categories``, ``date_parts`` in
``selftrain.columns``) nor ``SimpleImputer(add_indicator=True)``. So the record is
prepared *before* the session by the very functions the scikit-learn model runs, which is
what keeps both readings of a record identical:

- each ``ColumnTransformer`` branch's leading ``FunctionTransformer`` runs in pandas/numpy
  (numbers coerced, categories spelled, dates split into parts);
- the missing-value indicator columns are computed with ``numpy.isnan`` on the columns the
  fitted indicator watches;
- the rest of each branch (imputer, encoder) and the estimator are the graph, fed one input
  per branch (float32 numbers, strings for categories).

A model without a preprocessor (a numeric array model) is converted whole.

``compile_model`` converts and ``verify`` compares against scikit-learn (identical labels,
probabilities within ``TOLERANCE``); ``save_compiled`` / ``load_predictor`` store it beside
the scikit-learn model and load whichever verified, after checking the integrity record.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from selftrain.columns import split_preprocessor
from selftrain.integrity import verify_artifacts

logger = logging.getLogger("selftrain.compiled")

ONNX_FILE = "model.onnx"
COMPILED_FILE = "compiled.json"  # what was compiled, how it verified, or why it was not
TOLERANCE = 1e-5
INDICATOR = "missing_indicator"


class NotCompilable(ValueError):
    """The model cannot be converted; the message says which part and why."""


@dataclass(frozen=True)
class Feed:
    """One graph input: the columns it reads from the raw frame, how they are prepared
    before the session, and whether the graph reads them as text."""

    name: str
    columns: list[str]
    prepare: Any  # callable(frame of those columns) -> 2-D array, or None for plain numbers
    width: int  # columns of the prepared input
    text: bool = False
    watch: list[int] | None = None  # indicator feed: which prepared columns it flags

    def array(self, frame: pd.DataFrame) -> np.ndarray:
        part = frame[self.columns]
        values = self.prepare(part) if self.prepare is not None else part
        values = np.asarray(values)
        if self.watch is not None:
            values = np.isnan(np.asarray(values, dtype=np.float64)[:, self.watch])
        if self.text:
            return values.astype(str).astype(object)
        return values.astype(np.float32)


@dataclass
class Compiled:
    """A converted model: the ONNX bytes and the feeds that prepare its inputs."""

    onnx: bytes
    feeds: list[Feed] | None  # None: the model reads a plain numeric array
    classes: np.ndarray
    feature_names: list[str] | None = None


def compile_model(model, feature_names: list[str] | None = None) -> Compiled:
    """Convert a fitted model (``with_preprocessor``'s shape, a plain estimator or a
    ``SelfTrainingClassifier``) to ONNX; ``NotCompilable`` says why when it cannot."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    model = getattr(model, "estimator_", None) if _is_self_trainer(model) else model
    preprocessor, estimator = split_preprocessor(model)
    classes = np.asarray(model.classes_)
    if preprocessor is None:
        width = getattr(model, "n_features_in_", None)
        if width is None:
            raise NotCompilable(f"{type(model).__name__} does not record its input width")
        graph_model, feeds = model, None
        inputs = [("X", FloatTensorType([None, int(width)]))]
    else:
        twin, feeds = _twin(preprocessor)
        graph_model = Pipeline([("preprocess", twin), ("model", estimator)])
        inputs = []
        for feed in feeds:
            kind = StringTensorType if feed.text else FloatTensorType
            inputs.append((feed.name, kind([None, feed.width])))
    classifier = _final_classifier(graph_model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = to_onnx(graph_model, initial_types=inputs,
                          options={id(classifier): {"zipmap": False}},
                          target_opset={"": 17, "ai.onnx.ml": 3})
    except Exception as exc:  # skl2onnx raises many kinds; each means "cannot convert"
        raise NotCompilable(f"skl2onnx cannot convert {_describe(graph_model)}: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    return Compiled(onnx=onx.SerializeToString(), feeds=feeds, classes=classes,
                    feature_names=feature_names)


class Predictor:
    """``predict_proba`` / ``predict`` of raw records (a frame, or rows in the schema's
    order) through onnxruntime (``kind="onnx"``) or scikit-learn (``kind="sklearn"``);
    ``why`` says why the compiled form is or is not used."""

    def __init__(self, kind: str, why: str, classes, feature_names: list[str] | None,
                 sklearn_model=None, compiled: Compiled | None = None, threads: int = 1):
        self.kind, self.why = kind, why
        self.classes_ = np.asarray(classes)
        self.feature_names = feature_names
        self.sklearn_model = sklearn_model
        self._compiled = compiled
        self._raw = sklearn_model is not None and split_preprocessor(
            getattr(sklearn_model, "estimator_", sklearn_model)
            if _is_self_trainer(sklearn_model) else sklearn_model)[0] is not None
        if compiled is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(compiled.onnx, options,
                                                 providers=["CPUExecutionProvider"])
            self._output = self._session.get_outputs()[1].name
            self._raw = compiled.feeds is not None

    def predict_proba(self, rows) -> np.ndarray:
        rows = self._frame(rows)
        if self.kind == "sklearn":
            return self.sklearn_model.predict_proba(rows)
        compiled = self._compiled
        if compiled.feeds is None:
            inputs = {"X": np.asarray(rows, dtype=np.float32)}
        else:
            inputs = {feed.name: feed.array(rows) for feed in compiled.feeds}
        proba = self._session.run([self._output], inputs)[0]
        return np.asarray(proba, dtype=np.float64)

    def predict(self, rows) -> np.ndarray:
        return self.labels(self.predict_proba(rows))

    def labels(self, proba: np.ndarray) -> np.ndarray:
        """The label of each row of ``proba``: the most probable class, as scikit-learn's
        ``predict`` for every registry estimator."""
        return self.classes_[np.argmax(proba, axis=1)]

    def _frame(self, rows):
        if self._raw and not isinstance(rows, pd.DataFrame):
            return pd.DataFrame(np.asarray(rows, dtype=object), columns=self.feature_names)
        return rows


@dataclass
class Verdict:
    """The outcome of comparing the compiled model with scikit-learn on held-out rows."""

    ok: bool
    why: str
    rows: int = 0
    max_abs_diff: float | None = None
    label_mismatches: int | None = None
    details: dict = field(default_factory=dict)


def verify(model, compiled: Compiled, frames: list, tolerance: float = TOLERANCE) -> Verdict:
    """Identical labels and probabilities within ``tolerance`` on every row of ``frames``
    (the validation and test rows); any error while running counts as a failure."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return Verdict(False, "no held-out rows to verify the compiled model on")
    rows = pd.concat(frames, ignore_index=True) if isinstance(frames[0], pd.DataFrame) \
        else np.concatenate([np.asarray(f) for f in frames])
    try:
        predictor = Predictor("onnx", "", compiled.classes, compiled.feature_names,
                              compiled=compiled)
        got = predictor.predict_proba(rows)
        labels = predictor.labels(got)
    except Exception as exc:  # onnxruntime's errors have no common base
        return Verdict(False, f"onnxruntime failed on the held-out rows: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                       rows=len(rows))
    want = model.predict_proba(rows)
    want_labels = model.predict(rows)
    if got.shape != want.shape:
        return Verdict(False, f"compiled probabilities have shape {got.shape}, scikit-learn's "
                              f"{want.shape}", rows=len(rows))
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    mismatches = int(np.sum(labels != want_labels))
    ok = diff <= tolerance and mismatches == 0
    if ok:
        why = (f"verified on {len(rows)} held-out rows: identical labels, probabilities "
               f"within {diff:.2g} (tolerance {tolerance:g})")
    else:
        why = (f"disagrees with scikit-learn on {len(rows)} held-out rows: {mismatches} "
               f"different labels, largest probability difference {diff:.3g} (tolerance "
               f"{tolerance:g})")
    return Verdict(ok, why, rows=len(rows), max_abs_diff=diff, label_mismatches=mismatches)


def compile_and_verify(model, frames: list, feature_names: list[str] | None = None
                       ) -> tuple[Compiled | None, Verdict]:
    """(the compiled model if it verified else None, the verdict with the reason)."""
    try:
        compiled = compile_model(model, feature_names)
    except NotCompilable as exc:
        return None, Verdict(False, str(exc))
    verdict = verify(model, compiled, frames)
    return (compiled if verdict.ok else None), verdict


def save_compiled(directory: str | Path, compiled: Compiled | None, verdict: Verdict) -> list[str]:
    """Write ``model.onnx`` (when it verified) and ``compiled.json`` (feeds, verdict) into
    ``directory``; returns the file names to add to the integrity record."""
    directory = Path(directory)
    record: dict[str, Any] = {"kind": "onnx" if compiled is not None else "sklearn",
                              "verified": verdict.ok, "why": verdict.why,
                              "rows": verdict.rows, "max_abs_diff": verdict.max_abs_diff,
                              "label_mismatches": verdict.label_mismatches,
                              "tolerance": TOLERANCE}
    names = [COMPILED_FILE]
    if compiled is not None:
        (directory / ONNX_FILE).write_bytes(compiled.onnx)
        names.append(ONNX_FILE)
    (directory / COMPILED_FILE).write_text(json.dumps(record, indent=2))
    return names


def load_predictor(model_dir: str | Path, record: dict | None, what: str | None = None,
                   threads: int = 1) -> Predictor:
    """The verified model of a directory written by ``save_model`` (+ ``save_compiled``):
    onnxruntime when the compiled form verified at packaging, else scikit-learn, with
    ``why``. Every file is checked against the signed integrity record first.

    The feeds of the graph are rebuilt from the scikit-learn model's fitted preprocessor
    (the same functions, no second copy to drift), so the scikit-learn model is loaded in
    both cases, after verification."""
    from selftrain.schema import load_model

    model_dir = Path(model_dir)
    what = what or str(model_dir)
    verify_artifacts(model_dir, record, what)
    model, schema = load_model(model_dir)
    names = list(schema.feature_names) if schema.roles else None
    info_path = model_dir / COMPILED_FILE
    hashed = set((record or {}).get("sha256", {}))
    if not info_path.is_file() or COMPILED_FILE not in hashed:
        return Predictor("sklearn", "packaged without a compiled form", schema.classes,
                         names, sklearn_model=model)
    info = json.loads(info_path.read_text())
    if info.get("kind") != "onnx" or ONNX_FILE not in hashed:
        return Predictor("sklearn", f"not compiled: {info.get('why')}", schema.classes, names,
                         sklearn_model=model)
    try:
        compiled = compile_plan(model, (model_dir / ONNX_FILE).read_bytes(), names)
        predictor = Predictor("onnx", info.get("why", "verified at packaging"),
                              compiled.classes, names, sklearn_model=model,
                              compiled=compiled, threads=threads)
    except Exception as exc:  # a runtime that cannot load the graph: serve scikit-learn
        why = f"compiled form failed to load ({type(exc).__name__}: {exc}); serving scikit-learn"
        logger.warning("%s: %s", what, why)
        return Predictor("sklearn", why, schema.classes, names, sklearn_model=model)
    return predictor


def compile_plan(model, onnx: bytes, feature_names: list[str] | None) -> Compiled:
    """A stored graph with the feeds its model prepares (no conversion)."""
    model = getattr(model, "estimator_", None) if _is_self_trainer(model) else model
    preprocessor, _ = split_preprocessor(model)
    feeds = None if preprocessor is None else _twin(preprocessor)[1]
    return Compiled(onnx=onnx, feeds=feeds, classes=np.asarray(model.classes_),
                    feature_names=feature_names)


def _twin(preprocessor: ColumnTransformer) -> tuple[ColumnTransformer, list[Feed]]:
    """A fitted ``ColumnTransformer`` over the prepared inputs, without the steps that run
    before the session, and the feeds that prepare those inputs (in the graph's order)."""
    if not isinstance(preprocessor, ColumnTransformer):
        raise NotCompilable(f"the preprocessor is a {type(preprocessor).__name__}, not a "
                            "ColumnTransformer")
    feeds: list[Feed] = []
    parts = []
    start = 0
    for name, branch, columns in preprocessor.transformers_:
        if isinstance(branch, str):
            if branch == "drop":
                continue
            raise NotCompilable(f"branch {name!r} is {branch!r}: not supported")
        columns = list(columns)
        if not columns:
            continue
        steps = list(branch.steps) if isinstance(branch, Pipeline) else [(name, branch)]
        prepare = None
        if steps and isinstance(steps[0][1], FunctionTransformer):
            prepare = steps.pop(0)[1].transform
        if any(isinstance(s, FunctionTransformer) for _, s in steps):
            raise NotCompilable(f"branch {name!r} has a FunctionTransformer after its first step")
        if not steps:
            raise NotCompilable(f"branch {name!r} has nothing but a FunctionTransformer")
        width = int(steps[0][1].n_features_in_)
        feed = Feed(name, columns, prepare, width, text=isinstance(steps[0][1], OneHotEncoder))
        tail = list(steps)
        indicator = None
        last = tail[-1][1]
        if isinstance(last, SimpleImputer) and last.add_indicator:
            if len(tail) != 1:
                raise NotCompilable(f"branch {name!r}: a missing indicator before other steps")
            tail[-1] = (tail[-1][0], _without_indicator(last))
            watched = [int(i) for i in last.indicator_.features_]
            if watched:
                indicator = Feed(f"{name}_{INDICATOR}", columns, prepare, len(watched),
                                 watch=watched)
        feeds.append(feed)
        est = tail[0][1] if len(tail) == 1 else Pipeline(tail)
        parts.append((name, est, list(range(start, start + width))))
        start += width
        if indicator is not None:
            feeds.append(indicator)
            parts.append((indicator.name, "passthrough",
                          list(range(start, start + len(indicator.watch)))))
            start += len(indicator.watch)
    twin = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    twin.transformers_ = parts
    twin.sparse_output_ = False
    return twin, feeds


def _without_indicator(imputer: SimpleImputer) -> SimpleImputer:
    """A fitted copy of ``imputer`` that imputes only (its indicator becomes a feed)."""
    twin = clone(imputer).set_params(add_indicator=False)
    for attr, value in vars(imputer).items():
        if attr.endswith("_") and attr != "indicator_":
            setattr(twin, attr, value)
    return twin


def _final_classifier(model):
    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _describe(model) -> str:
    if isinstance(model, Pipeline):
        return " -> ".join(_describe(s) for _, s in model.steps)
    if isinstance(model, ColumnTransformer):
        return "ColumnTransformer"
    return type(model).__name__


def _is_self_trainer(model) -> bool:
    return type(model).__name__ == "SelfTrainingClassifier" and hasattr(model, "estimator_")


def compiled_summary(directory: str | Path) -> dict:
    """``compiled.json`` of a packaged model: the served form and why (no model loaded)."""
    path = Path(directory) / COMPILED_FILE
    if not path.is_file():
        return {"kind": "sklearn", "why": "packaged without a compiled form"}
    info = json.loads(path.read_text())
    return {k: v for k, v in info.items() if v is not None}
