"""What the recurrent forecasters share: their sizes, checked once, and their layer options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from deepfin.errors import ConfigError


@dataclass(frozen=True)
class RecurrentConfig:
    """Sizes and hyperparameters of a recurrent forecaster."""

    model_name: ClassVar[str] = "recurrent"  # for messages: which model's option is wrong
    n_features: int
    lookback: int
    n_outputs: int
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        name = self.model_name
        for field in ("n_features", "lookback", "n_outputs", "hidden_size", "num_layers"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: {field} must be an integer >= 1; got {value!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{name}: dropout must be a number in [0, 1); got {self.dropout!r}")


def layer_options(config: RecurrentConfig) -> dict[str, Any]:
    """Keyword arguments of nn.LSTM / nn.GRU / nn.RNN for a batch-first stack of `config`."""
    return {
        "input_size": config.n_features,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "batch_first": True,
        # torch applies this only between layers, and warns when there is just one
        "dropout": config.dropout if config.num_layers > 1 else 0.0,
    }
