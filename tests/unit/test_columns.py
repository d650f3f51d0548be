"""Column roles, the preprocessor, and the estimator on a mixed-dtype frame as its owner has it."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from selftrain import SelfTrainingClassifier, infer_roles, tabular_pipeline
from selftrain.columns import MISSING_CATEGORY, category_text, known_categories, learned_medians
from selftrain.labels import is_unlabeled


def mixed_frame(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Text with blanks, a boolean, a pandas category, missing numbers, ISO dates, a free-text
    column; string labels with ``None`` for unlabeled."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nice"], n).astype(object)
    city[::13] = None
    active = rng.random(n) < 0.5
    age = np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n).astype(float))
    frame = pd.DataFrame({
        "city": city, "active": active, "age": age,
        "tier": pd.Categorical(rng.choice(["a", "b"], n)),
        "signup": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D")
                   ).strftime("%Y-%m-%d"),
        "note": [f"call {i} said {i * 7}" for i in range(n)],
    })
    label = np.where((city == "Paris") | active, "churn", "stay").astype(object)
    label[rng.permutation(n)[: int(n * 0.7)]] = None
    return frame, label


def test_roles_are_inferred_and_free_text_is_dropped_with_the_reason():
    frame, _ = mixed_frame()
    roles = infer_roles(frame)
    assert roles.columns == {"city": "categorical", "active": "categorical", "age": "numeric",
                             "tier": "categorical", "signup": "datetime"}
    assert "identifier-like or free text: 240 distinct values" in roles.dropped["note"]


def test_declarations_win_and_unknown_columns_are_named():
    frame, _ = mixed_frame()
    roles = infer_roles(frame, categorical=["age"], drop=["note"])
    assert roles.columns["age"] == "categorical"
    assert roles.dropped == {"note": "listed in data.drop"}
    with pytest.raises(ValueError, match=r"data.datetime names column\(s\) \['when'\]"):
        infer_roles(frame, datetime=["when"])


def test_estimator_fits_the_raw_frame_and_answers_raw_records():
    frame, label = mixed_frame()
    roles = infer_roles(frame)
    clf = SelfTrainingClassifier(tabular_pipeline(RandomForestClassifier(30, random_state=0),
                                                  roles),
                                 criterion="k_best", k_best=0.2, max_iter=3, random_state=0)
    clf.fit(frame, label)
    assert list(clf.classes_) == ["churn", "stay"]
    assert clf.estimator_.steps[0][0] == "preprocess"
    labeled = ~is_unlabeled(label)
    truth = np.where((frame["city"] == "Paris") | frame["active"], "churn", "stay")
    assert np.mean(clf.predict(frame) == truth) > 0.85
    unseen = pd.DataFrame([{"city": "Marseille", "active": None, "age": None, "tier": "z",
                            "signup": "not a date", "note": "x"}])
    proba = clf.predict_proba(unseen)  # unseen category, missing values: answered
    assert proba.shape == (1, 2) and np.isfinite(proba).all()
    pre = clf.estimator_.steps[0][1]
    # fitted on every row, labeled or not: the median is the median of all ages
    assert learned_medians(pre)["age"] == pytest.approx(np.nanmedian(frame["age"]))
    assert labeled.sum() < len(frame)
    categories = known_categories(pre)["city"]
    assert set(categories["frequent"]) == {"Paris", "Lyon", "Nice", MISSING_CATEGORY}


@pytest.mark.parametrize(("value", "text"), [
    (None, MISSING_CATEGORY), (float("nan"), MISSING_CATEGORY), (True, "True"),
    (np.bool_(False), "False"), (3.0, "3"), (2.5, "2.5"), (7, "7"), ("Paris", "Paris"),
])
def test_category_text_spells_training_and_serving_values_alike(value, text):
    assert category_text(value) == text
