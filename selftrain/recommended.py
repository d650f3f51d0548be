"""Build the classifier from the configuration: the bridge from ``params.yaml`` to code."""

from __future__ import annotations

from selftrain.columns import ColumnRoles, tabular_pipeline
from selftrain.config import DataSettings, SelfTrainingSettings
from selftrain.estimator import SelfTrainingClassifier
from selftrain.estimators import make_estimator


def build_classifier(settings: SelfTrainingSettings, random_state: int | None = None,
                     roles: ColumnRoles | None = None, data: DataSettings | None = None):
    """A ``SelfTrainingClassifier`` exactly as ``settings`` describe it; with ``roles``,
    its estimator reads raw records (the preprocessor of ``data``'s encoding settings)."""
    k_best = settings.k_best if settings.k_best < 1 else int(settings.k_best)
    estimator = make_estimator(settings.base_estimator, random_state)
    if roles is not None:
        data = data or DataSettings()
        estimator = tabular_pipeline(estimator, roles, max_categories=data.max_categories,
                                     min_category_count=data.min_category_count)
    return SelfTrainingClassifier(
        estimator,
        threshold=settings.threshold,
        criterion=settings.criterion,
        k_best=k_best,
        max_iter=settings.max_rounds,
        balanced=settings.balanced,
        calibration=settings.calibration,
        teacher=settings.teacher,
        teacher_weight=settings.teacher_weight,
        stopping=settings.stopping,
        patience=settings.patience,
        n_jobs=settings.n_jobs,
        random_state=random_state,
    )


def recommended_classifier(base_estimator: str = "auto",
                           random_state: int | None = None):
    """The configuration ``benchmarks/accuracy.py`` reports as recommended (and the
    defaults of ``params.yaml``), around the named base estimator."""
    return build_classifier(SelfTrainingSettings(base_estimator=base_estimator), random_state)
