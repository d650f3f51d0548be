"""Argument and input checks of ``SelfTrainingClassifier``: every message names the
argument and the value received, as scikit-learn's estimators do."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import get_tags

from selftrain.choices import CALIBRATIONS, CRITERIA, STOPPING, TEACHERS, described


def check_params(est) -> None:
    """Each argument against its allowed values; the message names argument and value."""
    checks = [
        ("threshold", isinstance(est.threshold, Real) and 0 <= est.threshold <= 1,
         "a number in [0, 1]"),
        ("criterion", est.criterion in CRITERIA, described(CRITERIA)),
        ("k_best", isinstance(est.k_best, Real) and not isinstance(est.k_best, bool)
         and est.k_best > 0 and (est.k_best < 1 or float(est.k_best).is_integer()),
         "a positive integer, or a share in (0, 1)"),
        ("max_iter", est.max_iter is None or (isinstance(est.max_iter, Integral)
                                               and est.max_iter >= 0), "None or an int >= 0"),
        ("calibration", est.calibration in (None, *CALIBRATIONS), described(CALIBRATIONS, True)),
        ("teacher", est.teacher in (None, *TEACHERS), described(TEACHERS, True)),
        ("teacher_weight", isinstance(est.teacher_weight, Real)
         and 0 <= est.teacher_weight <= 1, "a number in [0, 1]"),
        ("stopping", est.stopping in (None, *STOPPING), described(STOPPING, True)),
        ("validation_fraction", isinstance(est.validation_fraction, Real)
         and 0 < est.validation_fraction < 1, "a number in (0, 1)"),
        ("patience", isinstance(est.patience, Integral) and est.patience >= 1,
         "an int >= 1"),
        ("cv", isinstance(est.cv, Integral) and est.cv >= 2, "an int >= 2"),
        ("n_jobs", est.n_jobs is None or (isinstance(est.n_jobs, Integral)
                                          and est.n_jobs != 0), "None or a non-zero int"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ValueError(f"{name}={getattr(est, name)!r} is invalid: expected {expected}")



def check_finite(estimator, X) -> None:
    """NaN/inf in X are refused up front when the estimator cannot take them."""
    if hasattr(X, "toarray") or get_tags(estimator).input_tags.allow_nan:
        return
    bad = ~np.isfinite(np.asarray(X, dtype=float))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"X has {int(bad.sum())} NaN or infinite values (first at row {row}, column "
            f"{col}) and estimator={type(estimator).__name__} does not accept them"
        )



def check_lengths(X, y) -> None:
    n_x, n_y = _n_rows(X), _n_rows(y)
    if n_x is not None and n_y is not None and n_x != n_y:
        raise ValueError(f"X has {n_x} rows but y has {n_y} labels: they must match")


def _n_rows(a) -> int | None:
    shape = getattr(a, "shape", None)
    if shape:
        return int(shape[0])
    return len(a) if hasattr(a, "__len__") else None
