"""stopping="cv": the cross-validated guard that keeps round 0 unless self-training helps
beyond noise (the burden of proof is on self-training)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from selftrain import SelfTrainingClassifier, make_estimator, mask_labels
from selftrain.driver import HELP_Z

GUARDED = {"criterion": "k_best", "k_best": 0.1, "max_iter": 10, "balanced": True,
           "teacher": "label_spreading", "stopping": "cv", "patience": 5, "random_state": 0}


@pytest.fixture(scope="module")
def harmful():
    """A skewed table on which the recommended self-training loses accuracy (measured)."""
    X, y = make_classification(n_samples=900, n_features=20, n_informative=8, n_redundant=4,
                               n_classes=3, weights=[0.8, 0.15, 0.05], n_clusters_per_class=2,
                               random_state=0)
    return X, mask_labels(y, labeled=0.1, random_state=0)


def test_guard_falls_back_to_the_labeled_only_model_when_self_training_hurts(harmful):
    X, y = harmful
    forest = RandomForestClassifier(n_estimators=20, random_state=0)
    clf = SelfTrainingClassifier(forest, **GUARDED).fit(X, y)
    check = clf.cv_check_
    assert check["fallback"] and check["z_help"] <= HELP_Z
    assert check["baseline_accuracy"] > check["final_accuracy"]
    assert (clf.n_iter_, clf.best_iter_, clf.termination_condition_) == (0, 0, "early_stopping")
    labeled = y != -1
    baseline = clone(forest).fit(X[labeled], y[labeled])
    np.testing.assert_array_equal(clf.predict(X), baseline.predict(X))
    assert (clf.labeled_iter_ <= 0).all()  # no pseudo-label survives
    np.testing.assert_array_equal(clf.transduction_, y)


@pytest.fixture(scope="module")
def helpful():
    """Digits with 10% of the labels: self-training with the teacher helps (measured)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X, mask_labels(y, labeled=0.1, random_state=0)


def test_guard_adopts_the_last_round_when_self_training_helps_beyond_noise(helpful):
    X, y = helpful
    forest = RandomForestClassifier(n_estimators=20, random_state=0)
    plain = SelfTrainingClassifier(forest, **{**GUARDED, "stopping": None})
    clf = SelfTrainingClassifier(forest, **GUARDED).fit(X, y)
    check = clf.cv_check_
    assert not check["fallback"] and check["z_help"] > HELP_Z
    assert check["helped_rows"] > check["harmed_rows"]
    assert clf.best_iter_ == len(clf.history_) - 1 == clf.n_iter_
    np.testing.assert_array_equal(clf.predict(X), plain.fit(X, y).predict(X))
    curve = clf.cv_check_["curve"]
    assert [r["val_score"] for r in clf.history_] == [
        curve[min(r["round"], len(curve) - 1)] for r in clf.history_]
    assert curve[0] == pytest.approx(clf.cv_check_["baseline_accuracy"])


class NoPeekingLogisticRegression(LogisticRegression):
    """Fails when asked to predict a row it was trained on: a leak in the guard."""

    def fit(self, X, y):
        self.seen_ = {row.tobytes() for row in np.asarray(X)}
        return super().fit(X, y)

    def predict(self, X):
        peeked = sum(row.tobytes() in self.seen_ for row in np.asarray(X))
        assert peeked == 0, f"scored {peeked} rows it was trained on"
        return super().predict(X)


def test_parallel_folds_give_the_same_verdict(harmful):
    X, y = harmful
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    one = SelfTrainingClassifier(forest, **GUARDED).fit(X, y)
    two = SelfTrainingClassifier(forest, **GUARDED, n_jobs=2).fit(X, y)
    assert one.cv_check_ == two.cv_check_
    np.testing.assert_array_equal(one.predict(X), two.predict(X))


