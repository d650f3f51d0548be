"""A self-trained model of raw records (``tabular_pipeline``) on a small synthetic table
where ``x`` drives the label: the id column is ignored, and more ``x`` means more class 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from selftrain import SelfTrainingClassifier, mask_labels
from selftrain.columns import infer_roles, tabular_pipeline

N_ROWS = 600


def make_table(n: int, seed: int) -> pd.DataFrame:
    """``label`` is 1 when ``x`` (plus a little noise) is positive; ``z`` and ``color``
    are noise; ``id`` is a row number."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({
        "id": np.arange(1000, 1000 + n),
        "x": x,
        "z": rng.normal(size=n),
        "color": rng.choice(["red", "green", "blue"], size=n),
        "label": (x + 0.3 * rng.normal(size=n) > 0).astype(int),
    })


@pytest.fixture(scope="module")
def tabular_model():
    """(fitted model, held-out rows without the label, their labels, the column roles)."""
    train, test = make_table(N_ROWS, seed=0), make_table(200, seed=1)
    roles = infer_roles(train, exclude=["id", "label"])
    y = mask_labels(train["label"].to_numpy(), labeled=0.1, random_state=0)
    model = SelfTrainingClassifier(
        tabular_pipeline(RandomForestClassifier(50, random_state=0), roles),
        criterion="k_best", k_best=0.1, max_iter=3, random_state=0)
    model.fit(train.drop(columns="label"), y)
    return model, test.drop(columns="label"), test["label"].to_numpy(), roles


def test_the_id_column_is_not_a_feature(tabular_model):
    _, _, _, roles = tabular_model
    assert "id" not in roles.features
    assert set(roles.features) == {"x", "z", "color"}


def test_changing_the_ids_does_not_change_the_predictions(tabular_model):
    model, X, _, _ = tabular_model
    before = model.predict_proba(X)
    for ids in (X["id"].to_numpy()[::-1],               # shuffled among themselves
                np.arange(len(X)) * 7_919 + 10**9,      # far outside the training ids
                np.zeros(len(X), dtype=int)):           # all the same
        np.testing.assert_array_equal(model.predict_proba(X.assign(id=ids)), before)


def test_more_x_raises_the_probability_of_class_1(tabular_model):
    model, X, _, _ = tabular_model
    one = list(model.classes_).index(1)
    low = model.predict_proba(X.assign(x=-2.0))[:, one]
    high = model.predict_proba(X.assign(x=2.0))[:, one]
    assert np.all(high >= low), "some row is less likely class 1 at x=+2 than at x=-2"
    assert np.mean(high - low) > 0.5
    # along a grid of x, the mean probability of class 1 never falls
    grid = [model.predict_proba(X.assign(x=v))[:, one].mean() for v in np.linspace(-2, 2, 9)]
    assert np.all(np.diff(grid) >= 0), np.round(grid, 3)


def test_the_model_learned_the_rule(tabular_model):
    model, X, y, _ = tabular_model
    assert np.mean(model.predict(X) == y) >= 0.85
