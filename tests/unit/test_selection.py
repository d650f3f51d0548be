"""Which predictions become pseudo-labels."""

import numpy as np

from selftrain.selection import SelectionPolicy, select_pseudo_labels

PROBA = np.array([
    [0.95, 0.05], [0.90, 0.10], [0.85, 0.15], [0.80, 0.20],
    [0.30, 0.70], [0.10, 0.90], [0.50, 0.50], [0.60, 0.40],
])
PRIOR = np.array([0.5, 0.5])
# scikit-learn's selection: its defaults, and no balancing or teacher
PLAIN = {"criterion": "threshold", "threshold": 0.75, "k_best": 10, "balanced": False,
         "teacher": None, "teacher_weight": 0.5}


def policy_of(**changes) -> SelectionPolicy:
    return SelectionPolicy(**PLAIN | changes)


def test_threshold_keeps_rows_strictly_above_it():
    chosen, pred, conf = select_pseudo_labels(PROBA, policy_of(threshold=0.85), PRIOR)
    assert list(chosen) == [0, 1, 5]
    assert list(pred) == [0, 0, 0, 0, 1, 1, 0, 0]
    np.testing.assert_allclose(conf, PROBA.max(axis=1))


def test_k_best_keeps_the_most_confident_rows():
    policy = policy_of(criterion="k_best", k_best=3)
    chosen, _, _ = select_pseudo_labels(PROBA, policy, PRIOR)
    assert sorted(chosen) == [0, 1, 5]


def test_k_best_ties_break_on_row_order():
    proba = np.array([[0.9, 0.1]] * 4)
    chosen, _, _ = select_pseudo_labels(proba, policy_of(criterion="k_best", k_best=2), PRIOR)
    assert list(chosen) == [0, 1]


def test_balanced_k_best_gives_each_class_its_prior_share():
    policy = policy_of(criterion="k_best", k_best=4, balanced=True)
    chosen, pred, _ = select_pseudo_labels(PROBA, policy, PRIOR)
    assert list(chosen) == [0, 1, 4, 5]
    assert np.bincount(pred[chosen]).tolist() == [2, 2]


def test_balanced_quota_rounds_up_so_a_rare_class_gets_a_row():
    policy = policy_of(criterion="k_best", k_best=4, balanced=True)
    chosen, pred, _ = select_pseudo_labels(PROBA, policy, np.array([0.9, 0.1]))
    assert np.bincount(pred[chosen]).tolist() == [4, 1]


def test_empty_pool_selects_nothing():
    for policy in (policy_of(), policy_of(criterion="k_best", balanced=True)):
        chosen, _, _ = select_pseudo_labels(np.empty((0, 2)), policy, PRIOR)
        assert chosen.size == 0
