"""The endpoint's row rules, applied to a whole table at once (batch scoring).

``serving/validation.py`` checks a JSON body value by value with pydantic; a table of
millions of rows needs the same rules column by column, vectorized. The rules, per role:

- numeric: a number or missing; text that is not a number, a boolean, an infinity or a
  magnitude beyond float32's range (where tree models compute) is refused;
- categorical: anything (text, a boolean, a number) or missing; an infinity is refused;
  a category never seen in training is answered, as the endpoint answers it;
- datetime: an ISO-8601 date (``YYYY-MM-DD``, optionally a time) or missing.

A missing value is a null, an empty CSV cell or a NaN (the table reader's null tokens):
the model fills it as it was trained to. ``check_rows`` returns the frame the model reads
(numbers parsed) and one refusal per row and field.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from selftrain.columns import ISO_DATE, category_text
from selftrain.schema import FeatureSchema

# Tree models compute in float32: a finite float64 beyond this range becomes inf there.
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_ECHO = 40  # characters of input a reason may repeat
EXPECTED = {"numeric": "a number or null", "categorical": "text, a boolean, a number or null",
            "datetime": "an ISO-8601 date string or null"}
# CSV spellings of booleans (pyarrow's, which reads the training table)
TRUE_TEXT = {"true", "True", "TRUE"}
FALSE_TEXT = {"false", "False", "FALSE"}


def missing_columns(schema: FeatureSchema, columns) -> list[str]:
    """The feature columns of ``schema`` that a table with ``columns`` lacks."""
    present = set(map(str, columns))
    return [name for name in schema.feature_names if name not in present]


def check_rows(frame: pd.DataFrame, schema: FeatureSchema
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the feature columns as the model reads them, refusals with ``position`` (0-based
    in ``frame``), ``field`` and ``reason``). Every column must be present."""
    out = {}
    refusals = []
    for name in schema.feature_names:
        role = schema.role(name) if schema.roles else "numeric"
        values, bad = _RULES[role](frame[name], schema.categories.get(name))
        out[name] = values
        for position, reason in bad.items():
            refusals.append((position, name, reason))
    features = pd.DataFrame(out, index=frame.index)
    refused = pd.DataFrame(refusals, columns=["position", "field", "reason"])
    return features, refused.sort_values(["position", "field"], kind="stable",
                                         ignore_index=True)


def _numeric(column: pd.Series, _categories) -> tuple[pd.Series, pd.Series]:
    bad = {}
    if pd.api.types.is_bool_dtype(column.dtype):
        positions = np.flatnonzero(column.notna().to_numpy())
        return (pd.Series(np.nan, index=column.index),
                pd.Series("must be a number or null, got a boolean", index=positions))
    if pd.api.types.is_numeric_dtype(column.dtype):
        numbers = column.astype(np.float64)
    else:
        numbers = pd.to_numeric(column, errors="coerce").astype(np.float64)
        text = column.notna() & numbers.isna()
        if pd.api.types.is_object_dtype(column.dtype):  # to_numeric reads True as 1
            booleans = column.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
            numbers[booleans] = np.nan
            text |= booleans
        for position in np.flatnonzero(text.to_numpy()):
            value = column.iloc[position]
            got = ("a boolean" if isinstance(value, bool | np.bool_) or str(value) in
                   TRUE_TEXT | FALSE_TEXT else f"text {str(value)[:MAX_ECHO]!r}")
            bad[position] = f"must be {EXPECTED['numeric']}, got {got}"
    array = numbers.to_numpy()
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(array)
        huge = ~infinite & (np.abs(array) > FLOAT32_MAX)
    for position in np.flatnonzero(infinite):
        bad[position] = "must be a finite number (NaN and infinity are refused)"
    for position in np.flatnonzero(huge):
        bad[position] = f"out of range: values must lie within +-{FLOAT32_MAX:.4g}"
    return numbers, pd.Series(bad, dtype=object)


def _categorical(column: pd.Series, categories) -> tuple[pd.Series, pd.Series]:
    bad = {}
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        for position in np.flatnonzero(np.isinf(column.to_numpy(dtype=np.float64))):
            bad[position] = "must be a finite number (NaN and infinity are refused)"
        return column, pd.Series(bad, dtype=object)
    if pd.api.types.is_object_dtype(column.dtype):
        infinite = column.map(lambda v: isinstance(v, float) and math.isinf(v))
        for position in np.flatnonzero(infinite.to_numpy(bool)):
            bad[position] = "must be a finite number (NaN and infinity are refused)"
    if categories is None or not pd.api.types.is_object_dtype(column.dtype) and \
            not pd.api.types.is_string_dtype(column.dtype):
        return column, pd.Series(bad, dtype=object)
    return _as_trained(column, categories), pd.Series(bad, dtype=object)


def _as_trained(column: pd.Series, categories: dict) -> pd.Series:
    """Text read from a CSV, spelled as the training table's reader typed it: a category
    the model knows is kept; otherwise ``true``/``1.0``-like text becomes ``True``/``1``,
    as a boolean or whole-number column was read in training."""
    known = set(categories.get("frequent", [])) | set(categories.get("infrequent", []))
    text = column.astype(object)
    unknown = text.notna() & ~text.isin(known)
    if not unknown.any():
        return text
    text = text.copy()
    text[unknown] = text[unknown].map(_typed_spelling)
    return text


def _typed_spelling(value):
    if not isinstance(value, str):
        return value
    if value in TRUE_TEXT:
        return "True"
    if value in FALSE_TEXT:
        return "False"
    try:
        number = float(value)
    except ValueError:
        return value
    return category_text(number) if np.isfinite(number) else value


def _datetime(column: pd.Series, _categories) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column, pd.Series({}, dtype=object)
    present = column.notna()
    text = column[present].astype(str).str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    good = text.str.match(ISO_DATE.pattern) & parsed.notna()
    positions = np.flatnonzero(present.to_numpy())[~good.to_numpy()]
    bad = {int(p): "must be an ISO-8601 date (YYYY-MM-DD, optionally Thh:mm:ss), got "
                   f"{str(column.iloc[p])[:MAX_ECHO]!r}" for p in positions}
    return column, pd.Series(bad, dtype=object)


_RULES = {"numeric": _numeric, "categorical": _categorical, "datetime": _datetime}
