"""Model lines: the history of production switches, and the packaged record's round trip."""

from __future__ import annotations

import pytest

from selftrain.config import PipelineConfig, load_config
from selftrain.lines import (
    NothingToRollBack,
    history_path,
    production_stack,
    production_tag,
    record_promotion,
    record_rollback,
)
from selftrain.record import PackagedModel
from selftrain.schema import FeatureSchema


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    return tmp_path / "bentoml"


def test_production_is_the_last_promotion_and_rollback_undoes_it():
    assert production_tag("digits") is None
    for version in ("a", "b", "c"):
        record_promotion("digits", f"digits:{version}", by="test")
    assert production_stack("digits") == ["digits:c", "digits:b", "digits:a"]
    event = record_rollback("digits", by="test")
    assert (event.previous, event.tag) == ("digits:c", "digits:b")
    assert production_tag("digits") == "digits:b"
    record_rollback("digits", by="test")
    assert production_tag("digits") == "digits:a"
    with pytest.raises(NothingToRollBack, match="digits:a is the only production model left"):
        record_rollback("digits", by="test")
    assert production_tag("other") is None  # lines are independent


def test_a_torn_history_line_spoils_only_itself():
    record_promotion("digits", "digits:a", by="test")
    with open(history_path("digits"), "a") as fh:
        fh.write('{"at": "2026-01-01", "action": "prom')  # a write cut short by a kill
    record_promotion("digits", "digits:b", by="test")
    assert production_stack("digits") == ["digits:b", "digits:a"]


@pytest.mark.parametrize(("overrides", "line"), [
    ([], "digits"),
    (["data.path=data/raw/Churn Customers.parquet"], "churn-customers"),
    (["project=Fraud", "data.path=data/raw/x.csv"], "fraud"),
    (["project=fraud", "serving.model_name=fraud-v2"], "fraud-v2"),
])
def test_the_line_is_named_by_the_model_name_the_project_or_the_table(overrides, line):
    assert load_config(None, overrides).model_line == line


def test_the_packaged_record_reads_back_from_its_metadata():
    features = FeatureSchema(feature_names=["city", "age"], dtypes=["object", "float64"],
                             classes=["churn", "stay"],
                             roles={"city": "categorical", "age": "numeric"},
                             categories={"city": {"known": ["Lille", "Paris"]}},
                             medians={"age": 41.0}, dropped={"customer": "id"})
    record = PackagedModel.build("churn", "run1", features,
                                 {"test_accuracy": 0.9, "per_class": {"a": 1}},
                                 {"data_fingerprint": "sha256:1", "params_hash": "p",
                                  "git_commit": "c", "params_path": None},
                                 PipelineConfig().model_dump(mode="json"))
    back = PackagedModel.from_metadata("churn", record.metadata(), record.labels())
    assert back.features == features
    assert back.facts == {"test_accuracy": 0.9, "data_fingerprint": "sha256:1",
                          "params_hash": "p", "git_commit": "c"}
    assert back.identity() == ("sha256:1", "p", "c")
    assert back.run == "run1" and back.promoted_at == record.promoted_at
    assert back.config["seed"] == 0
