"""The bounded pool (``selftrain.pool``): above ``POOL_MAX_ROWS`` unlabeled rows,
self-training (guard and rounds) works on the labeled rows and a seeded sample of the pool,
with one warning; at or below the bound a fit is exactly what it was."""

import warnings

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import selftrain.pool
from selftrain import SelfTrainingClassifier
from selftrain.pool import bounded_pool
from selftrain.rounds import initial_state


def guarded(seed=0):
    return SelfTrainingClassifier(
        RandomForestClassifier(n_estimators=10, random_state=0), criterion="k_best",
        k_best=0.2, balanced=True, stopping="cv", max_iter=3, random_state=seed)


def test_within_the_bound_nothing_changes(three_class):
    X, _, y = three_class
    state = initial_state(y)
    assert bounded_pool(state, X, 0) == (state, X, None)


def test_a_fit_at_the_bound_is_the_fit_without_one(three_class, monkeypatch):
    X, _, y = three_class
    monkeypatch.setattr(selftrain.pool, "POOL_MAX_ROWS", int((y == -1).sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pool warning at the bound
        at_bound = guarded().fit(X, y)
    monkeypatch.setattr(selftrain.pool, "POOL_MAX_ROWS", 10**9)
    unbounded = guarded().fit(X, y)
    np.testing.assert_array_equal(at_bound.predict_proba(X), unbounded.predict_proba(X))
    np.testing.assert_array_equal(at_bound.transduction_, unbounded.transduction_)
    assert at_bound.cv_check_ == unbounded.cv_check_


def test_above_the_bound_a_seeded_sample_of_the_pool_self_trains(three_class, monkeypatch):
    X, _, y = three_class
    monkeypatch.setattr(selftrain.pool, "POOL_MAX_ROWS", 100)
    message = rf"pool has {(y == -1).sum()} rows: .* sample of 100"
    with pytest.warns(UserWarning, match=message) as caught:
        clf = guarded().fit(X, y)
    assert len([w for w in caught if "pool" in str(w.message)]) == 1  # one warning per fit
    pseudo = clf.labeled_iter_ > 0
    assert 0 < pseudo.sum() <= 100 and clf.cv_check_["checked"]
    assert (clf.labeled_iter_[y != -1] == 0).all()  # every labeled row is kept
    outside = (y == -1) & (clf.labeled_iter_ == -1)
    assert outside.sum() >= (y == -1).sum() - 100 and (clf.transduction_[outside] == -1).all()
    with pytest.warns(UserWarning, match="sample of 100"):
        again = guarded().fit(X, y)
    np.testing.assert_array_equal(again.labeled_iter_, clf.labeled_iter_)  # seeded
    with pytest.warns(UserWarning, match="sample of 100"):
        other = guarded(seed=1).fit(X, y)
    assert not np.array_equal(other.labeled_iter_, clf.labeled_iter_)  # another sample


def test_the_bounded_pool_keeps_a_holdout_slice_labeled(three_class, monkeypatch):
    X, _, y = three_class
    monkeypatch.setattr(selftrain.pool, "POOL_MAX_ROWS", 100)
    clf = SelfTrainingClassifier(RandomForestClassifier(n_estimators=10, random_state=0),
                                 criterion="k_best", k_best=0.2, stopping="holdout",
                                 random_state=0)
    with pytest.warns(UserWarning, match="sample of 100"):
        clf.fit(X, y)
    assert (clf.labeled_iter_[y != -1] == 0).all()
    np.testing.assert_array_equal(clf.transduction_[y != -1], y[y != -1])
    assert ((clf.labeled_iter_ == -1) == (clf.transduction_ == -1)).all()
