"""The vectorized preparation of raw columns before the ONNX session gives exactly what the
scikit-learn model's own functions give (``selftrain.onnx_inputs.prepared``)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from selftrain.columns import as_categories, as_numbers, date_parts
from selftrain.onnx_inputs import prepared

FRAMES = {
    "text with gaps": pd.DataFrame({"c": ["x", None, "y", np.nan]}, dtype=object),
    "pandas strings": pd.DataFrame({"c": pd.array(["p", None, "q", "r"], dtype="string")}),
    "booleans": pd.DataFrame({"c": [True, False, True, False]}),
    "nullable booleans": pd.DataFrame({"c": pd.array([True, None, False, True],
                                                     dtype="boolean")}),
    "mixed objects": pd.DataFrame({"c": ["a", 1.0, True, None]}, dtype=object),
    "whole floats": pd.DataFrame({"c": [1.0, 2.5, np.nan, 3.0]}),
    "integers": pd.DataFrame({"c": [1, 2, 3, 4]}),
    "all missing": pd.DataFrame({"c": [None, None, None, None]}, dtype=object),
}


@pytest.mark.parametrize("name", FRAMES)
def test_categories_are_spelled_as_as_categories_spells_them(name):
    frame = FRAMES[name]
    got = prepared(functools.partial(as_categories), frame)
    np.testing.assert_array_equal(got, np.asarray(as_categories(frame)))


@pytest.mark.parametrize("name", ["whole floats", "integers", "booleans", "mixed objects"])
def test_numbers_are_read_as_as_numbers_reads_them(name):
    frame = FRAMES[name]
    got = prepared(functools.partial(as_numbers), frame)
    np.testing.assert_array_equal(np.asarray(got, dtype=np.float64),
                                  np.asarray(as_numbers(frame)))


def test_date_parts_are_those_of_date_parts():
    rng = np.random.default_rng(0)
    stamps = pd.Timestamp("1901-03-04") + pd.to_timedelta(rng.integers(0, 60_000, 300), "D") \
        + pd.to_timedelta(rng.integers(0, 86_400, 300), "s")
    text = stamps.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object)
    text[::7] = stamps[::7].strftime("%Y-%m-%d")
    text[::11] = None
    text[5] = "not a date"
    text[6] = "2024-02-29T23:59:59+02:00"
    frame = pd.DataFrame({"a": text, "b": pd.Series(stamps[::-1])})
    got = prepared(functools.partial(date_parts), frame)
    np.testing.assert_array_equal(got, np.asarray(date_parts(frame), dtype=np.float64))
