"""Base estimators by name, with scaling where the estimator needs it."""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

_REGISTRY: dict[str, Callable[[int | None], ClassifierMixin | Pipeline]] = {
    "random_forest": lambda seed: RandomForestClassifier(n_estimators=100, random_state=seed),
    "hist_gradient_boosting": lambda seed: HistGradientBoostingClassifier(random_state=seed),
    "logistic_regression": lambda seed: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
    ),
    # SVC(probability=True) is deprecated in scikit-learn 1.9: calibrate it explicitly.
    "svc": lambda seed: make_pipeline(
        StandardScaler(),
        CalibratedClassifierCV(SVC(random_state=seed), cv=3, ensemble=False),
    ),
    "knn": lambda seed: make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5)),
}

ESTIMATOR_NAMES = tuple(_REGISTRY)


def make_estimator(name: str, random_state: int | None = None):
    """A fresh, unfitted base estimator; ``random_state`` makes it deterministic."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"base_estimator={name!r} is not known; choose one of {', '.join(ESTIMATOR_NAMES)}"
        ) from None
    return factory(random_state)
