"""The opt-in features: balanced selection, history and callback, stopping, teacher, calibration."""

import math

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from selftrain import SelfTrainingClassifier


def pseudo_label_shares(clf, n_classes):
    pseudo = clf.labeled_iter_ > 0
    counts = np.bincount(np.asarray(clf.transduction_[pseudo], dtype=int), minlength=n_classes)
    return counts / counts.sum()


def test_balanced_selection_keeps_pseudo_labels_at_the_label_prior(imbalanced):
    X, _, y = imbalanced
    prior = np.bincount(y[y != -1]) / (y != -1).sum()
    kwargs = {"criterion": "k_best", "k_best": 30, "max_iter": 3}
    plain = SelfTrainingClassifier(LogisticRegression(), **kwargs).fit(X, y)
    balanced = SelfTrainingClassifier(LogisticRegression(), balanced=True, **kwargs).fit(X, y)
    assert pseudo_label_shares(plain, 3)[0] > 0.95  # the majority swamps the minorities
    np.testing.assert_allclose(pseudo_label_shares(balanced, 3), prior, atol=0.05)
    assert pseudo_label_shares(balanced, 3).min() > 0


def test_balanced_threshold_selection_keeps_pseudo_labels_near_the_prior(imbalanced):
    X, _, y = imbalanced
    prior = np.bincount(y[y != -1]) / (y != -1).sum()
    clf = SelfTrainingClassifier(LogisticRegression(), balanced=True, threshold=0.4,
                                 max_iter=3).fit(X, y)
    assert (clf.labeled_iter_ > 0).sum() > 0
    np.testing.assert_allclose(pseudo_label_shares(clf, 3), prior, atol=0.1)


def test_balanced_threshold_adds_nothing_rather_than_swamping(imbalanced):
    X, _, y = imbalanced
    plain = SelfTrainingClassifier(LogisticRegression(), max_iter=3).fit(X, y)
    assert pseudo_label_shares(plain, 3)[0] > 0.95  # what balancing prevents
    clf = SelfTrainingClassifier(LogisticRegression(), balanced=True, max_iter=3).fit(X, y)
    # no minority row clears 0.75: the scarcest class sets the pace, here zero rows
    assert (clf.labeled_iter_ > 0).sum() == 0
    assert clf.termination_condition_ == "no_change"


def test_history_counts_what_each_round_added(three_class):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression(), criterion="k_best", k_best=0.1,
                                 max_iter=4).fit(X, y)
    assert len(clf.history_) == clf.n_iter_ + 1
    assert [r["round"] for r in clf.history_] == list(range(clf.n_iter_ + 1))
    assert clf.history_[0]["n_added"] == 0 and clf.history_[0]["mean_confidence"] is None
    assert clf.history_[1]["n_added"] == math.ceil(0.1 * (y == -1).sum())  # a share of the pool
    for record in clf.history_[1:]:
        rows = clf.labeled_iter_ == record["round"]
        per_class = np.bincount(clf.transduction_[rows], minlength=3)
        assert record["added_per_class"] == {str(c): int(n) for c, n in enumerate(per_class)}
        assert 0 < record["mean_confidence"] <= 1
        assert record["val_score"] is None
    assert clf.history_[-1]["n_pseudo_labeled"] == int((clf.labeled_iter_ > 0).sum())
    assert clf.best_iter_ == clf.n_iter_


def test_callback_sees_every_round_with_its_model(three_class):
    X, _, y = three_class
    seen = []
    clf = SelfTrainingClassifier(
        LogisticRegression(), max_iter=3, criterion="k_best", k_best=20,
        callback=lambda state, model, record: seen.append((state, model, record)),
    ).fit(X, y)
    assert [record for _, _, record in seen] == clf.history_
    for state, model, record in seen:
        assert state.round == record["round"]
        assert int(state.labeled.sum()) == record["n_labeled"]
        assert model.predict(X[:5]).shape == (5,)
    np.testing.assert_array_equal(seen[-1][1].predict(X), clf.predict(X))


