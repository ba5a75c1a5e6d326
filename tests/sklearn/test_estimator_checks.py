"""scikit-learn's own estimator checks on pydl.sklearn's estimators (the suite's spine).

At most two expected failures per class would be allowed, each justified in ``WHY``.
"""
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from pydl.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Expected failures, by check name, with the reason (none at present: every check passes; at
# most two per class are allowed). Full-batch training of the checks' small data sets (batch_size
# "auto" = min(200, n)) makes even the sample-weight equivalence check hold.
WHY = {}


def expected_failed_checks(estimator):
    return dict(WHY)


@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
