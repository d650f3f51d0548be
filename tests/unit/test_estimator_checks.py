"""scikit-learn's own estimator checks, on the defaults and on the opt-in features."""

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from selftrain import SelfTrainingClassifier

# scikit-learn marks the same check as an expected failure of its own SelfTrainingClassifier.
EXPECTED_FAILED = {
    "check_non_transformer_estimators_n_iter": (
        "n_iter_ counts self-training rounds, and is 0 when y has no unlabeled rows (the checks "
        "fit fully labeled data)"
    ),
}

INSTANCES = [
    SelfTrainingClassifier(LogisticRegression(C=1), max_iter=5),
    SelfTrainingClassifier(
        LogisticRegression(C=1), criterion="k_best", k_best=0.3, balanced=True, max_iter=3
    ),
    SelfTrainingClassifier(
        LogisticRegression(C=1), stopping="holdout", patience=1, random_state=0, max_iter=3
    ),
    SelfTrainingClassifier(
        LogisticRegression(C=1), stopping="cv", patience=1, random_state=0, max_iter=3
    ),
]


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(INSTANCES, expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
