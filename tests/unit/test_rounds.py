"""The loop one round at a time: the same result as ``fit``, and a state that survives a file."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from selftrain import SelfTrainingClassifier
from selftrain.rounds import RoundState, fit_state, initial_state, round_record, run_round


def run_all_rounds(clf, X, y, state=None, save_to=None):
    """The pipeline's way: ``run_round`` in a loop (optionally via a file), then ``fit_state``."""
    state = initial_state(y) if state is None else state
    base = clf.round_estimator()
    policy = clf.selection_policy(int((~state.labeled).sum()))
    while state.termination is None and state.round < clf.max_iter:
        state = run_round(state, X, base, policy).state
        if save_to is not None:
            state.save(save_to)
            state = RoundState.load(save_to)
    return state, fit_state(state, X, base)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"criterion": "k_best", "k_best": 20, "balanced": True},
     {"criterion": "k_best", "k_best": 0.1, "teacher": "label_spreading"}],
    ids=["defaults", "balanced_k_best", "teacher_share"],
)
def test_round_by_round_equals_all_at_once(three_class, kwargs):
    X, _, y = three_class
    clf = SelfTrainingClassifier(RandomForestClassifier(20, random_state=0), max_iter=4, **kwargs)
    clf.fit(X, y)
    state, model = run_all_rounds(clf, X, y)
    assert state.round == clf.n_iter_
    np.testing.assert_array_equal(state.labels, clf.transduction_)
    np.testing.assert_array_equal(state.labeled_iter, clf.labeled_iter_)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))


def test_resume_through_files_gives_same_model(three_class, tmp_path):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression(), criterion="k_best", k_best=15, max_iter=3)
    straight, model = run_all_rounds(clf, X, y)
    resumed, resumed_model = run_all_rounds(clf, X, y, save_to=tmp_path / "state.npz")
    assert resumed.fingerprint() == straight.fingerprint()
    np.testing.assert_array_equal(resumed_model.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0]),
     np.array(["cat", "dog", "emu"], dtype=object)],
    ids=["ints", "floats", "strings"],
)
def test_state_round_trips_through_npz(three_class, tmp_path, labels):
    X, y_true, y = three_class
    y_user = labels[y_true].astype(labels.dtype)
    y_user[y == -1] = -1
    clf = SelfTrainingClassifier(LogisticRegression(), criterion="k_best", k_best=25)
    state = run_round(initial_state(y_user), X, clf.round_estimator(),
                      clf.selection_policy(int((y == -1).sum()))).state
    state.save(tmp_path / "s.npz")
    loaded = RoundState.load(tmp_path / "s.npz")
    assert (loaded.round, loaded.termination) == (1, None)
    assert loaded.fingerprint() == state.fingerprint()
    assert list(loaded.labels) == list(state.labels)
    np.testing.assert_array_equal(loaded.confidence, state.confidence)  # nan == nan here
    assert not (tmp_path / "s.npz.tmp").exists()
    model = fit_state(loaded, X, LogisticRegression())
    assert list(model.classes_) == list(labels)


def test_npz_file_needs_no_pickle(three_class, tmp_path):
    _, y_true, y = three_class
    names = np.array(["cat", "dog", "emu"], dtype=object)[y_true]
    names[y == -1] = -1
    initial_state(names).save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        assert {"classes", "y", "labeled_iter", "confidence", "meta"} <= set(data.files)


def test_initial_state_encodes_labels_as_class_indices():
    state = initial_state(np.array(["b", -1, "a", "b", None], dtype=object))
    assert list(state.classes) == ["a", "b"]
    assert list(state.y) == [1, -1, 0, 1, -1]
    assert list(state.labeled_iter) == [0, -1, 0, 0, -1]
    assert (state.round, state.termination) == (0, None)
    assert initial_state(np.array([0, 1, 1])).termination == "all_labeled"


def test_run_round_adds_rows_once_and_records_them(three_class):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression(), criterion="k_best", k_best=12)
    start = initial_state(y)
    result = run_round(start, X, clf.round_estimator(), clf.selection_policy(240))
    added = result.state.labeled_iter == 1
    assert added.sum() == 12
    assert (start.y[added] == -1).all()
    assert np.isfinite(result.state.confidence[added]).all()
    assert result.fitted_on is start
    record = round_record(result.state)
    assert record["round"] == 1 and record["n_added"] == 12
    assert sum(record["added_per_class"].values()) == 12
    assert record["n_labeled"] == int(start.labeled.sum()) + 12
    assert 0 < record["mean_confidence"] <= 1


def test_run_round_is_pure(three_class):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression())
    start = initial_state(y)
    before = start.y.copy()
    first = run_round(start, X, clf.round_estimator(), clf.selection_policy(240)).state
    second = run_round(start, X, clf.round_estimator(), clf.selection_policy(240)).state
    np.testing.assert_array_equal(start.y, before)
    assert first.fingerprint() == second.fingerprint()


def test_round_with_no_confident_rows_ends_with_no_change(three_class):
    X, _, y = three_class
    clf = SelfTrainingClassifier(LogisticRegression(), threshold=1.0)
    nxt = run_round(initial_state(y), X, clf.round_estimator(), clf.selection_policy(240)).state
    assert nxt.termination == "no_change"
    assert round_record(nxt)["n_added"] == 0
    assert round_record(nxt)["mean_confidence"] is None


@pytest.mark.parametrize(
    ("scores", "best"),
    [([0.5, 0.7, 0.7, 0.6], 1),  # the first of equal scores: fewer pseudo-labels
     ([None, 0.4, None], 1),  # unscored rounds never win
     ([None, None], 1),  # nothing scored: the last round
     ([0.9], 0)],
)
def test_the_best_round_is_the_first_highest_score(scores, best):
    from selftrain.driver import Rounds
    from selftrain.rounds import best_round

    assert best_round(scores) == best
    rounds = Rounds([], [])  # the driver's running choice agrees with the pure function
    for i, score in enumerate(scores):
        rounds.add(None, f"model {i}", {"val_score": score})
    assert (rounds.best_index, rounds.best_model) == (best, f"model {best}")


def test_rounds_are_stale_after_patience_rounds_without_a_gain():
    from selftrain.rounds import rounds_stale

    assert not rounds_stale([0.5, 0.6, 0.6], patience=2)
    assert rounds_stale([0.5, 0.6, 0.6, 0.55], patience=2)
    assert not rounds_stale([0.5, 0.6, 0.6, 0.61], patience=2)
