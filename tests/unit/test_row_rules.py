"""The endpoint's row rules over a whole table (``selftrain.row_rules``): the rows batch
scoring refuses are the rows the endpoint's validator refuses, one record at a time."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from selftrain.row_rules import RequestError, RowValidator, check_rows, missing_columns
from selftrain.schema import FeatureSchema

SCHEMA = FeatureSchema(
    feature_names=["age", "city", "signup"], dtypes=["float64", "object", "object"],
    classes=[0, 1], roles={"age": "numeric", "city": "categorical", "signup": "datetime"},
    categories={"city": {"frequent": ["Paris", "Lyon", "True", "1"], "infrequent": []}})

# (age, city, signup), refused by the endpoint or not
RECORDS = [
    ((41.0, "Paris", "2024-01-31"), None),
    ((None, None, None), None),                       # missing everywhere: filled by the model
    ((7, "Atlantis", "2024-01-31T10:00:00"), None),   # an unseen category is answered
    ((3.5, True, "2024-02-01"), None),
    (("abc", "Paris", "2024-01-31"), "age"),
    ((True, "Paris", "2024-01-31"), "age"),
    ((math.inf, "Paris", "2024-01-31"), "age"),
    ((1e39, "Paris", "2024-01-31"), "age"),
    ((1.0, "Paris", "yesterday"), "signup"),
    ((1.0, "Paris", "2024-13-45"), "signup"),
    ((1.0, -math.inf, "2024-01-01"), "city"),
]


def frame_of(records) -> pd.DataFrame:
    return pd.DataFrame([list(r) for r, _ in records], columns=SCHEMA.feature_names,
                        dtype=object)


def test_each_refused_row_is_named_with_its_field_and_reason():
    features, refused = check_rows(frame_of(RECORDS), SCHEMA)
    want = {i: field for i, (_, field) in enumerate(RECORDS) if field}
    assert dict(zip(refused["position"], refused["field"], strict=True)) == want
    reasons = dict(zip(refused["position"], refused["reason"], strict=True))
    assert reasons[4] == "must be a number or null, got text 'abc'"
    assert reasons[5] == "must be a number or null, got a boolean"
    assert "finite" in reasons[6] and "out of range" in reasons[7]
    assert "ISO-8601" in reasons[8] and "'yesterday'" in reasons[8]
    assert features["age"].dtype == np.float64 and np.isnan(features["age"][1])


def test_the_endpoint_refuses_the_same_rows():
    validator = RowValidator(SCHEMA, max_rows=10)
    for i, (record, field) in enumerate(RECORDS):
        body = json.dumps([dict(zip(SCHEMA.feature_names, record, strict=True))]).encode()
        try:
            validator.check(body)
            endpoint = None
        except RequestError as exc:
            endpoint = exc.errors[0].get("field") if exc.errors else "?"
        assert endpoint == field, (i, record, endpoint)


@pytest.mark.parametrize(("text", "spelled"), [("true", "True"), ("1.0", "1"),
                                               ("Lyon", "Lyon"), ("007", "7")])
def test_csv_text_is_spelled_as_the_training_reader_typed_it(text, spelled):
    features, refused = check_rows(frame_of([((1.0, text, None), None)]), SCHEMA)
    assert refused.empty and features["city"][0] == spelled


def test_a_missing_feature_column_is_named():
    assert missing_columns(SCHEMA, ["age", "signup", "id"]) == ["city"]
