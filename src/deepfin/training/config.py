"""How to train (TrainingConfig) and what training did (History)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from deepfin.errors import ConfigError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "linear")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: optimiser, regularisation, stopping and reproducibility."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0  # decoupled for adamw, coupled (as L2 in the gradient) for adam
    l1: float = 0.0
    l2: float = 0.0
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    patience: int = 5  # epochs without validation improvement before stopping; 0: never stop
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    bf16: bool = False  # bfloat16 autocast of the forward pass: faster on GPUs with bf16 units
    # the learning rate rises linearly over this share of all steps (fine-tuning a pretrained
    # encoder with a full rate from the first step wrecks what it learned)
    warmup_fraction: float = 0.0
    lr_schedule: str = "constant"  # or "linear": down to zero at the last step, after warm-up

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "l1": self.l1 >= 0,
            "l2": self.l2 >= 0,
            "grad_clip": self.grad_clip >= 0,
            "patience": self.patience >= 0,
            "warmup_fraction": 0 <= self.warmup_fraction < 1,
        }
        # a NaN or infinite value passes no comparison, or only a meaningless one
        bad = [
            f"{name}={getattr(self, name)}"
            for name, ok in checks.items()
            if not ok or not math.isfinite(getattr(self, name))
        ]
        if bad:
            raise ConfigError(
                f"invalid training settings {bad}: epochs and batch_size must be >= 1, "
                "learning_rate > 0, warmup_fraction in [0, 1), the rest >= 0, all finite"
            )
        if not isinstance(self.device, str) or not DEVICE.fullmatch(self.device):
            raise ConfigError(
                f"unknown device '{self.device}'; choose auto, cpu, cuda, cuda:N or mps"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{self.optimizer}'; choose one of {OPTIMIZERS}")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(
                f"unknown lr_schedule '{self.lr_schedule}'; choose one of {SCHEDULES}"
            )


@dataclass
class History:
    """Per-epoch losses, the epoch whose weights were kept, and why training stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = math.inf  # the validation loss of the kept epoch
    selected_by: str = "val_loss"  # or "val_score": a score to maximise chose the kept epoch
    best_score: float | None = None  # that score at the kept epoch
    stopped: str = "completed"  # completed | early_stopping | interrupted
