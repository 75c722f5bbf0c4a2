"""What the estimators' results share: information criteria and the summary's first lines."""

from __future__ import annotations

import numpy as np

__all__ = ["FitStatistics"]


class FitStatistics:
    """Mixin for results with ``log_likelihood``, ``df_model``, ``nobs``, ``converged``, ``n_iter``."""

    @property
    def aic(self) -> float:
        r""":math:`-2\ell + 2 k` with k = ``df_model`` (statsmodels' convention)."""
        return -2.0 * self.log_likelihood + 2.0 * self.df_model

    @property
    def bic(self) -> float:
        r""":math:`-2\ell + k \log n_{obs}` (statsmodels' convention under exact diffuse)."""
        return -2.0 * self.log_likelihood + self.df_model * np.log(self.nobs)

    def _header(self, title: str) -> list[str]:
        return [
            title,
            f"log-likelihood {self.log_likelihood:.4f}   AIC {self.aic:.4f}   BIC {self.bic:.4f}",
            f"observations {self.nobs}   converged {self.converged}   iterations {self.n_iter}",
        ]

    def __repr__(self) -> str:
        return self.summary()
