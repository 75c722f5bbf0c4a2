"""Batched log-likelihoods: one compiled pass over many series equals the one-series engine."""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
from pymc_dlm.numeric.batch import kalman_filter_many, kalman_smoother_many, loglike_many


def _mixed_batch():
    """Different parameters, different lengths (NaN padding), missing values inside."""
    rng = np.random.default_rng(4)
    B, n = 7, 60
    models = [dlm.LocalLinearTrend(0.3 + 0.1 * b, 0.05, 1.0 + 0.2 * b) for b in range(B)]
    Y = np.full((B, n), np.nan)
    for b, m in enumerate(models):
        length = n - 5 * b
        Y[b, :length] = dlm.simulate(m, length, rng=rng)[0][:, 0]
    Y[2, 10:14] = np.nan
    return models, Y


def test_batch_equals_looped_engine_on_a_mixed_batch():
    models, Y = _mixed_batch()
    got = loglike_many(models, Y, chunk_size=3)  # three chunks, the last one short
    ref = np.array([dlm.loglike(m, Y[b]) for b, m in enumerate(models)])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # trailing padding changes nothing: the short series alone gives the same number
    length = int(np.isfinite(Y[6]).sum())
    assert got[6] == pytest.approx(dlm.loglike(models[6], Y[6, :length]), rel=1e-12)


def test_one_shared_model_and_multivariate_series():
    rng = np.random.default_rng(5)
    model = dlm.StateSpaceModel(Z=[[1.0], [0.5]], H=np.diag([0.5, 0.8]), T=[[1.0]], R=[[1.0]],
                                Q=[[0.2]])
    Y = np.stack([dlm.simulate(model, 40, rng=rng)[0] for _ in range(4)])
    Y[1, 5, 0] = np.nan
    got = loglike_many(model, Y)
    np.testing.assert_allclose(got, [dlm.loglike(model, Y[b]) for b in range(4)], rtol=1e-12)


def test_batch_input_errors():
    models, Y = _mixed_batch()
    with pytest.raises(ValueError, match=r"\(B, n\) or \(B, n, p\)"):
        loglike_many(models[0], Y[0])
    with pytest.raises(ValueError, match="got 2 models for 7 series"):
        loglike_many(models[:2], Y)
    with pytest.raises(ValueError, match="one structure"):
        loglike_many([dlm.LocalLevel(1.0, 1.0)] + models[1:], Y)
    bad = Y.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        loglike_many(models, bad)


def test_batched_filter_equals_the_one_series_filter():
    models, Y = _mixed_batch()
    out = kalman_filter_many(models, Y, chunk_size=4)
    for b in (0, 2, 6):
        ref = dlm.kalman_filter(models[b], Y[b])
        for name in ("a_pred", "P_pred", "a_filt", "P_filt", "v", "F", "llf_t"):
            np.testing.assert_allclose(getattr(out, name)[b], getattr(ref, name), rtol=1e-12,
                                       atol=1e-12, err_msg=name)
        assert out.n_diffuse[b] == ref.n_diffuse
    np.testing.assert_allclose(out.llf, loglike_many(models, Y), rtol=1e-12)


def test_batched_smoother_equals_the_one_series_smoother():
    """Diffuse local linear trends (two exact diffuse steps, one of them missing in series 2
    of a copy) and a multivariate shared model: every smoothed moment equals kalman_smoother."""
    models, Y = _mixed_batch()
    Y = Y.copy()
    Y[2, 0] = np.nan  # the diffuse period of series 2 lasts one step longer
    out = kalman_smoother_many(models, Y, chunk_size=4)
    for b in range(len(models)):
        ref = dlm.kalman_smoother(models[b], Y[b])
        for name in ("a_smooth", "V", "eps_hat", "eps_var", "eta_hat", "eta_var"):
            np.testing.assert_allclose(getattr(out, name)[b], getattr(ref, name), rtol=1e-10,
                                       atol=1e-10, err_msg=f"{name}[{b}]")
    assert out.filter.n_diffuse[2] == dlm.kalman_filter(models[2], Y[2]).n_diffuse == 3
    rng = np.random.default_rng(6)
    model = dlm.StateSpaceModel(Z=[[1.0], [0.5]], H=np.diag([0.5, 0.8]), T=[[1.0]], R=[[1.0]],
                                Q=[[0.2]])
    Y2 = np.stack([dlm.simulate(model, 30, rng=rng)[0] for _ in range(3)])
    Y2[0, 0, 0] = np.nan
    out2 = kalman_smoother_many(model, Y2)
    for b in range(3):
        ref = dlm.kalman_smoother(model, Y2[b])
        np.testing.assert_allclose(out2.a_smooth[b], ref.a_smooth, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out2.eps_var[b], ref.eps_var, rtol=1e-10, atol=1e-12)


