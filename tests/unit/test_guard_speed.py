"""What makes the guard cheap must not change what it decides: the folds self-train a
lighter forest (``GUARD_TREES``), the kept model keeps the base's trees, and a labeled-only
fallback that is the base itself is not fitted a second time per fold."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from selftrain import SelfTrainingClassifier, mask_labels
from selftrain.driver import GUARD_TREES, cv_guard, guard_estimator
from selftrain.rounds import initial_state
from selftrain.selection import SelectionPolicy

POLICY = SelectionPolicy(criterion="k_best", threshold=0.75, k_best=30, balanced=True,
                         teacher=None, teacher_weight=0.5)


class CountedForest(RandomForestClassifier):
    """A forest that records the size of every forest it fits (in this process)."""

    fitted: list[int] = []

    def fit(self, X, y, sample_weight=None):
        CountedForest.fitted.append(self.n_estimators)
        return super().fit(X, y, sample_weight=sample_weight)


class SameForest(RandomForestClassifier):
    """The same model as a RandomForestClassifier, but not recognisably the same estimator:
    the guard fits it per fold, as it fits any fallback."""


@pytest.fixture(scope="module")
def table():
    X, y = make_classification(n_samples=400, n_features=10, n_informative=5, n_classes=3,
                               random_state=0)
    return X, mask_labels(y, labeled=0.15, random_state=0)


def test_the_configured_rule_self_trains_a_lighter_forest_in_the_folds(table):
    """The configured rule's folds fit GUARD_TREES trees; scikit-learn's plain rule (weighed
    next, when the first is not adopted) and the kept model keep the base's 60."""
    X, y = table
    CountedForest.fitted.clear()
    clf = SelfTrainingClassifier(CountedForest(n_estimators=60, random_state=0),
                                 criterion="k_best", k_best=30, max_iter=3, stopping="cv",
                                 n_jobs=1, random_state=0).fit(X, y)
    assert GUARD_TREES < 60 and "plain" in clf.cv_check_["candidates"]  # both rules weighed
    n_light = CountedForest.fitted.count(GUARD_TREES)
    assert n_light >= 3 and CountedForest.fitted[:n_light] == [GUARD_TREES] * n_light
    assert set(CountedForest.fitted[n_light:]) == {60}  # plain rule's folds, then the fit
    assert CountedForest.fitted.count(60) > clf.n_iter_ + 1  # more than the fit's own rounds
    assert clf.estimator_.n_estimators == 60 and len(clf.estimator_.estimators_) == 60


def test_with_the_base_forest_in_every_fold_the_verdict_is_the_previous_guards(table,
                                                                               monkeypatch):
    """GUARD_TREES at the base's size gives the guard before the lighter forest: one round 0
    per fold judges both rules (the plain rule's round 0 is the same fit)."""
    import selftrain.driver as driver

    X, y = table
    state = initial_state(y)
    base = RandomForestClassifier(n_estimators=60, random_state=0)
    monkeypatch.setattr(driver, "GUARD_TREES", 60)
    check = cv_guard(state, X, base, POLICY, cv=3, max_iter=3, random_state=0, n_jobs=1,
                     fallback=SameForest(n_estimators=60, random_state=0))  # the old path
    same = cv_guard(state, X, base, POLICY, cv=3, max_iter=3, random_state=0, n_jobs=1,
                    fallback=RandomForestClassifier(n_estimators=60, random_state=0))
    assert set(check["candidates"]) == {"configured", "plain"} and check == same


def test_guard_estimator_lightens_only_forests_with_more_trees():
    light = guard_estimator(RandomForestClassifier(n_estimators=100, max_depth=7,
                                                   random_state=3))
    assert light.get_params() == RandomForestClassifier(
        n_estimators=GUARD_TREES, max_depth=7, random_state=3).get_params()
    small = RandomForestClassifier(n_estimators=GUARD_TREES - 5)
    assert guard_estimator(small) is small
    logreg = LogisticRegression()
    assert guard_estimator(logreg) is logreg


def test_a_fallback_equal_to_the_base_is_not_refitted_and_gives_the_same_verdict(table):
    X, y = table
    state = initial_state(y)
    base = CountedForest(n_estimators=10, random_state=0)  # below GUARD_TREES: kept as is

    def guard(fallback):
        CountedForest.fitted.clear()
        check = cv_guard(state, X, base, POLICY, cv=3, max_iter=3, random_state=0,
                         n_jobs=1, fallback=fallback)
        return check, len(CountedForest.fitted)

    reused, n_reused = guard(CountedForest(n_estimators=10, random_state=0))
    refitted, n_refitted = guard(SameForest(n_estimators=10, random_state=0))
    assert reused == refitted  # round 0's hits are the fallback's hits
    assert n_reused == n_refitted  # SameForest's fits are not counted: 3 fewer in all
    alone, n_alone = guard(None)
    assert alone == reused and n_alone == n_reused
    other, _ = guard(CountedForest(n_estimators=10, random_state=1))  # another model
    assert other["baseline_accuracy"] != reused["baseline_accuracy"] or other == reused


def test_a_different_fallback_is_still_fitted_per_fold(table):
    X, y = table
    state = initial_state(y)
    base = RandomForestClassifier(n_estimators=10, random_state=0)
    check = cv_guard(state, X, base, POLICY, cv=3, max_iter=3, random_state=0, n_jobs=1,
                     fallback=DummyClassifier(strategy="most_frequent"))
    labeled = y != -1
    folds = StratifiedKFold(3, shuffle=True, random_state=0)  # the guard's folds
    majority = cross_val_predict(DummyClassifier(strategy="most_frequent"), X[labeled],
                                 y[labeled], cv=folds)
    assert check["baseline_accuracy"] == pytest.approx(np.mean(majority == y[labeled]))
