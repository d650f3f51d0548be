"""Compiled inference: the whole fitted model, preprocessing included, as one ONNX graph run
by onnxruntime, trusted only after it agreed with scikit-learn on held-out rows.

Why: a 100-tree forest spends milliseconds per row in Python overhead inside scikit-learn;
the same trees in onnxruntime answer in microseconds.

How the raw record reaches the graph: ``selftrain.onnx_inputs`` prepares it before the
session (number coercion, median fill and missing indicators, category spelling, date
parts: the steps skl2onnx cannot convert) and gives the fitted rest to skl2onnx (one-hot
encoder, scaler, estimator). Numbers enter as float32 for trees (as scikit-learn casts
them) and float64 for other models.

A row whose two most probable classes are within ``TIE_GAP`` is answered by scikit-learn
(``Predictor._settle_near_ties``), so labels stay identical on exact ties.

A model without a preprocessor (a numeric array model) is converted whole.

``compile_model`` converts and ``verify`` compares against scikit-learn (identical labels,
probabilities within ``TOLERANCE``); ``save_compiled`` / ``load_predictor`` store it beside
the scikit-learn model and load whichever verified, after checking the integrity record.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline
from sklearn.tree import BaseDecisionTree

from selftrain.columns import split_preprocessor
from selftrain.integrity import verify_artifacts
from selftrain.onnx_inputs import Feed, NotCompilable, graph_inputs

logger = logging.getLogger("selftrain.compiled")

ONNX_FILE = "model.onnx"
COMPILED_FILE = "compiled.json"  # what was compiled, how it verified, or why it was not
TOLERANCE = 1e-5
PRECISIONS = ("float32", "float64")
TIE_GAP = 1e-4  # top-two probabilities closer than this: scikit-learn settles the row
TREE_MODELS = (BaseDecisionTree, RandomForestClassifier, ExtraTreesClassifier,
               GradientBoostingClassifier, HistGradientBoostingClassifier)


@dataclass
class Compiled:
    """A converted model: the ONNX bytes and the feeds that prepare its inputs."""

    onnx: bytes
    feeds: list[Feed] | None  # None: the model reads a plain numeric array
    classes: np.ndarray
    feature_names: list[str] | None = None
    precision: str = "float32"  # of the graph's numeric inputs


def compile_model(model, feature_names: list[str] | None = None,
                  precision: str = "float32") -> Compiled:
    """Convert a fitted model (``with_preprocessor``'s shape, a plain estimator or a
    ``SelfTrainingClassifier``) to ONNX; ``NotCompilable`` says why when it cannot.

    ``precision`` of the numeric inputs: ``float32`` is what trees compare in (scikit-learn
    casts to float32 too); ``float64`` keeps linear models on wide-ranged features (a year,
    days since 1970) within the tolerance."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        StringTensorType,
    )

    number = DoubleTensorType if precision == "float64" else FloatTensorType

    model = getattr(model, "estimator_", None) if _is_self_trainer(model) else model
    preprocessor, estimator = split_preprocessor(model)
    classes = np.asarray(model.classes_)
    if preprocessor is None:
        width = getattr(model, "n_features_in_", None)
        if width is None:
            raise NotCompilable(f"{type(model).__name__} does not record its input width")
        graph_model, feeds = model, None
        inputs = [("X", number([None, int(width)]))]
    else:
        twin, feeds = graph_inputs(preprocessor)
        graph_model = Pipeline([("preprocess", twin), ("model", estimator)])
        inputs = []
        for feed in feeds:
            kind = StringTensorType if feed.text else number
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
                    feature_names=feature_names, precision=precision)


