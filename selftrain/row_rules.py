"""The rules a row must pass to be scored: one home for the endpoint and batch scoring.

Per role, a value is:

- numeric: a number or missing; text that is not a number, a boolean, an infinity or a
  magnitude beyond float32's range (where tree models compute) is refused;
- categorical: anything (text, a boolean, a number) or missing; an infinity is refused;
  a category never seen in training is answered (see ``selftrain.columns``);
- datetime: an ISO-8601 date (``YYYY-MM-DD``, optionally a time) or missing.

The rules run in two shapes that must agree (tested row by row): ``RowValidator`` checks a
JSON body value by value with pydantic, whose types are also the typed input of the
``@bentoml.api`` endpoints (so the OpenAPI page lists the model's features); a refusal
names the row and field and never repeats more than ``MAX_ECHO`` characters of the input.
``check_rows`` applies them to a table of millions of rows column by column, vectorized:
there a missing value is a null, an empty CSV cell or a NaN (the table reader's null
tokens), and it returns the frame the model reads with one refusal per row and field.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
from pydantic import (
    AfterValidator,
    AllowInfNan,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from selftrain.columns import ISO_DATE, category_text
from selftrain.schema import FeatureSchema

# Tree models compute in float32: a finite float64 beyond this range becomes inf there.
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_ECHO = 40  # characters of client input a message may repeat
MAX_LISTED_ERRORS = 10
EXPECTED = {"numeric": "a number or null", "categorical": "text, a boolean, a number or null",
            "datetime": "an ISO-8601 date string or null"}
NOT_FINITE = "must be a finite number (NaN and infinity are refused)"
OUT_OF_RANGE = f"out of range: values must lie within +-{FLOAT32_MAX:.4g}"
NOT_A_DATE = "must be an ISO-8601 date (YYYY-MM-DD, optionally Thh:mm:ss)"
# CSV spellings of booleans (pyarrow's, which reads the training table)
TRUE_TEXT = {"true", "True", "TRUE"}
FALSE_TEXT = {"false", "False", "FALSE"}

Number = Annotated[float, Strict(), AllowInfNan(False), Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]


def _iso_date(value: str) -> str:
    if not ISO_DATE.match(value.strip()) or pd.isna(pd.to_datetime(value, errors="coerce",
                                                                    format="ISO8601")):
        raise ValueError(f"{NOT_A_DATE}, got {value[:MAX_ECHO]!r}")
    return value


# A category may arrive as text, a boolean or a number: category_text spells them alike.
Category = StrictStr | StrictBool | StrictInt | Number
DateText = Annotated[StrictStr, AfterValidator(_iso_date)]
FIELD_TYPES = {"numeric": Number | None, "categorical": Category | None,
               "datetime": DateText | None}


class RequestError(ValueError):
    """A bad request: HTTP status, one-line message, and the per-row/field details."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "errors": self.errors}