def test_holdout_stopping_keeps_a_best_round_never_worse_than_round_zero(iris_semi):
    X, _, y = iris_semi
    clf = SelfTrainingClassifier(LogisticRegression(), criterion="k_best", k_best=10,
                                 max_iter=6, stopping="holdout", patience=2, random_state=0)
    clf.fit(X, y)
    scores = [r["val_score"] for r in clf.history_]
    assert all(0 <= s <= 1 for s in scores)
    assert 0 <= clf.best_iter_ < len(scores)
    assert scores[clf.best_iter_] == max(scores) >= scores[0]
    assert clf.best_iter_ == scores.index(max(scores))  # the earliest of equal rounds
    assert clf.labeled_iter_.max() <= clf.best_iter_  # later rounds' pseudo-labels dropped
    if clf.termination_condition_ == "early_stopping":
        assert len(scores) - 1 - clf.best_iter_ == 2


def test_holdout_rows_keep_their_true_labels(iris_semi):
    X, _, y = iris_semi
    clf = SelfTrainingClassifier(LogisticRegression(), stopping="holdout",
                                 random_state=0).fit(X, y)
    labeled = y != -1
    np.testing.assert_array_equal(clf.transduction_[labeled], y[labeled])
    assert (clf.labeled_iter_[labeled] == 0).all()
    assert clf.transduction_.shape == y.shape


def test_holdout_split_is_seeded(iris_semi):
    X, _, y = iris_semi
    fits = [SelfTrainingClassifier(LogisticRegression(), stopping="holdout", random_state=3)
            .fit(X, y) for _ in range(2)]
    assert fits[0].history_ == fits[1].history_


def test_teacher_with_zero_weight_changes_nothing(three_class):
    X, _, y = three_class
    kwargs = {"criterion": "k_best", "k_best": 20, "max_iter": 3}
    plain = SelfTrainingClassifier(LogisticRegression(), **kwargs).fit(X, y)
    silent = SelfTrainingClassifier(LogisticRegression(), teacher="label_spreading",
                                    teacher_weight=0.0, **kwargs).fit(X, y)
    np.testing.assert_array_equal(silent.transduction_, plain.transduction_)


def test_teacher_changes_selection_and_labels_accurately(iris_semi):
    X, y_true, y = iris_semi
    kwargs = {"criterion": "k_best", "k_best": 20, "max_iter": 3}
    plain = SelfTrainingClassifier(LogisticRegression(), **kwargs).fit(X, y)
    taught = SelfTrainingClassifier(LogisticRegression(), teacher="label_spreading",
                                    teacher_weight=0.9, **kwargs).fit(X, y)
    pseudo = taught.labeled_iter_ > 0
    assert pseudo.sum() == 60
    assert not np.array_equal(taught.labeled_iter_, plain.labeled_iter_)
    assert np.mean(taught.transduction_[pseudo] == y_true[pseudo]) > 0.9


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_self_trains_an_estimator_without_probabilities(iris_semi, method):
    X, y_true, y = iris_semi
    clf = SelfTrainingClassifier(SVC(), calibration=method, max_iter=2).fit(X, y)
    assert isinstance(clf.estimator_, CalibratedClassifierCV)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    assert clf.score(X, y_true) > 0.85
    assert clf.n_iter_ >= 1 and (clf.labeled_iter_ > 0).any()


def test_k_best_share_is_resolved_against_the_pool():
    clf = SelfTrainingClassifier(criterion="k_best", k_best=0.25)
    assert clf.selection_policy(n_pool=10).k_best == 3
    assert clf.selection_policy(n_pool=1).k_best == 1
    assert SelfTrainingClassifier(criterion="k_best", k_best=7).selection_policy(10).k_best == 7


def test_sparse_input_with_holdout_trains_on_the_held_out_rows_too(iris_semi):
    sparse = pytest.importorskip("scipy.sparse")
    X, _, y = iris_semi
    kwargs = {"stopping": "holdout", "random_state": 0, "max_iter": 3}
    dense = SelfTrainingClassifier(LogisticRegression(), **kwargs).fit(X, y)
    packed = SelfTrainingClassifier(LogisticRegression(), **kwargs).fit(sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(packed.labeled_iter_, dense.labeled_iter_)
    assert [r["val_score"] for r in packed.history_] == [r["val_score"] for r in dense.history_]
    np.testing.assert_array_equal(packed.predict(sparse.csr_matrix(X)), dense.predict(X))
