"""``fit(X, y, sample_weight=...)`` with metadata routing: the weights reach every fit of
every round and of every guard fold, sliced to the rows fitted (a pseudo-labeled row keeps
its own weight); scikit-learn's own class passes them unsliced, which only works when no
row is unlabeled, and there the two give the same fit."""

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import SelfTrainingClassifier as SklearnSelfTraining

import selftrain.pool
from selftrain import SelfTrainingClassifier, recommended_classifier


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


class WeightRecorder(LogisticRegression):
    """Records, for every fit (clones included), the row ids it fitted (column 0 of ``X``)
    and the weights it received."""

    fits: list = []

    def fit(self, X, y, sample_weight=None):
        WeightRecorder.fits.append((np.asarray(X)[:, 0].copy(), sample_weight))
        return super().fit(X, y, sample_weight=sample_weight)


def row_weights(ids):
    return 1 + (np.asarray(ids) % 7) / 10  # a weight that tells which row it belongs to


@pytest.fixture
def with_ids(three_class):
    """``three_class`` with the row's id as column 0, and per-row weights."""
    X, y_true, y = three_class
    ids = np.arange(len(y), dtype=float)
    return np.column_stack([ids, X]), y_true, y, row_weights(ids)


def recorder():
    WeightRecorder.fits = []
    return (WeightRecorder(max_iter=1000).set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False))


@pytest.mark.parametrize("options", [
    {"criterion": "k_best", "k_best": 0.2, "balanced": True, "stopping": "cv"},
    {"criterion": "k_best", "k_best": 0.2, "stopping": "holdout", "patience": 2},
    {"threshold": 0.6, "calibration": "sigmoid"},
], ids=["guard", "holdout", "calibrated"])
def test_every_fit_gets_its_own_rows_weights(with_ids, routing, options):
    X, _, y, weights = with_ids
    clf = SelfTrainingClassifier(recorder(), max_iter=4, random_state=0, **options)
    clf.fit(X, y, sample_weight=weights)
    fits = WeightRecorder.fits
    assert len(fits) >= 4  # the rounds (and the guard's folds, the calibration's folds)
    for ids, received in fits:
        assert received is not None
        np.testing.assert_array_equal(received, row_weights(ids))
    assert max(len(ids) for ids, _ in fits) > (y != -1).sum()  # pseudo-labeled rows too


def test_weights_reach_the_rows_of_a_bounded_pool(with_ids, routing, monkeypatch):
    X, _, y, weights = with_ids
    monkeypatch.setattr(selftrain.pool, "POOL_MAX_ROWS", 100)
    clf = SelfTrainingClassifier(recorder(), criterion="k_best", k_best=0.25, stopping="cv",
                                 random_state=0)
    with pytest.warns(UserWarning, match="seeded sample of 100"):
        clf.fit(X, y, sample_weight=weights)
    for ids, received in WeightRecorder.fits:
        np.testing.assert_array_equal(received, row_weights(ids))


def test_weights_change_the_fit(three_class, routing):
    X, _, y = three_class
    base = LogisticRegression().set_fit_request(sample_weight=True).set_score_request(
        sample_weight=False)
    weights = np.where(y == 0, 10.0, 1.0)
    plain = SelfTrainingClassifier(base, criterion="k_best", k_best=20).fit(X, y)
    weighted = SelfTrainingClassifier(base, criterion="k_best", k_best=20).fit(
        X, y, sample_weight=weights)
    assert not np.allclose(plain.predict_proba(X), weighted.predict_proba(X))
    assert (weighted.predict(X) == 0).sum() > (plain.predict(X) == 0).sum()


def test_weighted_fit_is_sklearns_where_sklearn_can_fit(three_class, routing):
    X, y_true, y = three_class
    base = LogisticRegression().set_fit_request(sample_weight=True).set_score_request(
        sample_weight=False)
    weights = np.random.default_rng(0).uniform(0.1, 3, len(y))
    ours = SelfTrainingClassifier(base).fit(X, y_true, sample_weight=weights)
    theirs = SklearnSelfTraining(base).fit(X, y_true, sample_weight=weights)
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))
    assert not np.allclose(ours.predict_proba(X),
                           SelfTrainingClassifier(base).fit(X, y_true).predict_proba(X))
    # with unlabeled rows scikit-learn passes the weights unsliced (a length error); ours fits
    with pytest.raises(ValueError, match="sample_weight.shape"):
        SklearnSelfTraining(base).fit(X, y, sample_weight=weights)
    assert SelfTrainingClassifier(base).fit(X, y, sample_weight=weights).n_iter_ > 0


def test_auto_base_refuses_fit_metadata_with_one_message(three_class, routing):
    X, _, y = three_class
    with pytest.raises(ValueError, match=r"\['sample_weight'\] cannot reach .*AutoClassifier"):
        recommended_classifier(random_state=0).fit(X, y, sample_weight=np.ones(len(y)))


def test_without_routing_fit_metadata_is_sklearns_error(three_class):
    X, _, y = three_class
    with pytest.raises(ValueError, match="only supported if enable_metadata_routing=True"):
        SelfTrainingClassifier(LogisticRegression()).fit(X, y, sample_weight=np.ones(len(y)))