class RowValidator:
    """Turns a JSON body into an array of shape (rows, features) in the schema's column
    order, or refuses it: float64 when every feature is numeric, else objects (numbers,
    text, ``None`` for missing) that the model's preprocessor reads.

    Accepted bodies: ``[{"f1": 1.0, "city": "Paris", ...}, ...]`` (records keyed by the
    original column names), ``[[1.0, "Paris", ...], ...]`` (rows in the schema's order), or
    either wrapped as ``{"rows": [...]}``. Per role: numbers or ``null`` (missing) for
    numeric columns; text, booleans, numbers or ``null`` for categorical ones (an unseen
    category is answered, see ``selftrain.columns``); ISO-8601 text or ``null`` for dates.
    A model packaged without roles takes numbers only, as it was trained.
    """

    def __init__(self, schema: FeatureSchema, max_rows: int):
        self.names = list(schema.feature_names)
        self.max_rows = max_rows
        types = [FIELD_TYPES[schema.role(n)] if schema.roles else Number for n in self.names]
        self.numeric = all(schema.role(n) == "numeric" for n in self.names)
        self.expected = {n: EXPECTED[schema.role(n)] if schema.roles else "a number"
                         for n in self.names}
        fields = dict(zip(self.names, types, strict=True))
        record = TypedDict("Record", fields)  # type: ignore  # noqa: UP013 - names are data
        record.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        row = tuple[*types] if types else list
        self._records = TypeAdapter(list[record])
        self._arrays = TypeAdapter(list[row])
        # What the endpoint declares: rows as records or arrays (shown in OpenAPI).
        self.rows_type = list[record] | list[row]
        size = Field(min_length=1, max_length=max_rows)
        rows = Annotated[list[record], size] | Annotated[list[row], size]
        wrapped = TypedDict("Body", {"rows": rows})  # type: ignore  # noqa: UP013
        wrapped.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        self._body = TypeAdapter(rows | wrapped)

    def check(self, body: bytes) -> None:
        """Return when ``body`` is a request this model answers; else raise RequestError.

        A good body passes pydantic's JSON validation in one go (as BentoML will parse it
        next); only a refused one is taken apart again to say which row and field are wrong.
        """
        try:
            self._body.validate_json(body)
            return
        except ValidationError:
            pass
        rows = self._rows_of(parse_json(body))
        records = isinstance(rows[0], dict)
        if not records and not isinstance(rows[0], list):
            raise RequestError(422, f"row 0: {self._row_shape_hint()}", [{"row": 0}])
        if not records:
            self._check_widths(rows)
        try:
            (self._records if records else self._arrays).validate_python(rows)
        except ValidationError as exc:
            raise self._describe(exc, records) from None

    def as_array(self, rows: list) -> np.ndarray:
        """Validated rows (records or arrays) as one array in the schema's column order."""
        if rows and isinstance(rows[0], dict):
            rows = [[row[name] for name in self.names] for row in rows]
        if self.numeric:
            return np.array(rows, dtype=np.float64)  # null (missing) becomes NaN
        out = np.empty((len(rows), len(self.names)), dtype=object)
        out[:] = [list(row) for row in rows]
        return out

    def _rows_of(self, data: Any) -> list:
        if isinstance(data, dict) and set(data) == {"rows"}:
            data = data["rows"]
        if not isinstance(data, list):
            raise RequestError(
                422, 'body must be a JSON array of rows, or an object {"rows": [...]}'
            )
        if not data:
            raise RequestError(422, "no rows: send at least one row")
        if len(data) > self.max_rows:
            raise RequestError(
                422,
                f"{len(data)} rows exceed the limit of {self.max_rows} rows per request "
                "(serving.max_batch_rows)",
            )
        return data

    def _describe(self, exc: ValidationError, records: bool) -> RequestError:
        errors, seen = [], set()
        for err in exc.errors():  # a union reports each member: one line per row and field
            if tuple(err["loc"][:2]) not in seen:
                seen.add(tuple(err["loc"][:2]))
                errors.append(self._explain(err, records))
        shown = "; ".join(_format(e) for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return RequestError(422, shown + more, errors[:MAX_LISTED_ERRORS])

    def _explain(self, err: dict, records: bool) -> dict[str, Any]:
        loc = err["loc"]
        found: dict[str, Any] = {"row": loc[0] if loc else None}
        if len(loc) > 1:
            field = loc[1]
            found["field"] = str(field)[:MAX_ECHO] if records else self.names[int(field)]
        kind = err["type"]
        if kind in ("too_short", "too_long"):
            got = len(err["input"]) if isinstance(err.get("input"), list) else "?"
            found["message"] = f"expected {len(self.names)} values, got {got}"
        elif kind in ("dict_type", "list_type", "tuple_type"):
            found["message"] = self._row_shape_hint()
        elif kind == "value_error":
            found["message"] = err["msg"].removeprefix("Value error, ")
        else:
            expected = self.expected.get(found.get("field"), "a number")
            found["message"] = _VALUE_MESSAGES.get(kind) or _type_message(err, expected)
        return found

    def _check_widths(self, rows: list) -> None:
        width = len(self.names)
        bad = [(i, len(r)) for i, r in enumerate(rows) if isinstance(r, list) and len(r) != width]
        if bad:
            errors = [{"row": i, "message": f"expected {width} values, got {n}"}
                      for i, n in bad[:MAX_LISTED_ERRORS]]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise RequestError(422, _format(errors[0]) + more, errors)

    def _row_shape_hint(self) -> str:
        return (
            "each row must be an object keyed by feature name or an array of "
            f"{len(self.names)} numbers, all rows alike"
        )


def parse_json(body: bytes) -> Any:
    """JSON or a 400. NaN/Infinity literals parse, so validation names their row and field.

    orjson reads the usual body ~8x faster; the standard parser takes what it refuses
    (NaN, Infinity, huge integers) and words the error when the JSON is broken.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        reason = exc.msg if hasattr(exc, "msg") else type(exc).__name__
        raise RequestError(400, f"malformed JSON{where}: {reason}") from None


_VALUE_MESSAGES = {
    "missing": "missing",
    "extra_forbidden": "is not a feature of this model",
    "finite_number": NOT_FINITE,
    "greater_than_equal": OUT_OF_RANGE,
    "less_than_equal": OUT_OF_RANGE,
}

_JSON_TYPES = {
    "str": "a string",
    "NoneType": "null",
    "bool": "a boolean",
    "dict": "an object",
    "list": "an array",
}


def _type_message(err: dict, expected: str) -> str:
    got = _JSON_TYPES.get(type(err.get("input")).__name__, type(err.get("input")).__name__)
    return f"must be {expected}, got {got}"


def _format(error: dict) -> str:
    where = f"row {error['row']}"
    if "field" in error:
        where += f", field {error['field']!r}"
    return f"{where}: {error['message']}"


# -- the same rules over a whole table (batch scoring) ----------------------

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
        bad[position] = NOT_FINITE
    for position in np.flatnonzero(huge):
        bad[position] = OUT_OF_RANGE
    return numbers, pd.Series(bad, dtype=object)


def _categorical(column: pd.Series, categories) -> tuple[pd.Series, pd.Series]:
    bad = {}
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        for position in np.flatnonzero(np.isinf(column.to_numpy(dtype=np.float64))):
            bad[position] = NOT_FINITE
        return column, pd.Series(bad, dtype=object)
    if pd.api.types.is_object_dtype(column.dtype):
        infinite = column.map(lambda v: isinstance(v, float) and math.isinf(v))
        for position in np.flatnonzero(infinite.to_numpy(bool)):
            bad[position] = NOT_FINITE
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
    bad = {int(p): f"{NOT_A_DATE}, got {str(column.iloc[p])[:MAX_ECHO]!r}" for p in positions}
    return column, pd.Series(bad, dtype=object)


_RULES = {"numeric": _numeric, "categorical": _categorical, "datetime": _datetime}
