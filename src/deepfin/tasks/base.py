"""What every task's estimator shares: the fitted check."""

from __future__ import annotations

from deepfin.errors import NotFittedError


class Estimator:
    """Base class: constructors only store; `fit` learns state whose names end in `_`."""

    _fitted_attribute = "model_"

    def check_is_fitted(self) -> None:
        """Raise `NotFittedError` unless `fit` (or `load`) has run."""
        if getattr(self, self._fitted_attribute, None) is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(train, val) "
                f"or {type(self).__name__}.load(run_dir) first"
            )
