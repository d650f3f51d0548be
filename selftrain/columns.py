"""A real table as its owner has it: column roles, and the preprocessor that is part of
the model.

``infer_roles`` decides what each column is (numeric, categorical, datetime, or dropped,
with the reason), honouring what the user declared. ``make_preprocessor`` turns the roles
into a scikit-learn ``ColumnTransformer``: median imputation with missing-value
indicators for numbers, one-hot encoding with rare categories grouped for categories,
date parts for dates. ``tabular_pipeline`` puts it in front of an estimator; fitted inside
``SelfTrainingClassifier.fit`` on all rows (labeled and unlabeled), it travels with the
model, so training and serving read the same raw record the same way.

Treatment of categories (documented in the README): a missing value is its own category
``(missing)``; categories seen in fewer than ``min_category_count`` training rows, and
those beyond the ``max_categories`` most frequent, are grouped as "infrequent"; a
category never seen in training is answered as "infrequent" (all zeros when no category
was infrequent), never refused.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

Role = Literal["numeric", "categorical", "datetime"]
MISSING_CATEGORY = "(missing)"
DATE_PARTS = ("year", "month", "day", "weekday", "days")
ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
# An inferred text column is an identifier or free text (dropped) when most values differ.
IDENTIFIER_MIN_DISTINCT = 50
IDENTIFIER_DISTINCT_SHARE = 0.5
# A text column whose values are at least this share numbers is a numeric column with
# stray tokens (a data-entry problem the contract names), not a category.
NUMERIC_TEXT_SHARE = 0.9
PREPROCESS_STEP = "preprocess"


class ColumnRoles(BaseModel):
    """Each feature's role, in table order; dropped columns with the reason."""

    columns: dict[str, Role]
    dropped: dict[str, str] = {}
    inferred: list[str] = []

    def of(self, role: str) -> list[str]:
        return [c for c, r in self.columns.items() if r == role]

    @property
    def features(self) -> list[str]:
        return list(self.columns)

    def report(self) -> list[str]:
        """Plain lines for the run summary: what was decided, and what was inferred."""
        lines = []
        for role in ("numeric", "categorical", "datetime"):
            names = self.of(role)
            if names:
                shown = ", ".join(n + (" (inferred)" if n in self.inferred and role != "numeric"
                                       else "") for n in names[:12])
                more = f", and {len(names) - 12} more" if len(names) > 12 else ""
                lines.append(f"{role} ({len(names)}): {shown}{more}")
        lines += [f"dropped: {c} ({why})" for c, why in self.dropped.items()]
        return lines


def infer_roles(frame: pd.DataFrame, *, features: list[str] | None = None,
                categorical: list[str] | None = None, datetime: list[str] | None = None,
                drop: list[str] | tuple = (), exclude: list[str] | tuple = ()) -> ColumnRoles:
    """Roles of ``frame``'s feature columns: declared ones as declared, the rest inferred
    (a declaration adds to the inference; it never turns it off).

    Text, boolean and ``category`` columns are categorical; ISO-like dates (text or
    datetime dtype) are datetime; numbers, and text that is mostly numbers, are numeric.
    An inferred text column whose values are nearly all distinct is an identifier or free
    text and is dropped, with the reason. ``exclude`` (the id and label) is never a feature.
    Raises ``ValueError`` naming a declared column the frame does not have."""
    for key, names in (("data.features", features), ("data.categorical", categorical),
                       ("data.datetime", datetime), ("data.drop", drop)):
        missing = [n for n in names or [] if n not in frame.columns]
        if missing:
            raise ValueError(f"{key} names column(s) {missing} that the table does not have "
                             f"(columns: {', '.join(map(str, frame.columns[:20]))})")
    candidates = features if features is not None else [
        c for c in frame.columns if c not in exclude]
    columns: dict[str, Role] = {}
    dropped = {c: "listed in data.drop" for c in drop}
    inferred = []
    for name in candidates:
        if name in dropped or name in exclude:
            continue
        if categorical is not None and name in categorical:
            columns[name] = "categorical"
        elif datetime is not None and name in datetime:
            columns[name] = "datetime"
        else:
            role, why = _infer_role(frame[name])
            if role is None:
                dropped[name] = why
                continue
            columns[name] = role
            inferred.append(name)
    return ColumnRoles(columns=columns, dropped=dropped, inferred=inferred)


def make_preprocessor(roles: ColumnRoles, *, max_categories: int = 20,
                      min_category_count: int = 5) -> ColumnTransformer:
    """The unfitted ``ColumnTransformer`` for ``roles`` (see the module docstring)."""
    parts = []
    if roles.of("numeric"):
        parts.append(("numeric", make_pipeline(
            FunctionTransformer(as_numbers, feature_names_out="one-to-one"),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        ), roles.of("numeric")))
    if roles.of("categorical"):
        parts.append(("categorical", make_pipeline(
            FunctionTransformer(as_categories, feature_names_out="one-to-one"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_category_count,
                          max_categories=max_categories, sparse_output=False),
        ), roles.of("categorical")))
    if roles.of("datetime"):
        parts.append(("datetime", make_pipeline(
            FunctionTransformer(date_parts, feature_names_out=date_part_names),
            SimpleImputer(strategy="median", keep_empty_features=True),
        ), roles.of("datetime")))
    if not parts:
        raise ValueError("no feature columns are left to learn from: every column is the id, "
                         f"the label or dropped ({roles.dropped})")
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def tabular_pipeline(estimator, roles: ColumnRoles, **options) -> Pipeline:
    """``estimator`` behind the preprocessor for ``roles``: a model of raw records.

    ``SelfTrainingClassifier`` fits the ``"preprocess"`` step once on all rows, then
    self-trains the estimator on the encoded matrix."""
    return Pipeline([(PREPROCESS_STEP, make_preprocessor(roles, **options)),
                     ("model", estimator)])


