"""Training: the one loop every model trains in, its checkpoints, DDP and DP-SGD."""

from deepfin.training.config import History, TrainingConfig
from deepfin.training.evaluation import evaluate_loss, predict_batches
from deepfin.training.loop import fit_model, select_device

__all__ = [
    "History",
    "TrainingConfig",
    "evaluate_loss",
    "fit_model",
    "predict_batches",
    "select_device",
]