class Predictor:
    """``predict_proba`` / ``predict`` of raw records (a frame, or rows in the schema's
    order) through onnxruntime (``kind="onnx"``) or scikit-learn (``kind="sklearn"``);
    ``why`` says why the compiled form is or is not used; ``schema`` is the model's
    ``FeatureSchema`` when it came from ``load_predictor``."""

    schema = None

    def __init__(self, kind: str, why: str, classes, feature_names: list[str] | None,
                 sklearn_model=None, compiled: Compiled | None = None, threads: int = 1):
        self.kind, self.why = kind, why
        self.classes_ = np.asarray(classes)
        self.feature_names = feature_names
        self.sklearn_model = sklearn_model
        self.settled_rows = 0  # rows scikit-learn answered for being near-ties (onnx kind)
        self._compiled = compiled
        self._raw = sklearn_model is not None and split_preprocessor(
            getattr(sklearn_model, "estimator_", sklearn_model)
            if _is_self_trainer(sklearn_model) else sklearn_model)[0] is not None
        if compiled is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # on a shared machine, spinning threads steal the cores they wait for
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(compiled.onnx, options,
                                                 providers=["CPUExecutionProvider"])
            self._output = self._session.get_outputs()[1].name
            self._raw = compiled.feeds is not None

    def predict_proba(self, rows) -> np.ndarray:
        rows = self._frame(rows)
        if self.kind == "sklearn":
            return self.sklearn_model.predict_proba(rows)
        compiled = self._compiled
        dtype = np.dtype(compiled.precision)
        if compiled.feeds is None:
            inputs = {"X": np.asarray(rows, dtype=dtype)}
        else:
            cache: dict = {}
            inputs = {feed.name: feed.array(rows, dtype, cache) for feed in compiled.feeds}
        proba = np.asarray(self._session.run([self._output], inputs)[0], dtype=np.float64)
        return self._settle_near_ties(rows, proba)

    def _settle_near_ties(self, rows, proba: np.ndarray) -> np.ndarray:
        """Rows whose two most probable classes are within ``TIE_GAP``, answered by
        scikit-learn: a forest's vote often ties exactly, and float32 sums in another order
        may break the tie the other way; so labels stay identical to scikit-learn's."""
        if self.sklearn_model is None or proba.shape[1] < 2 or not len(proba):
            return proba
        top = np.partition(proba, -2, axis=1)[:, -2:]
        close = np.flatnonzero(top[:, 1] - top[:, 0] < TIE_GAP)
        self.settled_rows += close.size
        if close.size:
            some = rows.iloc[close] if isinstance(rows, pd.DataFrame) else np.asarray(rows)[close]
            proba[close] = self.sklearn_model.predict_proba(some)
        return proba

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
                              sklearn_model=model, compiled=compiled)
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


def compile_and_verify(model, frames: list, feature_names: list[str] | None = None,
                       tolerance: float = TOLERANCE) -> tuple[Compiled | None, Verdict]:
    """(the compiled model if it verified else None, the verdict with the reason).

    The graph computes in the precision scikit-learn computes in: float32 for trees (their
    thresholds compare float32 values), float64 for the rest (kNN distances and linear
    models on wide-ranged features such as a year drift past the tolerance in float32,
    including on rows the check does not see); the other precision is the second try."""
    verdicts = []
    order = PRECISIONS if _computes_in_float32(model) else PRECISIONS[::-1]
    for precision in order:
        try:
            compiled = compile_model(model, feature_names, precision)
        except NotCompilable as exc:
            verdicts.append(Verdict(False, f"{precision}: {exc}"))
            continue
        except Exception as exc:  # compiling is an optimisation: it never fails packaging
            verdicts.append(Verdict(False, f"{precision}: cannot compile: {type(exc).__name__}: "
                                           f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"))
            continue
        verdict = verify(model, compiled, frames, tolerance)
        if verdict.ok:
            verdict.why = f"{precision} graph {verdict.why}"
            return compiled, verdict
        verdict.why = f"{precision}: {verdict.why}"
        verdicts.append(verdict)
    failed = verdicts[-1]
    failed.why = "; ".join(v.why for v in verdicts)
    return None, failed


def save_compiled(directory: str | Path, compiled: Compiled | None, verdict: Verdict) -> list[str]:
    """Write ``model.onnx`` (when it verified) and ``compiled.json`` (feeds, verdict) into
    ``directory``; returns the file names to add to the integrity record."""
    directory = Path(directory)
    record: dict[str, Any] = {"kind": "onnx" if compiled is not None else "sklearn",
                              "precision": compiled.precision if compiled else None,
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
    predictor = _predictor(model_dir, record, what, model, schema, threads)
    predictor.schema = schema
    return predictor


def _predictor(model_dir: Path, record, what: str, model, schema, threads: int) -> Predictor:
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
        compiled = compile_plan(model, (model_dir / ONNX_FILE).read_bytes(), names,
                                info.get("precision", "float32"))
        return Predictor("onnx", info.get("why", "verified at packaging"), compiled.classes,
                         names, sklearn_model=model, compiled=compiled, threads=threads)
    except Exception as exc:  # a runtime that cannot load the graph: serve scikit-learn
        why = f"compiled form failed to load ({type(exc).__name__}: {exc}); serving scikit-learn"
        logger.warning("%s: %s", what, why)
        return Predictor("sklearn", why, schema.classes, names, sklearn_model=model)


def compile_plan(model, onnx: bytes, feature_names: list[str] | None,
                 precision: str = "float32") -> Compiled:
    """A stored graph with the feeds its model prepares (no conversion)."""
    model = getattr(model, "estimator_", None) if _is_self_trainer(model) else model
    preprocessor, _ = split_preprocessor(model)
    feeds = None if preprocessor is None else graph_inputs(preprocessor)[1]
    return Compiled(onnx=onnx, feeds=feeds, classes=np.asarray(model.classes_),
                    feature_names=feature_names, precision=precision)


def _computes_in_float32(model) -> bool:
    """True for tree ensembles, which scikit-learn evaluates on float32 inputs."""
    model = getattr(model, "estimator_", None) if _is_self_trainer(model) else model
    final = _final_classifier(split_preprocessor(model)[1])
    return isinstance(final, TREE_MODELS)


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
