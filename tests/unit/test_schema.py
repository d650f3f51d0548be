"""The packaged model's files: what is saved is what is loaded."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from selftrain import SelfTrainingClassifier
from selftrain.schema import MODEL_FILE, SCHEMA_FILE, FeatureSchema, load_model, save_model


def test_schema_from_frame_uses_plain_python_values():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2]})
    schema = FeatureSchema.from_frame(frame, np.array([0, 1]))
    assert schema.feature_names == ["a", "b"]
    assert schema.dtypes == ["float64", "int64"]
    assert schema.classes == [0, 1] and all(type(c) is int for c in schema.classes)


def test_model_and_schema_round_trip(three_class, tmp_path):
    X, _, y = three_class
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = SelfTrainingClassifier(LogisticRegression(), max_iter=2).fit(frame, y)
    schema = FeatureSchema.from_frame(frame, model.classes_)
    save_model(tmp_path / "pkg", model, schema)
    assert {p.name for p in (tmp_path / "pkg").iterdir()} == {MODEL_FILE, SCHEMA_FILE}
    loaded, loaded_schema = load_model(tmp_path / "pkg")
    assert loaded_schema == schema
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(loaded.transduction_, model.transduction_)


def test_string_classes_survive_the_schema_file(tmp_path):
    schema = FeatureSchema(feature_names=["x"], dtypes=["float64"], classes=["cat", "dog"])
    save_model(tmp_path, {"any": "object"}, schema)
    assert load_model(tmp_path)[1].classes == ["cat", "dog"]
