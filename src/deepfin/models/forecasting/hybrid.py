"""Long- and short-term memory hybrid: an LSTM over weekly blocks, a GRU over the last days."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.forecasting.recurrent import RecurrentConfig, layer_options
from deepfin.models.kernels.fused_rnn import FusedGRU, FusedLSTM

PATHS = ("both", "long", "short")
SHORT_DAYS, LONG_STEP = 20, 5  # the defaults: four weeks of days; weeks of five trading days
LSTM_GATES, GRU_GATES = 4, 3


@dataclass(frozen=True)
class HybridConfig(RecurrentConfig):
    """Sizes and hyperparameters of the long- and short-memory hybrid forecaster."""

    model_name: ClassVar[str] = "hybrid"
    short_days: int | None = None  # rows the GRU reads; None: 20, or the window if shorter
    long_step: int | None = None  # rows per LSTM step; None: 5, or lookback // 2 if smaller
    paths: str = "both"  # "long" or "short" keeps one path, at the parameter count of both

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("short_days", "long_step"):
            value = getattr(self, field)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"hybrid: {field} must be an integer >= 1; got {value!r}")
        if self.paths not in PATHS:
            raise ConfigError(
                f"hybrid: paths must be one of {', '.join(PATHS)}; got {self.paths!r}"
            )
        if self.paths != "long" and self.lookback < self.short_rows:
            raise ConfigError(
                f"hybrid: short_days={self.short_days} is more than lookback={self.lookback}; "
                f"set short_days <= {self.lookback} (or unset) or lookback >= {self.short_days}"
            )
        if self.paths != "short" and self.long_steps < 2:
            smaller = f"long_step <= {self.lookback // 2}, " if self.lookback >= 2 else ""
            raise ConfigError(
                f"hybrid: lookback={self.lookback} gives the long path {self.long_steps} block(s) "
                f"of long_step={self.long_rows} rows; it needs at least 2: set lookback >= "
                f"{2 * self.long_rows}, {smaller}or paths='short'"
            )

    @property
    def short_rows(self) -> int:
        """The newest rows the short path reads."""
        return min(SHORT_DAYS, self.lookback) if self.short_days is None else self.short_days

    @property
    def long_rows(self) -> int:
        """Rows aggregated into one step of the long path."""
        return (
            max(1, min(LONG_STEP, self.lookback // 2)) if self.long_step is None else self.long_step
        )

    @property
    def long_steps(self) -> int:
        """Steps of the long path: whole blocks of the window; the oldest partial one is dropped."""
        return self.lookback // self.long_rows


def rnn_parameters(gates: int, n_features: int, hidden: int, num_layers: int) -> int:
    """Weights and biases of a stack of nn.LSTM (4 gates) or nn.GRU (3 gates) layers."""
    first = gates * hidden * (n_features + hidden + 2)
    return first + (num_layers - 1) * gates * hidden * (2 * hidden + 2)


def parameter_count(config: HybridConfig, paths: str, hidden: int) -> int:
    """Parameters of the hybrid of `config` with `paths` kept, at `hidden` units per path."""
    gates = {"long": [LSTM_GATES], "short": [GRU_GATES], "both": [LSTM_GATES, GRU_GATES]}[paths]
    count = sum(rnn_parameters(g, config.n_features, hidden, config.num_layers) for g in gates)
    if paths == "both":
        count += 2 * hidden * hidden + hidden  # the gate
    return count + hidden * config.n_outputs + config.n_outputs  # the head


def path_hidden_size(config: HybridConfig) -> int:
    """Units per path: hidden_size for both; for one path, the size matching both's count."""
    if config.paths == "both":
        return config.hidden_size
    both = parameter_count(config, "both", config.hidden_size)
    # one path of 4H units always outnumbers both paths of H, so the search stops there
    return min(
        range(1, 4 * config.hidden_size + 1),
        key=lambda size: abs(parameter_count(config, config.paths, size) - both),
    )


class HybridForecaster(nn.Module):
    """LSTM over block means of the whole window, GRU over its last days, gate-fused states."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        hidden = path_hidden_size(config)
        options = {**layer_options(config), "hidden_size": hidden}
        self.long = FusedLSTM(**options) if config.paths != "short" else None
        self.short = FusedGRU(**options) if config.paths != "long" else None
        # why a gate of the two final states, not attention over both sequences: the forecast
        # needs one summary of each memory, and a per-unit gate lets every unit take the long,
        # the short or a mix of them for one linear layer; attention would have to compare
        # weekly and daily steps, which share no time axis, and needs positions to do so
        self.gate = nn.Linear(2 * hidden, hidden) if config.paths == "both" else None
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(hidden, config.n_outputs)

    def long_memory(self, x: torch.Tensor) -> torch.Tensor:
        """Final LSTM state (B, H) over the mean of each block of long_step rows of (B, T, F)."""
        assert self.long is not None
        steps, rows = self.config.long_steps, self.config.long_rows
        # s = long_step; the oldest T % s rows, a partial block, are dropped
        whole = x[:, x.shape[1] - steps * rows :, :]  # (B, T, F) -> (B, T//s * s, F)
        # the mean, not the sum: a block keeps the features' scale (their scaler still fits);
        # for log returns the sum (the weekly return) is the mean times long_step, which the
        # input weights learn, so summing as well would add nothing
        blocks = whole.reshape(x.shape[0], steps, rows, x.shape[2])  # -> (B, T//s, s, F)
        weekly = blocks.mean(dim=2)  # (B, T//s, s, F) -> (B, T//s, F)
        states, _ = self.long(weekly)  # (B, T//s, F) -> (B, T//s, H)
        return states[:, -1, :]  # (B, T//s, H) -> (B, H)

    def short_memory(self, x: torch.Tensor) -> torch.Tensor:
        """Final GRU state (B, H) over the newest short_days rows of windows (B, T, F)."""
        assert self.short is not None
        recent = x[:, -self.config.short_rows :, :]  # (B, T, F) -> (B, S, F), S = short_days
        states, _ = self.short(recent)  # (B, S, F) -> (B, S, H)
        return states[:, -1, :]  # (B, S, H) -> (B, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        if self.short is None:
            state = self.long_memory(x)  # (B, T, F) -> (B, H)
        elif self.long is None:
            state = self.short_memory(x)  # (B, T, F) -> (B, H)
        else:
            assert self.gate is not None
            long, short = self.long_memory(x), self.short_memory(x)  # (B, T, F) -> 2 x (B, H)
            g = torch.sigmoid(self.gate(torch.cat([long, short], dim=-1)))  # (B, 2H) -> (B, H)
            state = g * long + (1.0 - g) * short  # (B, H)
        return self.head(self.dropout(state))  # (B, H) -> (B, O)