def test_guard_scores_every_labeled_row_once_with_models_that_never_saw_it(harmful):
    X, y = harmful
    clf = SelfTrainingClassifier(NoPeekingLogisticRegression(max_iter=500), **GUARDED)
    clf.fit(X, y)  # predict on a seen row would fail the assertion inside
    n_labeled = int((y != -1).sum())
    assert all(v * n_labeled == pytest.approx(round(v * n_labeled))
               for v in clf.cv_check_["curve"])  # pooled over every labeled row


def test_auto_keeps_the_best_labeled_only_model_when_self_training_has_not_proven_itself(
        harmful):
    from selftrain import recommended_classifier

    X, y = harmful
    clf = recommended_classifier("auto", random_state=0).set_params(max_iter=3).fit(X, y)
    choice, check = clf.estimator_choice_, clf.cv_check_
    assert check["fallback"] and check["checked"]
    chosen = make_estimator(choice["chosen"], 0)
    labeled = y != -1
    expected = clone(chosen).fit(X[labeled], y[labeled])
    assert type(clf.estimator_).__name__ == type(chosen).__name__
    np.testing.assert_array_equal(clf.predict_proba(X), expected.predict_proba(X))


def test_a_class_with_one_label_keeps_the_labeled_only_model(harmful):
    X, y = harmful
    y = y.copy()
    rare = np.flatnonzero(y == 2)
    y[rare[1:]] = -1  # class 2 keeps a single label: no fold can judge self-training
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    with pytest.warns(UserWarning, match="no evidence for self-training"):
        clf = SelfTrainingClassifier(forest, **GUARDED).fit(X, y)
    assert clf.cv_check_["fallback"] and not clf.cv_check_["checked"]
    assert clf.n_iter_ == 0 and (clf.labeled_iter_ <= 0).all()


def test_guard_score_reads_the_curve_and_survives_an_unchecked_verdict():
    from selftrain.driver import guard_score
    from selftrain.rounds import initial_state

    state = initial_state(np.array([0, 1, -1, -1]))
    assert guard_score({"curve": [0.5, 0.7]})(state, None) == 0.5
    later = type(state)(state.classes, state.y, state.labeled_iter, state.confidence, round=5)
    assert guard_score({"curve": [0.5, 0.7]})(later, None) == 0.7  # past the end: the last
    assert guard_score({"curve": []})(later, None) is None  # a class of one label: no folds


def test_guard_weighs_scikit_learns_plain_rule_when_its_own_is_not_adopted(harmful,
                                                                           monkeypatch):
    """The configured rule harms this table; scikit-learn's plain rule is then weighed on
    the same folds, and when the guard adopts it the fit self-trains exactly as scikit-
    learn's SelfTrainingClassifier does (threshold 0.75, 10 rounds, no teacher)."""
    from sklearn.semi_supervised import SelfTrainingClassifier as SkSelfTraining

    import selftrain.driver as driver

    X, y = harmful
    forest = RandomForestClassifier(n_estimators=20, random_state=0)
    check = SelfTrainingClassifier(forest, **GUARDED).fit(X, y).cv_check_
    assert set(check["candidates"]) == {"configured", "plain"}
    configured, plain = check["candidates"]["configured"], check["candidates"]["plain"]
    assert configured["z_help"] < plain["z_help"] <= HELP_Z and check["selection"] is None
    # a bar between the two candidates' evidence: the plain rule alone clears it
    monkeypatch.setattr(driver, "HELP_Z", (configured["z_help"] + plain["z_help"]) / 2)
    clf = SelfTrainingClassifier(forest, **GUARDED).fit(X, y)
    assert clf.cv_check_["selection"] == "plain" and not clf.cv_check_["fallback"]
    theirs = SkSelfTraining(clone(forest)).fit(X, y)
    np.testing.assert_array_equal(clf.transduction_, theirs.transduction_)
    np.testing.assert_array_equal(clf.predict_proba(X), theirs.predict_proba(X))


def test_guard_does_not_weigh_the_plain_rule_once_its_own_is_adopted(helpful):
    X, y = helpful
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    check = SelfTrainingClassifier(forest, **GUARDED).fit(X, y).cv_check_
    assert check["selection"] == "configured" and set(check["candidates"]) == {"configured"}
