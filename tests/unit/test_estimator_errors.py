"""Every bad argument raises a ValueError whose message names the argument and the value.

Where scikit-learn's SelfTrainingClassifier behaves otherwise for its own arguments, its
behaviour wins (drop-in): a k_best beyond the pool warns, a single labeled class is
self-trained, an estimator without predict_proba is an AttributeError.
"""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.semi_supervised import SelfTrainingClassifier as SklearnSelfTraining
from sklearn.svm import SVC

from selftrain import SelfTrainingClassifier

BAD_PARAMS = [
    ("threshold", 1.5),
    ("threshold", -0.1),
    ("threshold", "high"),
    ("criterion", "entropy"),
    ("k_best", 0),
    ("k_best", 2.5),
    ("k_best", -3),
    ("max_iter", -1),
    ("max_iter", 2.5),
    ("calibration", "platt"),
    ("teacher", "knn"),
    ("teacher_weight", 1.5),
    ("stopping", "oob"),
    ("validation_fraction", 0.0),
    ("validation_fraction", 1.0),
    ("patience", 0),
    ("cv", 1),
]


@pytest.mark.parametrize(("name", "value"), BAD_PARAMS)
def test_bad_parameter_names_argument_and_value(three_class, name, value):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression(), **{name: value})
    with pytest.raises(ValueError, match=rf"{name}={value!r}".replace("(", r"\(")) as info:
        clf.fit(X, y)
    assert name in str(info.value)


def test_k_best_larger_than_pool_warns_naming_k_best_and_pool_size(three_class):
    # was a ValueError; scikit-learn warns and labels the whole pool in round 1, so do we
    X, _, y = three_class
    pool = int((y == -1).sum())
    clf = SelfTrainingClassifier(LogisticRegression(), criterion="k_best", k_best=pool + 1)
    with pytest.warns(UserWarning, match=rf"k_best is larger .*k_best={pool + 1}, {pool} unl"):
        clf.fit(X, y)
    assert clf.termination_condition_ == "all_labeled"
    assert clf.n_iter_ == 1


def test_no_labeled_rows_names_y(three_class):
    X, _, _ = three_class
    with pytest.raises(ValueError, match=r"y has no labeled rows \(all 300 are -1\)"):
        SelfTrainingClassifier(LogisticRegression()).fit(X, np.full(300, -1))


def test_single_labeled_class_is_self_trained_like_sklearn(three_class):
    # was a ValueError; scikit-learn self-trains it (every pseudo-label is that class)
    X, _, y = three_class
    one = np.where(y == -1, -1, 2)
    ours = SelfTrainingClassifier(KNeighborsClassifier()).fit(X, one)
    theirs = SklearnSelfTraining(KNeighborsClassifier()).fit(X, one)
    assert ours.termination_condition_ == theirs.termination_condition_ == "all_labeled"
    np.testing.assert_array_equal(ours.transduction_, theirs.transduction_)
    np.testing.assert_array_equal(ours.labeled_iter_, theirs.labeled_iter_)
    np.testing.assert_array_equal(ours.predict(X), np.full(len(X), 2))


@pytest.mark.parametrize(("name", "value"), [("stopping", "holdout"), ("stopping", "cv"),
                                           ("calibration", "sigmoid")])
def test_single_string_class_with_an_option_needing_two_names_it_and_the_class(
    three_class, name, value
):
    X, _, y = three_class
    one = np.full(len(y), "cat", dtype=object)
    one[y == -1] = -1
    clf = SelfTrainingClassifier(KNeighborsClassifier(), **{name: value})
    expected = rf"{name}='{value}' needs .* only one class \('cat'\)"
    with pytest.raises(ValueError, match=expected):
        clf.fit(X, one)


def test_x_and_y_of_different_lengths_name_both_lengths(three_class):
    X, _, y = three_class
    with pytest.raises(ValueError, match="X has 300 rows but y has 299 labels"):
        SelfTrainingClassifier(LogisticRegression()).fit(X, y[:-1])


@pytest.mark.parametrize("base", [LogisticRegression(), SVC(probability=True)],
                         ids=["logistic_regression", "svc"])
@pytest.mark.filterwarnings("ignore:The `probability` parameter:FutureWarning")
def test_nan_in_x_names_x_position_and_estimator(three_class, base):
    X, _, y = three_class
    X = X.copy()
    X[4, 2] = np.nan
    X[7, 1] = np.inf
    name = type(base).__name__
    expected = rf"X has 2 NaN or infinite values \(first at row 4, column 2\).*{name}"
    with pytest.raises(ValueError, match=expected):
        SelfTrainingClassifier(base).fit(X, y)


def test_nan_in_x_is_accepted_by_an_estimator_that_handles_it(three_class):
    X, _, y = three_class
    X = X.copy()
    X[::10, 0] = np.nan
    clf = SelfTrainingClassifier(HistGradientBoostingClassifier(max_iter=10, random_state=0),
                                 max_iter=2).fit(X, y)
    assert clf.predict(X).shape == (300,)


def test_missing_estimator_is_named(three_class):
    X, _, y = three_class
    with pytest.raises(ValueError, match="estimator=None"):
        SelfTrainingClassifier().fit(X, y)


def test_estimator_without_predict_proba_asks_for_calibration(three_class):
    # an AttributeError (was ValueError), as scikit-learn raises; still checked before any fit
    X, _, y = three_class
    with pytest.raises(
        AttributeError, match=r"estimator=SVC has no attribute 'predict_proba'.*calibration"
    ):
        SelfTrainingClassifier(SVC()).fit(X, y)


def test_continuous_target_is_refused_as_continuous(three_class):
    X, _, y = three_class
    with pytest.raises(ValueError, match="continuous"):
        SelfTrainingClassifier(LogisticRegression()).fit(X, np.where(y == -1, -1, y + 0.5))


def test_holdout_too_small_names_stopping_and_fraction(three_class):
    X, y_true, _ = three_class
    y = np.full(300, -1)
    y[[np.flatnonzero(y_true == c)[0] for c in range(3)]] = [0, 1, 2]  # one label per class
    clf = SelfTrainingClassifier(LogisticRegression(), stopping="holdout", random_state=0)
    with pytest.raises(ValueError, match=r"stopping='holdout' with validation_fraction=0.2"):
        clf.fit(X, y)


def test_cv_with_a_class_of_one_label_warns_naming_the_class_and_keeps_labeled_only(
        three_class):
    # was: self-trains to the end unchecked; with the burden of proof on self-training
    # (issue 11), no evidence means the labeled-only model
    X, y_true, y = three_class
    y = y.copy()
    y[(y == 2)] = -1
    y[np.flatnonzero(y_true == 2)[0]] = 2
    clf = SelfTrainingClassifier(LogisticRegression(), stopping="cv", random_state=0)
    with pytest.warns(UserWarning, match=r"stopping='cv' needs .*; class 2 has 1.*labeled-only"):
        clf.fit(X, y)
    assert clf.cv_check_["fallback"] and not clf.cv_check_["checked"]
    assert clf.n_iter_ == 0 and clf.best_iter_ == len(clf.history_) - 1 == 0


def test_predict_with_wrong_feature_count_names_the_counts(three_class):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features"):
        clf.predict(X[:, :5])
