"""Compiled inference (``selftrain.compiled``): every registry estimator, behind the raw-record
preprocessor, packaged with its ONNX graph and loaded back through the integrity check,
answers as in-process scikit-learn does, on digits and on a mixed-type table with missing
values, unseen categories and dates. A model skl2onnx cannot convert falls back to
scikit-learn and says why."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from selftrain.compiled import (
    COMPILED_FILE,
    ONNX_FILE,
    TOLERANCE,
    compile_and_verify,
    load_predictor,
)
from selftrain.estimators import ESTIMATOR_NAMES
from selftrain.integrity import IntegrityError
from selftrain.schema import FeatureSchema, save_model
from tests.model.registry_models import TABLES, fitted


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_compiled_answers_equal_scikit_learn(name, table, tmp_path):
    model, schema, rows = fitted(name, table)
    half = len(rows) // 2
    record = save_model(tmp_path, model, schema, held_out=[rows.iloc[:half]])
    assert {ONNX_FILE, COMPILED_FILE} <= set(record["sha256"])
    predictor = load_predictor(tmp_path, record, "test model")
    assert predictor.kind == "onnx", predictor.why
    assert "verified" in predictor.why
    fresh = rows.iloc[half:]  # rows the packaging check never saw
    # a frame, one row, and rows as arrays in the schema's order (as the endpoint parses)
    for batch, same in ((fresh, fresh), (fresh.iloc[:1], fresh.iloc[:1]),
                        (fresh.to_numpy(dtype=object), fresh)):
        got = predictor.predict_proba(batch)
        np.testing.assert_allclose(got, model.predict_proba(same), rtol=0, atol=TOLERANCE)
        np.testing.assert_array_equal(predictor.labels(got), model.predict(same))
    # the graph answered: near-ties settled by scikit-learn are the exception
    assert predictor.settled_rows <= 0.2 * (2 * len(fresh) + 1), predictor.settled_rows


class Unconvertible(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has no converter for: predicts the training class shares."""

    def fit(self, X, y):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.share_ = counts / counts.sum()
        return self

    def predict_proba(self, X):
        return np.tile(self.share_, (len(X), 1))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def test_a_model_that_cannot_compile_is_served_by_scikit_learn_with_the_reason(tmp_path,
                                                                              monkeypatch):
    import selftrain.schema

    # reviewed for this test: skops loads only the types the packaged-model list names
    monkeypatch.setattr(selftrain.schema, "TRUSTED_TYPES", (
        *selftrain.schema.TRUSTED_TYPES, f"{__name__}.Unconvertible"))
    model, schema, rows = fitted("random_forest", "mixed")
    model.steps[-1] = ("model", Unconvertible().fit(np.zeros((4, 1)), [0, 1, 1, 2]))
    record = save_model(tmp_path, model, schema, held_out=[rows])
    assert ONNX_FILE not in record["sha256"] and COMPILED_FILE in record["sha256"]
    predictor = load_predictor(tmp_path, record, "test model")
    assert predictor.kind == "sklearn"
    assert "cannot convert" in predictor.why and "Unconvertible" in predictor.why
    np.testing.assert_array_equal(predictor.predict_proba(rows), model.predict_proba(rows))
    info = json.loads((tmp_path / COMPILED_FILE).read_text())
    assert info["kind"] == "sklearn" and info["verified"] is False


def test_a_compiled_model_that_disagrees_is_not_kept(tmp_path):
    model, _, rows = fitted("logistic_regression", "mixed")
    compiled, verdict = compile_and_verify(model, [rows], tolerance=0.0)
    assert compiled is None and not verdict.ok
    assert "disagrees with scikit-learn" in verdict.why and verdict.max_abs_diff > 0


def test_a_modified_graph_is_refused(tmp_path):
    model, schema, rows = fitted("random_forest", "digits")
    record = save_model(tmp_path, model, schema, held_out=[rows])
    graph = tmp_path / ONNX_FILE
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="model.onnx does not match"):
        load_predictor(tmp_path, record, "test model")


def test_a_model_packaged_without_compiling_is_served_by_scikit_learn(tmp_path):
    model, schema, rows = fitted("knn", "digits")
    record = save_model(tmp_path, model, schema)
    predictor = load_predictor(tmp_path, record, "test model")
    assert predictor.kind == "sklearn" and "without a compiled form" in predictor.why
    np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))


def test_a_preprocessor_of_another_shape_never_breaks_packaging(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    model = Pipeline([("preprocess", ColumnTransformer([("s", StandardScaler(), slice(0, 2))])),
                      ("model", LogisticRegression())]).fit(X, (X["a"] > 20).astype(int))
    schema = FeatureSchema.from_frame(X.iloc[:0], model.classes_)
    record = save_model(tmp_path, model, schema, held_out=[X])
    predictor = load_predictor(tmp_path, record, "odd model")
    assert predictor.kind == "sklearn" and "cannot compile" in predictor.why
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))