def test_a_failed_series_gives_nan_moments_and_leaves_the_others_alone():
    """A singular non-diagonal H cannot be decorrelated in the exact diffuse steps: the
    one-series filter raises; in a batch that series' log-likelihood and smoothed moments are
    NaN and the series beside it (its first row half missing, so H_o is 1x1) is smoothed."""
    model = dlm.StateSpaceModel(Z=[[1.0], [1.0]], H=[[1.0, 1.0], [1.0, 1.0]], T=[[1.0]],
                                R=[[1.0]], Q=[[0.2]], diffuse=[True])
    Y = np.random.default_rng(3).normal(size=(2, 12, 2))
    Y[1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="not positive definite"):
        dlm.kalman_filter(model, Y[0])
    out = kalman_smoother_many(model, Y)
    assert out.filter.n_diffuse.tolist() == [-1, 1]
    assert np.isnan(loglike_many(model, Y)[0])
    for name in ("a_smooth", "V", "eps_hat", "eps_var", "eta_hat", "eta_var"):
        assert np.isnan(getattr(out, name)[0]).all(), name
        np.testing.assert_allclose(getattr(out, name)[1],
                                   getattr(dlm.kalman_smoother(model, Y[1]), name), rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_forecast_at_draws_equals_forecast_at_each_draw():
    """forecast_draws: one series, S parameter sets of a local linear trend (2 states, one
    diffuse pair), row s equal to dlm.forecast at draw s; missing values inside y."""
    from pymc_dlm.numeric.assemble import system_arrays
    from pymc_dlm.numeric.batch import forecast_draws, stack_systems

    models, Y = _mixed_batch()
    y = Y[2, :50]
    got = forecast_draws(stack_systems([system_arrays(m) for m in models]), y, 4, chunk_size=3)
    for s, m in enumerate(models):
        ref = dlm.forecast(m, y, 4)
        np.testing.assert_allclose(got.y_mean[s], ref.y_mean, rtol=1e-12)
        np.testing.assert_allclose(got.y_cov[s], ref.y_cov, rtol=1e-12)
    with pytest.raises(ValueError, match="the model has p = 1; y has p = 2"):
        forecast_draws(stack_systems([system_arrays(models[0])]), np.zeros((5, 2)), 2)


def test_mixture_quantiles_of_a_bimodal_mixture_against_brentq():
    from scipy import optimize, stats

    from pymc_dlm.numeric.batch import mixture_moments, mixture_quantiles

    mean = np.array([[-3.0, 0.0], [4.0, 0.0], [4.5, 1e3]])  # (S = 3, two mixtures)
    var = np.array([[0.25, 1.0], [1.0, 4.0], [0.04, 1e4]])
    probs = [0.01, 0.3, 1 / 3, 0.5, 0.975]
    got = mixture_quantiles(mean, var, probs)
    for j in range(2):
        def cdf(x, j=j):
            return stats.norm.cdf(x, mean[:, j], np.sqrt(var[:, j])).mean()

        for i, q in enumerate(probs):
            ref = optimize.brentq(lambda x, q=q: cdf(x) - q, -1e4, 1e4, xtol=1e-14, rtol=1e-15)
            assert got[i, j] == pytest.approx(ref, rel=1e-10, abs=1e-10)
    mu, v = mixture_moments(mean, var)
    np.testing.assert_allclose(mu, mean.mean(0), rtol=1e-15)
    np.testing.assert_allclose(v, (var + mean ** 2).mean(0) - mean.mean(0) ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match=r"probs must be a 1-d sequence in \(0, 1\)"):
        mixture_quantiles(mean, var, [0.0])
