"""SUTSE models: k series sharing a component's structure with full disturbance covariances.

References: with zero correlations the likelihood is the sum of the univariate ones (exact);
with correlations, statsmodels' filter on the same matrices with its exact diffuse
initialisation (``statsmodels_smooth`` in conftest, rtol 1e-8 as in the filter reference
tests); the EM algorithm's log-likelihood never decreases and it estimates the covariance
blocks in full.
"""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
from conftest import statsmodels_smooth
from pymc_dlm.estimation import fit_em


@pytest.fixture(scope="module")
def y():
    """Log UK drivers killed or seriously injured and the log petrol price, 1969-1976."""
    d = dlm.datasets.load_uk_drivers().iloc[:96]
    return np.column_stack([np.log(d["drivers_ksi"]), d["log_petrol_price"]])


def test_uncorrelated_is_the_sum_of_univariate_models(y):
    mod = dlm.SUTSE(dlm.LocalLinearTrend(1.0, 1.0), [np.diag([0.02, 0.01]), np.diag([1e-4, 4e-4])],
                    np.diag([0.01, 0.003]), series=["a", "b"])
    ref = (dlm.loglike(dlm.LocalLinearTrend(0.02**0.5, 1e-2, 0.1), y[:, 0])
           + dlm.loglike(dlm.LocalLinearTrend(0.1, 0.02, 0.003**0.5), y[:, 1]))
    assert dlm.loglike(mod, y) == pytest.approx(ref, rel=1e-12)
    assert mod.state_names == ("level.a", "level.b", "slope.a", "slope.b")
    np.testing.assert_array_equal(mod.T, np.kron([[1, 1], [0, 1]], np.eye(2)))


def test_correlated_local_level_matches_statsmodels(y):
    mod = dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.02, 0.012], [0.012, 0.01]]],
                    [[0.01, -0.002], [-0.002, 0.004]], series=["a", "b"])
    assert dlm.loglike(mod, y) == pytest.approx(statsmodels_smooth(mod, y).llf, rel=1e-8)


def test_rank_one_level_is_a_common_level(y):
    """Sigma_level = l l' (rank one): the two levels move together."""
    lam = np.array([[0.1], [0.06]])
    mod = dlm.SUTSE(dlm.LocalLevel(1.0), [lam @ lam.T], np.diag([0.01, 0.004]),
                    series=["a", "b"])
    assert dlm.loglike(mod, y) == pytest.approx(statsmodels_smooth(mod, y).llf, rel=1e-8)


def test_em_estimates_full_blocks(y):
    start = dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.01, 0.001], [0.001, 0.01]]],
                      [[0.01, 0.001], [0.001, 0.01]], series=["a", "b"])
    em = fit_em(y, start, max_iter=30, tol=1e-10)
    assert np.diff(em.log_likelihood_history).min() > -1e-9
    Q, H = em.model.Q, em.model.H
    assert Q[0, 1] != 0.001 and H[0, 1] != 0.001
    np.testing.assert_allclose(Q, Q.T)
    assert np.all(np.linalg.eigvalsh(Q) > 0) and np.all(np.linalg.eigvalsh(H) > 0)


@pytest.mark.parametrize(("args", "match"), [
    ((dlm.LocalLevel(1.0), []), "covs must hold r = 1"),
    ((dlm.LocalLevel(1.0), [np.eye(3)]), r"covs\[0\] must be \(k, k\) = \(2, 2\)"),
    ((dlm.Regression(np.ones((5, 1))), [np.eye(2)]), "constant, numeric Z, T and R"),
    ((dlm.VAR(np.zeros((1, 2, 2)), np.eye(2)), [np.eye(2)] * 2), "univariate"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        dlm.SUTSE(*args, series=["a", "b"])
