"""Training: the one loop every model trains in, its checkpoints, DDP and DP-SGD."""

from deepfin.training.loop import (
    History,
    TrainingConfig,
    evaluate_loss,
    fit_model,
    predict_batches,
    select_device,
)

__all__ = [
    "History",
    "TrainingConfig",
    "evaluate_loss",
    "fit_model",
    "predict_batches",
    "select_device",
]
