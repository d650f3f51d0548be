"""Every registry estimator behind the raw-record preprocessor, fitted on digits or on a
mixed-type table: what the compiled-inference tests (in process, and served by a real
``bentoml serve``) compare against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from selftrain.columns import infer_roles, known_categories, learned_medians, tabular_pipeline
from selftrain.estimators import make_estimator
from selftrain.schema import FeatureSchema

TABLES = ("digits", "mixed")


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    """Numbers with gaps, text and boolean categories (one rare, some missing), an ISO date
    column with blanks, and a 3-class label that depends on all of them."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nice", "Lille", "Brest"], n,
                      p=[.4, .3, .2, .095, .005]).astype(object)
    city[rng.random(n) < 0.05] = None
    active = rng.random(n) < 0.5
    age = np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n).astype(float))
    income = rng.normal(3000, 800, n).round(2)
    signup = (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
              ).strftime("%Y-%m-%d").to_numpy(dtype=object)
    signup[rng.random(n) < 0.05] = None
    score = (np.nan_to_num(age, nan=40) / 40 + active + (city == "Lille") + income / 3000
             + rng.normal(0, .3, n))
    label = np.digitize(score, [2.0, 2.8])
    return pd.DataFrame({"id": np.arange(n), "city": city, "active": active, "age": age,
                         "income": income, "signup": signup, "label": label})


def fitted(name: str, table: str):
    """(model of raw records, its schema, held-out raw rows) for one estimator and table."""
    if table == "digits":
        X, y = load_digits(return_X_y=True, as_frame=True)
        train, test, y_train = X.iloc[:1000], X.iloc[1000:], y.iloc[:1000]
        roles = infer_roles(train)
    else:
        frame = mixed_table(900, 0)
        train, test = frame.iloc[:600], frame.iloc[600:].copy()
        test.loc[test.index[:5], "city"] = "Atlantis"  # never seen in training
        test.loc[test.index[5:10], "age"] = np.nan
        y_train = train.pop("label")
        test = test.drop(columns="label")
        roles = infer_roles(train, exclude=["id"], categorical=["active"])
        assert roles.columns == {"city": "categorical", "active": "categorical",
                                 "age": "numeric", "income": "numeric", "signup": "datetime"}
    model = tabular_pipeline(make_estimator(name, 0), roles).fit(train, y_train)
    pre = model.steps[0][1]
    schema = FeatureSchema.from_frame(train[roles.features].iloc[:0], model.classes_, roles,
                                      known_categories(pre), learned_medians(pre))
    return model, schema, test[roles.features]
