"""The packaged model's files: what is saved is what is loaded."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from selftrain import SelfTrainingClassifier
from selftrain.integrity import KEY_ENV, IntegrityError
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


def test_a_modified_model_file_is_refused_before_it_is_unpickled(tmp_path):
    schema = FeatureSchema(feature_names=["x"], dtypes=["float64"], classes=[0, 1])
    record = save_model(tmp_path, {"any": "object"}, schema)
    assert load_model(tmp_path, record, "m")[1] == schema  # verifies, then loads
    with open(tmp_path / MODEL_FILE, "ab") as fh:
        fh.write(b"\x00")  # one byte appended after packaging
    with pytest.raises(IntegrityError, match=f"{MODEL_FILE} does not match its recorded SHA-256"):
        load_model(tmp_path, record, "m")


def test_a_record_signed_with_another_key_or_none_is_refused(tmp_path, monkeypatch):
    schema = FeatureSchema(feature_names=["x"], dtypes=["float64"], classes=[0, 1])
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "other.key"))
    foreign = save_model(tmp_path / "m", {"any": "object"}, schema)  # a record of its own
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "ours.key"))
    with pytest.raises(IntegrityError, match="not signed by this installation's key"):
        load_model(tmp_path / "m", foreign, "dropped")
    with pytest.raises(IntegrityError, match="no integrity record"):
        load_model(tmp_path / "m", None, "dropped")
    assert (tmp_path / "ours.key").stat().st_mode & 0o777 == 0o600


def test_a_model_holding_an_unreviewed_type_is_neither_packaged_nor_loaded(tmp_path):
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    from selftrain.integrity import sign_artifacts
    from selftrain.schema import UntrustedModel

    schema = FeatureSchema(feature_names=["x"], dtypes=["float64"], classes=[0, 1])
    hostile = FunctionTransformer(func=os.system)  # loading it would hand out os.system
    with pytest.raises(UntrustedModel, match="system"):
        save_model(tmp_path / "refused", hostile, schema)
    assert not (tmp_path / "refused").exists()
    # the same file written behind save_model's back, and even signed, is not loaded
    target = tmp_path / "smuggled"
    target.mkdir()
    sio.dump(hostile, target / MODEL_FILE)
    (target / SCHEMA_FILE).write_text(schema.model_dump_json())
    record = sign_artifacts(target, [MODEL_FILE, SCHEMA_FILE])
    with pytest.raises(IntegrityError, match="names types outside selftrain.schema.TRUSTED_TYPES"):
        load_model(target, record, "smuggled")
