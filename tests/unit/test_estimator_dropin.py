"""With scikit-learn's arguments, selftrain's estimator behaves exactly like scikit-learn's."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import SelfTrainingClassifier as SklearnSelfTraining
from sklearn.svm import SVC

from selftrain import SelfTrainingClassifier

# SVC(probability=True) is deprecated in scikit-learn 1.9; both estimators get the same SVC
pytestmark = pytest.mark.filterwarnings("ignore:The `probability` parameter:FutureWarning")

BASES = {
    "logistic_regression": lambda: LogisticRegression(),
    "svc": lambda: SVC(probability=True, random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=20, random_state=0),
}
ARGS = {
    "defaults": {},
    "threshold_0.9": {"threshold": 0.9},
    "k_best": {"criterion": "k_best", "k_best": 15},
    "max_iter_none": {"max_iter": None},
    "max_iter_2": {"max_iter": 2},
    "max_iter_0": {"max_iter": 0},
}


def fit_both(base, X, y, **kwargs):
    ours = SelfTrainingClassifier(base, **kwargs).fit(X, y)
    theirs = SklearnSelfTraining(base, **kwargs).fit(X, y)
    return ours, theirs


def assert_same_fit(ours, theirs, X):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.termination_condition_ == theirs.termination_condition_
    np.testing.assert_array_equal(ours.transduction_, theirs.transduction_)
    np.testing.assert_array_equal(ours.labeled_iter_, theirs.labeled_iter_)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X))
    assert ours.n_features_in_ == theirs.n_features_in_


@pytest.mark.parametrize("args", ARGS.values(), ids=ARGS.keys())
@pytest.mark.parametrize("base", ["logistic_regression", "svc"])
def test_same_fit_as_sklearn_on_seeded_problem(three_class, base, args):
    X, _, y = three_class
    ours, theirs = fit_both(BASES[base](), X, y, **args)
    assert_same_fit(ours, theirs, X)


def test_same_fit_as_sklearn_with_random_forest_threshold(iris_semi):
    X, _, y = iris_semi
    ours, theirs = fit_both(BASES["random_forest"](), X, y)
    assert_same_fit(ours, theirs, X)


def test_same_delegated_methods_as_sklearn(three_class):
    X, y_true, y = three_class
    ours, theirs = fit_both(LogisticRegression(), X, y)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X))
    np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X))
    assert ours.score(X, y_true) == theirs.score(X, y_true)


def test_fully_labeled_y_warns_and_fits_once_like_sklearn(three_class):
    X, y_true, _ = three_class
    with pytest.warns(UserWarning, match="no unlabeled samples"):
        ours = SelfTrainingClassifier(LogisticRegression()).fit(X, y_true)
    with pytest.warns(UserWarning, match="no unlabeled samples"):
        theirs = SklearnSelfTraining(LogisticRegression()).fit(X, y_true)
    assert ours.n_iter_ == theirs.n_iter_ == 0
    assert ours.termination_condition_ == theirs.termination_condition_ == "all_labeled"
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_string_labels_with_object_dtype_match_sklearn(three_class):
    X, y_true, y = three_class
    names = np.array(["cat", "dog", "emu"], dtype=object)[y_true]
    names[y == -1] = -1
    ours, theirs = fit_both(LogisticRegression(), X, names)
    assert_same_fit(ours, theirs, X)
    assert set(ours.predict(X)) <= {"cat", "dog", "emu"}
    assert ours.transduction_.dtype == object


def test_string_dtype_labels_are_refused_like_sklearn(three_class):
    X, y_true, _ = three_class
    names = np.array(["cat", "dog", "emu"])[y_true]
    with pytest.raises(ValueError, match="dtype string"):
        SelfTrainingClassifier(LogisticRegression()).fit(X, names)


def test_inside_pipeline_predicts_like_sklearn(three_class):
    X, _, y = three_class
    ours = Pipeline([("scale", StandardScaler()),
                     ("st", SelfTrainingClassifier(LogisticRegression()))]).fit(X, y)
    theirs = Pipeline([("scale", StandardScaler()),
                       ("st", SklearnSelfTraining(LogisticRegression()))]).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_array_equal(
        ours.named_steps["st"].transduction_, theirs.named_steps["st"].transduction_
    )


def test_constructor_arguments_and_defaults_match_sklearn():
    ours = SelfTrainingClassifier().get_params()
    theirs = SklearnSelfTraining().get_params()
    assert {k: ours[k] for k in theirs} == theirs


def test_clone_and_set_params_round_trip():
    clf = SelfTrainingClassifier(LogisticRegression(C=2.0), threshold=0.9, balanced=True)
    copy = clone(clf)
    assert copy.get_params()["threshold"] == 0.9
    assert copy.get_params()["balanced"] is True
    assert copy.estimator is not clf.estimator
    copy.set_params(estimator__C=0.5, k_best=3, criterion="k_best")
    assert copy.estimator.C == 0.5
    assert (copy.k_best, copy.criterion) == (3, "k_best")
    assert clf.estimator.C == 2.0


def test_verbose_prints_like_sklearn(three_class, capsys):
    X, _, y = three_class
    SelfTrainingClassifier(LogisticRegression(), verbose=True).fit(X, y)
    ours = capsys.readouterr().out
    SklearnSelfTraining(LogisticRegression(), verbose=True).fit(X, y)
    theirs = capsys.readouterr().out
    assert ours == theirs
    assert "End of iteration 1, added" in ours


def test_dataframe_input_keeps_feature_names_like_sklearn(three_class):
    pd = pytest.importorskip("pandas")
    X, _, y = three_class
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ours, theirs = fit_both(LogisticRegression(), frame, y)
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" warning
        np.testing.assert_array_equal(ours.predict(frame), theirs.predict(frame))


# -- metadata routing ---------------------------------------------------------------------


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def test_routing_map_is_sklearns(routing):
    base = LogisticRegression().set_score_request(sample_weight=True)
    ours = SelfTrainingClassifier(base).get_metadata_routing()
    theirs = SklearnSelfTraining(base).get_metadata_routing()
    assert str(ours) == str(theirs)


def test_routed_score_metadata_reaches_the_estimator_like_sklearn(three_class, routing):
    X, y_true, y = three_class
    weights = np.r_[np.zeros(150), np.ones(150)]
    ours, theirs = fit_both(LogisticRegression().set_score_request(sample_weight=True), X, y)
    weighted = ours.score(X, y_true, sample_weight=weights)
    assert weighted == theirs.score(X, y_true, sample_weight=weights)
    assert weighted != ours.score(X, y_true)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_score_takes_sample_weight_without_routing_as_before(three_class):
    # selftrain passed score's sample_weight on before routing existed; scikit-learn refuses
    # it without routing. Keeping it breaks no scikit-learn test and no existing caller.
    X, y_true, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression()).fit(X, y)
    weights = np.r_[np.zeros(150), np.ones(150)]
    assert clf.score(X, y_true, sample_weight=weights) == clf.estimator_.score(
        X, y_true, sample_weight=weights)


class TagRecorder(LogisticRegression):
    """Records the ``tag`` metadata each prediction method received."""

    def _record(self, method, tag):
        self.__dict__.setdefault("tags_", {})[method] = tag

    def predict(self, X, tag=None):
        self._record("predict", tag)
        return super().predict(X)

    def predict_proba(self, X, tag=None):
        self._record("predict_proba", tag)
        return super().predict_proba(X)

    def predict_log_proba(self, X, tag=None):
        self._record("predict_log_proba", tag)
        return super().predict_log_proba(X)

    def decision_function(self, X, tag=None):
        self._record("decision_function", tag)
        return super().decision_function(X)


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"])
def test_routed_prediction_metadata_reaches_the_estimator_like_sklearn(
    three_class, routing, method
):
    X, _, y = three_class
    base = getattr(TagRecorder(), f"set_{method}_request")(tag=True)
    for clf in fit_both(base, X, y):
        getattr(clf, method)(X, tag="row-batch-7")
        assert clf.estimator_.tags_[method] == "row-batch-7", type(clf).__module__
