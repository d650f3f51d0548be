"""The graph's inputs: how a raw record is prepared before the ONNX session.

``skl2onnx`` converts scikit-learn's one-hot encoder (infrequent categories included),
scalers and estimators, but not our ``FunctionTransformer`` steps (``as_numbers``,
``as_categories``, ``date_parts`` in ``selftrain.columns``), nor ``add_indicator``, and
onnxruntime's ``Imputer`` runs in float32 only. So ``graph_inputs`` splits a fitted
``ColumnTransformer`` into the part that runs in pandas/numpy before the session (one
``Feed`` per graph input, running the model's own functions or vectorized paths tested to
give the same values) and a fitted twin ``ColumnTransformer`` over those inputs, which
skl2onnx converts:

- numbers: coerced, median-filled, with their missing-value indicators, in numpy;
- categories: spelled as in training, one text input per column (skl2onnx groups
  infrequent categories only then); an unseen category becomes one of the column's
  infrequent categories where scikit-learn reads it so, else the encoder answers zeros;
- dates: split into parts and filled in numpy.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from selftrain.columns import (
    MISSING_CATEGORY,
    as_categories,
    as_numbers,
    date_parts,
    parse_dates,
)

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


def graph_inputs(preprocessor: ColumnTransformer) -> tuple[ColumnTransformer, list[Feed]]:
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
