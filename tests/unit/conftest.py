"""Small, seeded semi-supervised problems shared by the unit tests."""


import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def one_thread_per_process():
    """BLAS/OpenMP threads fight over 2 shared cores: small fits run ~5x faster on one."""
    with threadpool_limits(1):
        yield


def hide_labels(y, share_unlabeled, seed):
    """A copy of ``y`` with a seeded share of rows set to -1."""
    y = np.array(y, copy=True)
    y[np.random.RandomState(seed).rand(len(y)) < share_unlabeled] = -1
    return y


@pytest.fixture
def three_class():
    """300 rows, 8 features, 3 classes, 80% unlabeled: (X, y_true, y_with_minus_ones)."""
    X, y = make_classification(
        n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    return X, y, hide_labels(y, 0.8, seed=0)


@pytest.fixture
def iris_semi():
    """Iris with 70% of labels hidden: (X, y_true, y_with_minus_ones)."""
    X, y = load_iris(return_X_y=True)
    return X, y, hide_labels(y, 0.7, seed=1)


@pytest.fixture
def imbalanced():
    """A 80/10/10 three-class table, 10% labeled per class: (X, y_true, y_with_minus_ones)."""
    X, y = make_classification(
        n_samples=900, n_features=10, n_informative=4, n_classes=3, weights=[0.8, 0.1, 0.1],
        class_sep=0.8, random_state=3,
    )
    from selftrain import mask_labels

    return X, y, mask_labels(y, labeled=0.1, random_state=0)
