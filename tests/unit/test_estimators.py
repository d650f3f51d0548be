"""Base estimators by name, and the recommended configuration built from the settings."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from selftrain import (
    SelfTrainingClassifier,
    SelfTrainingSettings,
    make_estimator,
    recommended_classifier,
)
from selftrain.estimators import ESTIMATOR_NAMES
from selftrain.recommended import build_classifier


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_every_named_estimator_fits_and_gives_probabilities(iris_semi, name):
    X, y_true, _ = iris_semi
    model = make_estimator(name, random_state=0).fit(X[::3], y_true[::3])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.score(X, y_true) > 0.8


@pytest.mark.parametrize("name", ["logistic_regression", "svc", "knn"])
def test_scale_sensitive_estimators_come_with_a_scaler(name):
    model = make_estimator(name)
    assert isinstance(model, Pipeline) and isinstance(model.steps[0][1], StandardScaler)


def test_seeded_estimators_are_fresh_and_deterministic(iris_semi):
    X, y_true, _ = iris_semi
    first, second = make_estimator("random_forest", 1), make_estimator("random_forest", 1)
    assert first is not second
    np.testing.assert_array_equal(first.fit(X, y_true).predict_proba(X),
                                  second.fit(X, y_true).predict_proba(X))


def test_unknown_estimator_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"base_estimator='xgboost' is not known.*random_forest"):
        make_estimator("xgboost")


def test_build_classifier_follows_the_settings():
    settings = SelfTrainingSettings(base_estimator="knn", criterion="k_best", k_best=5.0,
                                    max_rounds=4, balanced=False, stopping="holdout")
    clf = build_classifier(settings, random_state=3)
    assert isinstance(clf, SelfTrainingClassifier)
    assert (clf.criterion, clf.k_best, clf.max_iter, clf.balanced) == ("k_best", 5, 4, False)
    assert isinstance(clf.k_best, int)
    assert (clf.stopping, clf.random_state) == ("holdout", 3)
    assert clone(clf).get_params()["max_iter"] == 4


def test_recommended_classifier_is_the_default_settings():
    clf = recommended_classifier(random_state=0)
    defaults = SelfTrainingSettings()
    assert clf.criterion == defaults.criterion and clf.balanced == defaults.balanced
    assert clf.teacher == defaults.teacher and clf.max_iter == defaults.max_rounds
    assert clf.stopping == defaults.stopping == "cv"  # the guard is part of the recommendation
    assert type(clf.estimator).__name__ == "AutoClassifier" and defaults.base_estimator == "auto"
    assert clf.n_jobs == defaults.n_jobs


def test_recommended_classifier_fits_digits_with_few_labels():
    X, y = load_digits(return_X_y=True)
    X, y = X[:500], y[:500]
    y_semi = np.where(np.random.RandomState(0).rand(500) < 0.8, -1, y)
    clf = recommended_classifier("random_forest", random_state=0).set_params(
        max_iter=2, estimator__n_estimators=30)
    clf.fit(X, y_semi)
    assert clf.n_iter_ >= 1
    pseudo = clf.labeled_iter_ > 0
    assert np.mean(clf.transduction_[pseudo] == y[pseudo]) > 0.85


def test_auto_chooses_by_cross_validation_on_the_labeled_rows_and_records_it():
    rng = np.random.RandomState(0)  # a linear boundary in 30 dimensions: the forest's worst
    X = rng.randn(750, 30)
    y = (X @ rng.randn(30) > 0).astype(int)
    y_semi = np.where(rng.rand(750) < 0.8, -1, y)
    clf = recommended_classifier("auto", random_state=0).set_params(max_iter=1, stopping=None)
    clf.fit(X, y_semi)
    choice = clf.estimator_choice_
    assert set(choice["cv_accuracy"]) == set(ESTIMATOR_NAMES)
    # the logistic regression beats the forest far beyond noise on the labeled rows
    assert choice["chosen"] == "logistic_regression"
    assert choice["cv_accuracy"]["logistic_regression"] > choice["cv_accuracy"]["random_forest"]
    assert clf.history_[0]["estimator_choice"] == choice
    # unguarded, the forest self-trains (the chosen model is the guard's fallback)
    assert choice["self_trainer"] == "random_forest"
    assert type(clf.estimator_).__name__ == "RandomForestClassifier"


def test_auto_with_a_class_of_one_label_takes_the_forest():
    X, y = load_digits(return_X_y=True)
    assert np.bincount(y[:12]).min() == 1  # digits 2..9 have one label each
    assert make_estimator("auto", 0).choose(X[:12], y[:12]) == ("random_forest", {})


def test_auto_keeps_the_forest_unless_a_challenger_wins_beyond_noise(monkeypatch):
    """The burden of proof is on the challenger: on a table where an entry is only a little
    better than the forest in cross-validation, the forest stays."""
    from sklearn.datasets import make_classification

    import selftrain.estimators as estimators

    X, y = make_classification(n_samples=60, n_features=6, n_informative=3,
                               flip_y=0.2, random_state=1)
    chosen, scores = make_estimator("auto", 0).choose(X, y)
    assert max(v for v in scores.values() if v is not None) > scores["random_forest"]
    assert chosen == "random_forest"
    monkeypatch.setattr(estimators, "AUTO_Z", -10.0)  # any challenger that wins at all
    assert make_estimator("auto", 0).choose(X, y)[0] != "random_forest"
