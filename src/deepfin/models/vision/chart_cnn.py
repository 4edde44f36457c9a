"""The chart CNN of Jiang, Kelly and Xiu (2023): stacked 5x3 convolutions over a price chart.

Each block is a 5x3 convolution, batch norm, LeakyReLU (slope 0.01) and a 2x1 max-pool that
halves the height (price levels) and keeps the width (days). Channels start at 64 and double
per block; 5-, 20- and 60-day charts (32, 64 and 96 pixels high) take 2, 3 and 4 blocks, and
the taller charts' first convolution strides (3, 1) and dilates (2, 1) or (3, 1) over the
height. Dropout 0.5 before the linear head; Xavier-initialised weights.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from deepfin.errors import ConfigError

# the paper's layout per chart height: blocks, and the first layer's (height) stride and dilation
LAYOUTS = {32: (2, 1, 1), 64: (3, 3, 2), 96: (4, 3, 3)}


@dataclass(frozen=True)
class ChartCNNConfig:
    """Image size and classes (from the data), and the network's shape (None: the paper's)."""

    in_channels: int
    height: int
    width: int
    n_classes: int
    channels: int = 64  # the first block's; each later block doubles it
    blocks: int | None = None  # None: 2, 3 or 4 by the height (32, 64, 96; else 3)
    first_stride: int | None = None  # the first convolution's stride over the height
    first_dilation: int | None = None
    dropout: float = 0.5

    def __post_init__(self) -> None:
        for name in ("in_channels", "height", "width", "n_classes", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"chart_cnn: {name} must be an integer >= 1; got {value!r}")
        if self.n_classes < 2:
            raise ConfigError(f"chart_cnn: needs at least 2 classes; got {self.n_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"chart_cnn: dropout must be in [0, 1); got {self.dropout}")
        blocks, stride, dilation = self.layout
        if min(blocks, stride, dilation) < 1:
            raise ConfigError(
                f"chart_cnn: blocks, first_stride and first_dilation must be >= 1; got "
                f"{blocks}, {stride}, {dilation}"
            )
        if self.feature_height < 1:
            raise ConfigError(
                f"chart_cnn: {blocks} block(s) shrink a {self.height}-pixel chart to nothing; "
                "use fewer blocks or taller charts"
            )

    @property
    def layout(self) -> tuple[int, int, int]:
        """Blocks, the first layer's height stride and dilation."""
        blocks, stride, dilation = LAYOUTS.get(self.height, (3, 1, 1))
        return (
            self.blocks if self.blocks is not None else blocks,
            self.first_stride if self.first_stride is not None else stride,
            self.first_dilation if self.first_dilation is not None else dilation,
        )

    @property
    def feature_height(self) -> int:
        """The height of the last block's maps."""
        blocks, stride, _ = self.layout
        height = (self.height - 1) // stride + 1  # padded by 2 * dilation: only the stride shrinks
        for _ in range(blocks):
            height //= 2
        return height


def block(inputs: int, outputs: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """5x3 convolution (padded to keep the width), batch norm, LeakyReLU, 2x1 max-pool."""
    return nn.Sequential(
        nn.Conv2d(
            inputs,
            outputs,
            kernel_size=(5, 3),
            stride=(stride, 1),
            dilation=(dilation, 1),
            padding=(2 * dilation, 1),
        ),
        nn.BatchNorm2d(outputs),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d((2, 1)),
    )


class ChartCNN(nn.Module):
    """Charts (B, 1, H, W) in [0, 1] -> class logits (B, C); `features` then `head`."""

    def __init__(self, config: ChartCNNConfig) -> None:
        super().__init__()
        self.config = config
        blocks, stride, dilation = config.layout
        widths = [config.channels * 2**i for i in range(blocks)]
        layers = [block(config.in_channels, widths[0], stride=stride, dilation=dilation)]
        layers += [block(a, b) for a, b in itertools.pairwise(widths)]
        self.features = nn.Sequential(*layers)
        flat = widths[-1] * config.feature_height * config.width
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(flat, config.n_classes)
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of images (B, 1, H, W)."""
        maps = self.features(images)  # (B, 64 * 2^(blocks-1), H', W)
        logits: torch.Tensor = self.head(maps)
        return logits
