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
  (numbers coerced, categories spelled, dates split into parts), with vectorized paths
  that give the same values (``prepared``);
- the median fill and the missing-value indicators are computed in numpy (onnxruntime's
  ``Imputer`` runs in float32 only, and skl2onnx has no ``add_indicator``);
- each category column is its own text input (skl2onnx groups infrequent categories only
  then); an unseen category becomes an infrequent one where scikit-learn reads it so;
- the graph holds the one-hot encoder, the scaler and the estimator; numbers enter as
  float32 for trees (as scikit-learn casts them) and float64 for other models.

A row whose two most probable classes are within ``TIE_GAP`` is answered by scikit-learn
(``Predictor._settle_near_ties``), so labels stay identical on exact ties.

A model without a preprocessor (a numeric array model) is converted whole.

``compile_model`` converts and ``verify`` compares against scikit-learn (identical labels,
probabilities within ``TOLERANCE``); ``save_compiled`` / ``load_predictor`` store it beside
the scikit-learn model and load whichever verified, after checking the integrity record.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import warnings
from dataclasses import dataclass, field
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
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.tree import BaseDecisionTree

from selftrain.columns import (
    MISSING_CATEGORY,
    as_categories,
    as_numbers,
    date_parts,
    parse_dates,
    split_preprocessor,
)
from selftrain.integrity import verify_artifacts

logger = logging.getLogger("selftrain.compiled")

ONNX_FILE = "model.onnx"
COMPILED_FILE = "compiled.json"  # what was compiled, how it verified, or why it was not
TOLERANCE = 1e-5
PRECISIONS = ("float32", "float64")
TIE_GAP = 1e-4  # top-two probabilities closer than this: scikit-learn settles the row
TREE_MODELS = (BaseDecisionTree, RandomForestClassifier, ExtraTreesClassifier,
               GradientBoostingClassifier, HistGradientBoostingClassifier)
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
    known: frozenset | None = None  # text feed: the categories the encoder knows
    unknown_as: str | None = None  # ... and what an unknown one is read as (None: zeros)
    fill: np.ndarray | None = None  # number feed: the imputer's value for each column

    def array(self, frame: pd.DataFrame, dtype=np.float32, cache: dict | None = None
              ) -> np.ndarray:
        """This input for the rows of ``frame``; ``cache`` shares the prepared columns
        between the feeds of one call (numbers and their missing indicator)."""
        key = (self.prepare, tuple(self.columns))
        values = None if cache is None else cache.get(key)
        if values is None:
            values = prepared(self.prepare, frame[self.columns])
            if cache is not None:
                cache[key] = values
        if self.watch is not None:
            return np.isnan(np.asarray(values, dtype=np.float64)[:, self.watch]).astype(dtype)
        if not self.text:
            values = np.asarray(values, dtype=np.float64)
            if self.fill is not None:
                values = np.where(np.isnan(values), self.fill, values)
            return np.ascontiguousarray(values, dtype=dtype)  # row-major, as the trees read
        values = values.astype(object)  # as_categories spells every value as text
        if self.unknown_as is not None:
            # scikit-learn reads a category it never saw as "infrequent" when the column has
            # infrequent categories: give the graph one of those
            unknown = ~pd.Series(values[:, 0]).isin(self.known).to_numpy()
            values[unknown, 0] = self.unknown_as
        return values


def prepared(prepare, part: pd.DataFrame) -> np.ndarray:
    """``prepare(part)`` as an array, by a vectorized path where it gives the same values:
    numbers that are numbers already (``as_numbers``), text and boolean columns
    (``as_categories``, which otherwise spells one value at a time in Python)."""
    if prepare is None:
        return part.to_numpy()
    func = getattr(prepare, "func", prepare)
    if func is as_numbers and all(t.kind in "biuf" for t in part.dtypes):
        return part.to_numpy(dtype=np.float64)
    if func is as_categories:
        columns = [_spelled_fast(part[c]) for c in part.columns]
        if all(c is not None for c in columns):
            return np.column_stack(columns) if columns else np.empty((len(part), 0), object)
    if func is date_parts:
        return np.column_stack([_date_parts_fast(part[c]) for c in part.columns]) \
            if len(part.columns) else np.empty((len(part), 0))
    return np.asarray(prepare(part))