def split_preprocessor(estimator):
    """``(preprocessor, rest)`` of a ``tabular_pipeline``-shaped estimator, else
    ``(None, estimator)``: the preprocessor is fitted once on all rows, the rest each round."""
    steps = getattr(estimator, "steps", None)
    if not steps or steps[0][0] != PREPROCESS_STEP or len(steps) < 2:
        return None, estimator
    rest = steps[1:]
    return steps[0][1], rest[0][1] if len(rest) == 1 else Pipeline(rest)


def with_preprocessor(preprocessor, model):
    """The served model: a fitted preprocessor (or None) in front of a fitted estimator."""
    if preprocessor is None:
        return model
    return Pipeline([(PREPROCESS_STEP, preprocessor), ("model", model)])


def known_categories(preprocessor: ColumnTransformer) -> dict[str, dict[str, list[str]]]:
    """Per categorical column of a fitted preprocessor: the categories it encodes on their
    own (``frequent``) and those it groups as infrequent."""
    if "categorical" not in preprocessor.named_transformers_:
        return {}
    encoder = preprocessor.named_transformers_["categorical"][-1]
    columns = next(cols for name, _, cols in preprocessor.transformers_ if name == "categorical")
    rare = encoder.infrequent_categories_
    out = {}
    for i, column in enumerate(columns):
        infrequent = [] if rare[i] is None else [str(v) for v in rare[i]]
        frequent = [str(v) for v in encoder.categories_[i] if str(v) not in infrequent]
        out[column] = {"frequent": frequent, "infrequent": infrequent}
    return out


def learned_medians(preprocessor: ColumnTransformer) -> dict[str, float | None]:
    """Per numeric column of a fitted preprocessor: the median that fills a missing value
    (``None`` for a column that was entirely empty in training)."""
    if "numeric" not in preprocessor.named_transformers_:
        return {}
    imputer = preprocessor.named_transformers_["numeric"][-1]
    columns = next(cols for name, _, cols in preprocessor.transformers_ if name == "numeric")
    return {c: (None if np.isnan(v) else float(v))
            for c, v in zip(columns, imputer.statistics_, strict=True)}


def as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as float64; anything that is not a number is missing (NaN)."""
    return frame.apply(lambda col: pd.to_numeric(col, errors="coerce")).astype(np.float64)


def as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as text: booleans as ``True``/``False``, whole floats without ``.0``,
    missing values as their own category."""
    return frame.apply(lambda col: col.astype(object).map(category_text)).astype(object)


def category_text(value) -> str:
    """The category one value stands for: how training and serving spell it alike."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return MISSING_CATEGORY
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def date_parts(frame: pd.DataFrame) -> pd.DataFrame:
    """Year, month, day, weekday and days since 1970 of each date column (NaN if unparsed)."""
    out = {}
    for name in frame.columns:
        when = parse_dates(frame[name])
        days = (when - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
        values = (when.dt.year, when.dt.month, when.dt.day, when.dt.day_of_week, days)
        for part, value in zip(DATE_PARTS, values, strict=True):
            out[f"{name}_{part}"] = value.astype(np.float64)
    return pd.DataFrame(out, index=frame.index)


def date_part_names(_transformer, input_features) -> np.ndarray:
    return np.array([f"{name}_{part}" for name in input_features for part in DATE_PARTS],
                    dtype=object)


def parse_dates(column: pd.Series) -> pd.Series:
    """ISO-8601 text or datetimes as UTC timestamps; what does not parse is NaT."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return (column.dt.tz_localize("UTC") if column.dt.tz is None
                else column.dt.tz_convert("UTC"))
    text = column.astype(object).where(column.notna(), None)
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")


def non_numbers(column: pd.Series) -> pd.Series:
    """The values of a column that are present but are not numbers (the stray tokens)."""
    parsed = pd.to_numeric(column, errors="coerce")
    return column[parsed.isna() & column.notna()]


def _infer_role(column: pd.Series) -> tuple[Role | None, str]:
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", ""
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical", ""
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric", ""
    present = column.dropna()
    if present.empty:
        return "numeric", ""  # the contract names an entirely empty column
    sample = present.astype(str).str.strip().head(500)
    if sample.map(lambda v: bool(ISO_DATE.match(v))).all():
        return "datetime", ""
    if len(non_numbers(present)) <= (1 - NUMERIC_TEXT_SHARE) * len(present):
        return "numeric", ""
    distinct = present.nunique()
    if distinct > IDENTIFIER_MIN_DISTINCT and distinct > IDENTIFIER_DISTINCT_SHARE * len(present):
        return None, (f"identifier-like or free text: {distinct} distinct values in "
                      f"{len(present)} rows; list it in data.categorical to keep it")
    return "categorical", ""
