"""Request bodies checked against the model's stored feature schema, before any batching.

BentoML's typed inputs reshape wrong-sized arrays, pass NaN through and answer 500 to
``[]`` or ``1e39``; so the service reads the raw body and checks it here with pydantic
types derived from ``FeatureSchema``. Every refusal names the row and the field and
never repeats the body back.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
import orjson
from pydantic import AllowInfNan, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from selftrain.schema import FeatureSchema

# Tree models compute in float32: a finite float64 beyond this range becomes inf there.
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_LISTED_ERRORS = 10

Number = Annotated[float, Strict(), AllowInfNan(False), Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]


class RequestError(ValueError):
    """A bad request: HTTP status, one-line message, and the per-row/field details."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "errors": self.errors}


class RowValidator:
    """Turns a JSON body into a float64 array of shape (rows, features), or refuses it.

    Accepted bodies: ``[{"f1": 1.0, ...}, ...]`` (records keyed by feature name),
    ``[[1.0, ...], ...]`` (rows in the schema's feature order), or either wrapped as
    ``{"rows": [...]}``.
    """

    def __init__(self, schema: FeatureSchema, max_rows: int):
        self.names = list(schema.feature_names)
        self.max_rows = max_rows
        record = TypedDict("Record", {name: Number for name in self.names})  # type: ignore[misc]
        record.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        width = len(self.names)
        self._records = TypeAdapter(list[record])
        self._arrays = TypeAdapter(
            list[Annotated[list[Number], Field(min_length=width, max_length=width)]]
        )

    def parse(self, body: bytes) -> np.ndarray:
        rows = self._rows_of(parse_json(body))
        fast = self._plain_numbers(rows, body)
        if fast is not None:
            return fast
        records = isinstance(rows[0], dict)
        if not records and not isinstance(rows[0], list):
            raise RequestError(422, f"row 0: {self._row_shape_hint()}", [{"row": 0}])
        try:
            (self._records if records else self._arrays).validate_python(rows)
        except ValidationError as exc:
            raise self._describe(exc, records) from None
        if records:
            rows = [[row[name] for name in self.names] for row in rows]
        return np.asarray(rows, dtype=np.float64)

    def _plain_numbers(self, rows: list, body: bytes) -> np.ndarray | None:
        """The common well-formed body, converted by numpy alone (pydantic is ~100x
        slower per value); None sends it through the full check, which explains errors.
        """
        if b"true" in body or b"false" in body:  # numpy would read booleans as 1.0/0.0
            return None
        width = len(self.names)
        try:
            if isinstance(rows[0], dict):
                if any(len(row) != width for row in rows):
                    return None
                rows = [[row[name] for name in self.names] for row in rows]
            array = np.array(rows)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        if array.dtype.kind not in "iuf" or array.shape != (len(rows), width):
            return None
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all() or np.abs(array).max() > FLOAT32_MAX:
            return None
        return array

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
        errors = [self._explain(err, records) for err in exc.errors()]
        shown = "; ".join(_format(e) for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return RequestError(422, shown + more, errors[:MAX_LISTED_ERRORS])

    def _explain(self, err: dict, records: bool) -> dict[str, Any]:
        loc = err["loc"]
        found: dict[str, Any] = {"row": loc[0] if loc else None}
        if len(loc) > 1:
            field = loc[1]
            found["field"] = field if records else self.names[int(field)]
        kind = err["type"]
        if kind in ("too_short", "too_long"):
            got = len(err["input"]) if isinstance(err.get("input"), list) else "?"
            found["message"] = f"expected {len(self.names)} values, got {got}"
        elif kind in ("dict_type", "list_type"):
            found["message"] = self._row_shape_hint()
        else:
            found["message"] = _VALUE_MESSAGES.get(kind) or _type_message(err)
        return found

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
    "finite_number": "must be a finite number (NaN and infinity are refused)",
    "greater_than_equal": f"out of range: values must lie within +-{FLOAT32_MAX:.4g}",
    "less_than_equal": f"out of range: values must lie within +-{FLOAT32_MAX:.4g}",
}

_JSON_TYPES = {
    "str": "a string",
    "NoneType": "null",
    "bool": "a boolean",
    "dict": "an object",
    "list": "an array",
}


def _type_message(err: dict) -> str:
    got = _JSON_TYPES.get(type(err.get("input")).__name__, type(err.get("input")).__name__)
    return f"must be a number, got {got}"


def _format(error: dict) -> str:
    where = f"row {error['row']}"
    if "field" in error:
        where += f", field {error['field']!r}"
    return f"{where}: {error['message']}"
