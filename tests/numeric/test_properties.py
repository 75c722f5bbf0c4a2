"""Property tests (hypothesis) on invariants of the NumPy engine."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pymc_dlm as dlm
from conftest import dense_reference


@st.composite
def models_and_data(draw):
    m = draw(st.integers(1, 3))
    p = draw(st.integers(1, 2))
    n = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, m))
    T = 0.95 * A / max(1.0, np.max(np.abs(np.linalg.eigvals(A))))
    B = rng.standard_normal((m, m))
    C = rng.standard_normal((p, p))
    mod = dlm.StateSpaceModel(
        Z=rng.standard_normal((p, m)), T=T, Q=B @ B.T + 0.1 * np.eye(m),
        H=C @ C.T + 0.1 * np.eye(p), a1=rng.standard_normal(m), P1=np.eye(m),
    )
    y = rng.standard_normal((n, p)) * 3
    y[rng.random((n, p)) < draw(st.floats(0.0, 0.5))] = np.nan
    return mod, y


@settings(max_examples=40, deadline=None)
@given(models_and_data())
def test_filtered_covariances_stay_symmetric_psd(case):
    mod, y = case
    f = dlm.kalman_filter(mod, y)
    for P in (f.P_filt, f.P_pred):
        np.testing.assert_array_equal(P, np.swapaxes(P, 1, 2))
        assert np.linalg.eigvalsh(P).min() > -1e-10 * np.abs(P).max()


@settings(max_examples=40, deadline=None)
@given(models_and_data())
def test_smoother_at_last_time_equals_filter(case):
    mod, y = case
    s = dlm.kalman_smoother(mod, y)
    f = s.filter
    np.testing.assert_allclose(s.a_smooth[-1], f.a_filt[-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.V[-1], f.P_filt[-1], rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(models_and_data())
def test_loglik_equals_dense_mvn(case):
    mod, y = case
    llf, means, covs = dense_reference(mod, y)
    s = dlm.kalman_smoother(mod, y)
    np.testing.assert_allclose(s.filter.llf, llf, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s.a_smooth, means, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(s.V, covs, rtol=1e-8, atol=1e-9)
