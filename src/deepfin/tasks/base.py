"""What every task's estimator shares: the fitted check, and rebuilding from saved settings."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

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

    @classmethod
    def from_settings(cls, saved: dict[str, Any], settings: type) -> Self:
        """An unfitted estimator with the settings a run folder saved: the fields of the
        `settings` dataclass, and the training settings."""
        from deepfin.training import TrainingConfig

        fields = {field.name for field in dataclasses.fields(settings)}
        return cls(
            **{k: v for k, v in saved.items() if k in fields},
            training=TrainingConfig(**saved.get("training", {})),
        )  # type: ignore[call-arg]  # every task's estimator takes its settings and training
