"""The pieces of the accuracy benchmark: offline datasets, the compared methods, and one
(dataset, fraction, seed) run. ``benchmarks/accuracy.py`` aggregates and reports them."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading
from sklearn.semi_supervised import SelfTrainingClassifier as SkSelfTraining

from selftrain import build_classifier, make_estimator, mask_labels, recommended_classifier
from selftrain.config import SelfTrainingSettings

TEST_SIZE = 0.25
SPLIT_SEED = 0  # the test split is fixed; seeds vary the masking and the estimators

DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "digits": lambda: load_digits(return_X_y=True),
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "synthetic_5c_20k": lambda: make_classification(
        n_samples=20_000, n_features=20, n_informative=10, n_redundant=4, n_classes=5,
        n_clusters_per_class=2, class_sep=1.0, random_state=0,
    ),
    "synthetic_imbalanced": lambda: make_classification(
        n_samples=3_000, n_features=20, n_informative=8, n_redundant=4, n_classes=3,
        weights=[0.8, 0.15, 0.05], n_clusters_per_class=2, random_state=0,
    ),
}


def _sklearn_st(seed: int):
    return SkSelfTraining(make_estimator("random_forest", seed))


def _sklearn_st_logreg(seed: int):
    return SkSelfTraining(make_estimator("logistic_regression", seed))


def _label_spreading(seed: int):
    spreading = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100)
    return make_pipeline(StandardScaler(), spreading)


def _ours(stopping: str | None, base: str = "random_forest"):
    def factory(seed: int):
        settings = SelfTrainingSettings(base_estimator=base, stopping=stopping)
        return build_classifier(settings, seed)

    return factory


# name -> (how it is fitted: "labeled" rows only, "semi" with -1, or "full" labels; factory)
METHODS: dict[str, tuple[str, Callable[[int], object]]] = {
    "baseline": ("labeled", lambda seed: make_estimator("random_forest", seed)),
    "sklearn_st": ("semi", _sklearn_st),
    "label_spreading": ("semi", _label_spreading),
    "recommended": ("semi", lambda seed: recommended_classifier(random_state=seed)),
    "oracle": ("full", lambda seed: make_estimator("random_forest", seed)),
}
EXTRA_METHODS: dict[str, tuple[str, Callable[[int], object]]] = {
    "ours_unguarded": ("semi", _ours(None)),  # recommended without the cross-validated guard
    "ours_holdout": ("semi", _ours("holdout")),
    "baseline_logreg": ("labeled", lambda seed: make_estimator("logistic_regression", seed)),
    "sklearn_st_logreg": ("semi", _sklearn_st_logreg),
    "ours_logreg": ("semi", _ours(None, "logistic_regression")),
}
PEERS = ("sklearn_st", "label_spreading", "sklearn_st_logreg")


def load_split(name: str):
    """The dataset's fixed, stratified train/test split."""
    X, y = DATASETS[name]()
    return train_test_split(
        np.asarray(X, dtype=float), y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED
    )


def run_method(method: str, split, y_masked: np.ndarray, seed: int) -> dict:
    """Fit one method on one masked training split; its test scores and fit time."""
    X_train, X_test, y_train, y_test = split
    how, factory = {**METHODS, **EXTRA_METHODS}[method]
    model = factory(seed)
    if how == "labeled":
        rows = y_masked != -1
        X_fit, y_fit = X_train[rows], y_masked[rows]
    else:
        X_fit, y_fit = X_train, (y_train if how == "full" else y_masked)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of LabelSpreading / logreg
        model.fit(X_fit, y_fit)
    seconds = time.perf_counter() - start
    pred = model.predict(X_test)
    check = getattr(model, "cv_check_", None)  # the guard's verdict, to audit its threshold
    return {
        "accuracy": float(accuracy_score(y_test, pred)),
        "macro_f1": float(f1_score(y_test, pred, average="macro", zero_division=0)),
        "fit_seconds": seconds,
        **({"guard_z": check["z"], "guard_fallback": check["fallback"],
            "guard_selection": check.get("selection")} if check else {}),
        **({"chosen_base": model.estimator_choice_["chosen"]}
           if getattr(model, "estimator_choice_", None) else {}),
    }


def run_seed(split, fraction: float, seed: int, methods, oracle: dict | None = None) -> dict:
    """All ``methods`` on one masking of the training split; the oracle can be reused
    across fractions because it never sees the mask."""
    y_masked = mask_labels(split[2], labeled=fraction, random_state=seed)
    out = {}
    for method in methods:
        if method == "oracle" and oracle is not None:
            out[method] = oracle
        elif method in EXTRA_METHODS:
            out[method] = _run_extra(method, split, y_masked, seed)
        else:
            out[method] = run_method(method, split, y_masked, seed)
    out["_n_labeled"] = int((y_masked != -1).sum())
    return out


def _run_extra(method: str, split, y_masked: np.ndarray, seed: int) -> dict:
    """An optional row may refuse a cell (a hold-out slice of 7 labels cannot be
    stratified): record why instead of aborting the whole run."""
    try:
        return run_method(method, split, y_masked, seed)
    except ValueError as exc:
        return {"error": str(exc)}