def _date_parts_fast(column: pd.Series) -> np.ndarray:
    """``date_parts`` of one column in numpy calendar arithmetic (pandas' ``.dt``
    accessors cost ~1 ms each on a single row): same parse, same five numbers."""
    when = parse_dates(column).to_numpy(dtype="datetime64[ns]")  # UTC, NaT if unparsed
    missing = np.isnat(when)
    day = when.astype("datetime64[D]")
    month = when.astype("datetime64[M]")
    year = when.astype("datetime64[Y]")
    with np.errstate(invalid="ignore"):
        parts = np.column_stack([
            year.astype(np.int64) + 1970,
            month.astype(np.int64) % 12 + 1,
            (day - month.astype("datetime64[D]")).astype(np.int64) + 1,
            (day.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        ]).astype(np.float64)
        days = (when - np.datetime64(0, "ns")) / np.timedelta64(1, "D")
    out = np.column_stack([parts, days])
    out[missing] = np.nan
    return out


def _spelled_fast(column: pd.Series) -> np.ndarray | None:
    """``category_text`` of every value of a text or boolean column, vectorized; None for
    any other column (numbers, mixed types), which takes the exact per-value path."""
    if column.dtype == np.bool_:  # numpy booleans: never missing
        return np.where(column.to_numpy(), "True", "False").astype(object)
    if column.dtype.kind not in "OU" and not pd.api.types.is_string_dtype(column.dtype):
        return None
    if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
        return None
    values = column.to_numpy(dtype=object, na_value=None).copy()
    values[column.isna().to_numpy()] = MISSING_CATEGORY
    return values


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
        twin, feeds = _twin(preprocessor)
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
    feeds = None if preprocessor is None else _twin(preprocessor)[1]
    return Compiled(onnx=onnx, feeds=feeds, classes=np.asarray(model.classes_),
                    feature_names=feature_names, precision=precision)


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
            prepare = _function_of(steps.pop(0)[1])
        if any(isinstance(s, FunctionTransformer) for _, s in steps):
            raise NotCompilable(f"branch {name!r} has a FunctionTransformer after its first step")
        if not steps:
            raise NotCompilable(f"branch {name!r} has nothing but a FunctionTransformer")
        first = steps[0][1]
        if isinstance(first, OneHotEncoder):
            # one input per column: skl2onnx groups infrequent categories only then
            if len(steps) != 1:
                raise NotCompilable(f"branch {name!r}: steps after the one-hot encoder")
            encoder, text_feeds = _one_input_per_category(name, columns, prepare, first)
            feeds += text_feeds
            parts.append((name, encoder, list(range(start, start + len(columns)))))
            start += len(columns)
            continue
        width = int(first.n_features_in_)
        fill = None
        if isinstance(first, SimpleImputer):
            # onnxruntime's Imputer runs in float32 only; numpy imputes exactly, in float64
            fill, steps = _imputation(name, first), steps[1:]
        feed = Feed(name, columns, prepare, width, fill=fill)
        feeds.append(feed)
        est = "passthrough" if not steps else steps[0][1] if len(steps) == 1 else \
            Pipeline(steps)
        parts.append((name, est, list(range(start, start + width))))
        start += width
        if isinstance(first, SimpleImputer) and first.add_indicator:
            watched = [int(i) for i in first.indicator_.features_]
            if watched:
                indicator = Feed(f"{name}_{INDICATOR}", columns, prepare, len(watched),
                                 watch=watched)
                feeds.append(indicator)
                parts.append((indicator.name, "passthrough",
                              list(range(start, start + indicator.width))))
                start += indicator.width
    twin = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    twin.transformers_ = parts
    twin.sparse_output_ = False
    return twin, feeds


def _one_input_per_category(name: str, columns: list[str], prepare, encoder: OneHotEncoder
                            ) -> tuple[OneHotEncoder, list[Feed]]:
    """A fitted copy of ``encoder`` that answers an unknown category with zeros (the feeds
    have already turned it into an infrequent one where scikit-learn would), and one text
    feed per column."""
    if encoder.drop is not None:
        raise NotCompilable(f"branch {name!r}: a one-hot encoder that drops a category")
    if getattr(encoder, "_infrequent_enabled", False) and \
            encoder.handle_unknown != "infrequent_if_exist":
        raise NotCompilable(f"branch {name!r}: infrequent categories with "
                            f"handle_unknown={encoder.handle_unknown!r}")
    twin = copy.copy(encoder)  # fitted state shared, never changed
    twin.handle_unknown = "ignore"
    rare = getattr(encoder, "infrequent_categories_", None) or [None] * len(columns)
    feeds = []
    for i, column in enumerate(columns):
        infrequent = rare[i]
        feeds.append(Feed(
            f"{name}_{i}", [column], prepare, 1, text=True,
            known=frozenset(str(c) for c in encoder.categories_[i]),
            unknown_as=None if infrequent is None or not len(infrequent) else str(infrequent[0]),
        ))
    return twin, feeds


def _function_of(transformer: FunctionTransformer):
    """The function a fitted ``FunctionTransformer`` applies (it checks the input's columns
    against all of its branch's, so it cannot run on one column of them)."""
    if transformer.validate or transformer.func is None:
        raise NotCompilable("a FunctionTransformer with validate=True or no function")
    return functools.partial(transformer.func, **(transformer.kw_args or {}))


def _imputation(name: str, imputer: SimpleImputer) -> np.ndarray:
    """The value a fitted ``SimpleImputer`` puts in each column's missing cells."""
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise NotCompilable(f"branch {name!r}: an imputer of {missing!r} rather than NaN")
    if imputer.indicator_ is not None and imputer.indicator_.features != "missing-only":
        raise NotCompilable(f"branch {name!r}: a missing indicator of every feature")
    return np.asarray(imputer.statistics_, dtype=np.float64)


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
