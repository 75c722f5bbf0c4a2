"""Model specification: composition is exact, every validation path raises a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
from pymc_dlm import StateSpaceModel


class TestComposition:
    def test_composition_is_block_diagonal(self):
        """LLT + dummy seasonal(4) + AR(1) against the hand-built matrix set."""
        mod = (
            dlm.LocalLinearTrend(1.0, 0.5, sigma_obs=3.0)
            + dlm.Seasonal(4, 2.0)
            + dlm.Autoregressive([0.6], 1.5)
        )
        Z = np.array([[1, 0, 1, 0, 0, 1.0]])
        T = np.zeros((6, 6))
        T[:2, :2] = [[1, 1], [0, 1]]
        T[2:5, 2:5] = [[-1, -1, -1], [1, 0, 0], [0, 1, 0]]
        T[5, 5] = 0.6
        R = np.zeros((6, 4))
        R[0, 0] = R[1, 1] = R[2, 2] = R[5, 3] = 1.0
        Q = np.diag([1.0, 0.25, 4.0, 2.25])
        np.testing.assert_array_equal(mod.Z, Z)
        np.testing.assert_array_equal(mod.T, T)
        np.testing.assert_array_equal(mod.R, R)
        np.testing.assert_array_equal(mod.Q, Q)
        np.testing.assert_array_equal(mod.H, [[9.0]])
        np.testing.assert_array_equal(mod.a1, np.zeros(6))
        np.testing.assert_array_equal(mod.P1, np.zeros((6, 6)))
        assert mod.diffuse == (True,) * 5 + (False,)
        assert mod.stationary == (False,) * 5 + (True,)
        assert mod.state_names == ("level", "slope", "seasonal_0", "seasonal_1", "seasonal_2",
                                   "ar_0")
        assert [c.name for c in mod.components] == ["trend", "seasonal", "ar"]
        assert mod.components[1].states == (2, 3, 4)

    def test_observation_noise_is_summed(self):
        mod = dlm.LocalLevel(1.0, sigma_obs=2.0) + dlm.Irregular(1.0)
        np.testing.assert_array_equal(mod.H, [[5.0]])
        assert mod.m == 1

    def test_time_varying_parts_broadcast(self):
        X = np.arange(10.0)[:, None]
        mod = dlm.LocalLevel(1.0, 1.0) + dlm.Regression(X)
        assert mod.Z.shape == (10, 1, 2) and mod.n_time == 10
        np.testing.assert_array_equal(mod.Z[:, 0, 0], 1.0)
        np.testing.assert_array_equal(mod.Z[:, 0, 1], X[:, 0])
        assert mod.T.shape == (2, 2)

    def test_adding_zero_variance_component_keeps_loglik(self):
        """A + B with B's variances at 0 and B's states fixed at 0 (known, zero P1)."""
        y = dlm.datasets.load_nile()
        a = dlm.LocalLevel(1469.1**0.5, 15099**0.5)
        b = dlm.Seasonal(3, 0.0).replace(diffuse=[False, False], P1=np.zeros((2, 2)))
        np.testing.assert_allclose(dlm.loglike(a + b, y), dlm.loglike(a, y), rtol=1e-13)

    def test_duplicate_names_rejected(self):
        with pytest.raises(ValueError, match=r"state names \['level'\] appear in both"):
            dlm.LocalLevel(1.0) + dlm.LocalLevel(1.0)
        mod = dlm.Seasonal(4, 1.0) + dlm.Seasonal(7, 1.0, name="weekly")
        assert mod.m == 9

    def test_models_are_immutable(self):
        mod = dlm.LocalLevel(1.0)
        with pytest.raises(AttributeError):
            mod.Z = np.eye(1)


class TestComponents:
    def test_trigonometric_seasonal_even_period(self):
        mod = dlm.Seasonal(4, 1.0, form="trigonometric")
        lam = np.pi / 2
        np.testing.assert_allclose(
            mod.T, [[np.cos(lam), np.sin(lam), 0], [-np.sin(lam), np.cos(lam), 0], [0, 0, -1]],
            atol=1e-15,
        )
        np.testing.assert_array_equal(mod.Z, [[1, 0, 1]])

    def test_cycle_stationary_covariance(self):
        from pymc_dlm.numeric import system_arrays

        mod = dlm.Cycle(10.0, 0.8, 2.0)
        # Lyapunov solve: the zero off-diagonal comes out as rounding (seen: 1e-16 on one CPU)
        np.testing.assert_allclose(system_arrays(mod).P1, 4.0 / (1 - 0.64) * np.eye(2),
                                   rtol=1e-12, atol=1e-14 * 4.0 / (1 - 0.64))
        assert dlm.Cycle(10.0, 1.0, 2.0).diffuse == (True, True)

    def test_symbolic_entries_are_kept(self):
        pt = pytest.importorskip("pytensor.tensor")
        s = pt.dscalar("s")
        mod = dlm.LocalLevel(s, 2.0)
        assert not mod.is_numeric
        with pytest.raises(TypeError, match="entry Q is a TensorVariable .*needs numbers"):
            dlm.kalman_filter(mod, np.ones(3))


class TestValidation:
    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(Z=np.eye(2), T=np.eye(3), Q=np.eye(3)), r"T must be \(m, m\) = \(2, 2\); got \(3, 3\)"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=np.eye(2)), r"Q must be \(r, r\) = \(1, 1\); got \(2, 2\)"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], H=np.eye(2)), r"H must be \(p, p\) = \(1, 1\)"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], R=[[1.0, 0.0]]), r"Q must be \(r, r\) = \(2, 2\)"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], a1=[0.0, 1.0]), r"a1 must be \(m,\) = \(1,\)"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], d=[0.0, 1.0]), r"d must be \(p,\) = \(1,\)"),
            (dict(Z=np.ones((5, 1, 1)), T=np.ones((4, 1, 1)), Q=[[1.0]]),
             r"time-varying T has 4 time steps but other matrices have 5"),
            (dict(Z=np.ones(3), T=[[1.0]], Q=[[1.0]]), r"Z must be \(p, m\) or \(n, p, m\)"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[-1.0]]), r"Q must have non-negative variances"),
            (dict(Z=[[1.0, 0.0]], T=np.eye(2), Q=[[1.0, 0.5], [0.0, 1.0]]), r"Q must be symmetric"),
            (dict(Z=[[1.0, 0.0]], T=np.eye(2), Q=[[1.0, 2.0], [2.0, 1.0]]),
             r"Q must be positive semi-definite; got smallest eigenvalue -1"),
            (dict(Z=[[np.inf]], T=[[1.0]], Q=[[1.0]]), r"Z must be finite; got inf"),
            (dict(Z=[[1.0]], T=[[np.nan]], Q=[[1.0]]), r"T must be finite; got nan"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], P1=[[1.0]], diffuse=[True]),
             r"P1 must be zero in the rows and columns of diffuse"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], state_names=["a", "b"]),
             r"state_names must have m = 1 names; got 2"),
            (dict(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], diffuse=[True], stationary=[True]),
             r"marked both diffuse and stationary"),
            (dict(Z="abc", T=[[1.0]], Q=[[1.0]]), r"Z must be numbers, a NumPy array"),
        ],
    )
    def test_bad_model_raises(self, kwargs, match):
        with pytest.raises((ValueError, TypeError), match=match):
            StateSpaceModel(**kwargs)

    @pytest.mark.parametrize(
        "call, match",
        [
            (lambda: dlm.LocalLevel(-1.0), r"sigma_level must be a finite standard deviation >= 0; got -1.0"),
            (lambda: dlm.Seasonal(1, 1.0), r"period must be an integer >= 2; got 1"),
            (lambda: dlm.Seasonal(12, 1.0, form="fourier"), r"form must be one of \['dummy', 'trigonometric'\]; got 'fourier'"),
            (lambda: dlm.Seasonal(12, 1.0, form="trigonometric", harmonics=7), r"harmonics must be an integer in 1..6"),
            (lambda: dlm.Seasonal(12, 1.0, harmonics=2), r"harmonics applies to form='trigonometric' only"),
            (lambda: dlm.Cycle(10.0, 1.5, 1.0), r"damping must be in \(0, 1\]; got 1.5"),
            (lambda: dlm.Cycle(1.0, 0.5, 1.0), r"period must be > 2 time steps"),
            (lambda: dlm.Autoregressive([1.2], 1.0), r"do not describe a stationary AR process"),
            (lambda: dlm.Regression(np.array([[np.nan]])), r"X must be finite"),
            (lambda: dlm.LocalLevel(1.0) + dlm.StateSpaceModel(Z=np.eye(2), T=np.eye(2), Q=np.eye(2)),
             r"cannot add models with p = 1 and p = 2"),
        ],
    )
    def test_bad_component_raises(self, call, match):
        with pytest.raises(ValueError, match=match):
            call()

    @pytest.mark.parametrize(
        "y, match",
        [
            (np.ones((5, 2)), r"y must be \(n, p\) = \(n, 1\); got shape \(5, 2\)"),
            (np.array([1.0, np.inf]), r"y must not contain inf \(NaN marks missing values\)"),
            (["a", "b"], r"y must be numeric"),
        ],
    )
    def test_bad_y_raises(self, y, match):
        with pytest.raises((ValueError, TypeError), match=match):
            dlm.kalman_filter(dlm.LocalLevel(1.0, 1.0), y)

    def test_time_varying_length_must_match_y(self):
        with pytest.raises(ValueError, match=r"time-varying over n = 10 steps but y has 9"):
            dlm.kalman_filter(dlm.Regression(np.ones((10, 1))), np.ones(9))

    def test_1d_y_for_multivariate_model(self):
        mod = StateSpaceModel(Z=np.ones((2, 1)), T=[[1.0]], Q=[[1.0]], H=np.eye(2))
        with pytest.raises(ValueError, match=r"y is 1-D but the model has p = 2"):
            dlm.kalman_filter(mod, np.ones(4))
