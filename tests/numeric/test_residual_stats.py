"""The batched residual statistics equal pymc_dlm.diagnostics' (statsmodels' conventions) row by row."""

from __future__ import annotations

import numpy as np
import pytest

from pymc_dlm.diagnostics import heteroskedasticity, jarque_bera, ljung_box
from pymc_dlm.numeric.residual_stats import heteroskedasticity_h, jarque_bera_stat, ljung_box_q


def test_rows_equal_the_diagnostics():
    x = np.random.default_rng(0).standard_t(5, size=(2, 3, 90))
    q = ljung_box_q(x, [1, 4, 12])
    jb, h = jarque_bera_stat(x), heteroskedasticity_h(x, 25)
    for i in range(2):
        for j in range(3):
            lb = ljung_box(x[i, j], 12).table["statistic"].to_numpy()  # every lag
            np.testing.assert_allclose(q[i, j], lb[[0, 3, 11]], rtol=1e-12)
            assert jb[i, j] == pytest.approx(jarque_bera(x[i, j]).statistic, rel=1e-12)
            assert h[i, j] == pytest.approx(heteroskedasticity(x[i, j], 25).statistic, rel=1e-12)
    assert heteroskedasticity_h(x)[0, 0] == pytest.approx(heteroskedasticity(x[0, 0]).statistic)


def test_bad_input():
    with pytest.raises(ValueError, match="finite series"):
        jarque_bera_stat([1.0, np.nan, 2.0, 3.0])
    with pytest.raises(ValueError, match="lags must be between 1 and N - 1 = 9"):
        ljung_box_q(np.ones((1, 10)) + np.arange(10), [10])
    with pytest.raises(ValueError, match="h must be between"):
        heteroskedasticity_h(np.arange(10.0), 6)
