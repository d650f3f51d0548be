"""One loop: the pipeline serves the model that ``SelfTrainingClassifier.fit`` builds from
the same rows and configuration (the model the benchmarks measure)."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
import pytest

from selftrain.columns import ColumnRoles
from selftrain.config import load_config
from selftrain.recommended import build_classifier
from selftrain.schema import load_model
from tasks.workspace import Workspace

pytestmark = pytest.mark.slow
SMALL = ["self_training.max_rounds=4", "masking.labeled_fraction=0.2", "gate.min_gain=-1",
         "gate.max_regression=1"]


@pytest.mark.parametrize("overrides", [[], ["self_training.stopping=null"],
                                       ["self_training.base_estimator=auto"]],
                         ids=["guarded", "unguarded", "auto"])
def test_pipeline_and_fit_give_the_same_model(prefect_api, workspace, overrides):
    from flows.train import train_pipeline

    config = load_config(None, SMALL + overrides)
    summary = train_pipeline(config, force=True)
    model, schema = load_model(bentoml.models.get(summary["destination"]).path)
    (root,) = [p.parent for p in Path(".selftrain/work").glob("*/X_train_raw.parquet")]
    ws = Workspace(root)
    X_train, y_train = ws.load_frame("X_train_raw"), np.asarray(ws.load("y_train"))
    roles = ColumnRoles(columns=schema.roles)
    clf = build_classifier(config.self_training, config.seed, roles, config.data)
    clf.fit(X_train, y_train)
    X_test = ws.load_frame("X_test_raw")
    np.testing.assert_array_equal(clf.predict_proba(X_test), model.predict_proba(X_test))
    assert summary["chosen_round"] == clf.best_iter_
    choice, check = clf.estimator_choice_, clf.cv_check_
    kept = config.self_training.base_estimator
    if choice is not None:  # auto: the fallback when the guard kept it, else the self-trainer
        kept = choice["chosen"] if check is not None and check["fallback"] else (
            choice["self_trainer"])
    assert summary["base_estimator"] == kept  # the model the pipeline packaged
    if clf.cv_check_ is not None:
        assert summary["guard_z_help"] == pytest.approx(clf.cv_check_["z_help"])
        assert summary["guard_helped_rows"] == clf.cv_check_["helped_rows"]
    else:
        assert summary["guard"] == "not run"
