"""A small CNN for any labelled images: 3x3 convolution blocks, global pooling, a linear head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepfin.errors import ConfigError


@dataclass(frozen=True)
class ImageCNNConfig:
    """Image size and classes (from the data), and the network's width and depth."""

    in_channels: int
    height: int
    width: int
    n_classes: int
    channels: int = 32  # the first block's; each later block doubles it
    blocks: int | None = None  # None: as many as halve the smaller side down to 2 (at most 4)
    dropout: float = 0.25

    def __post_init__(self) -> None:
        for name in ("in_channels", "height", "width", "n_classes", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"image_cnn: {name} must be an integer >= 1; got {value!r}")
        if self.n_classes < 2:
            raise ConfigError(f"image_cnn: needs at least 2 classes; got {self.n_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"image_cnn: dropout must be in [0, 1); got {self.dropout}")
        if self.depth < 1 or min(self.height, self.width) // 2**self.depth < 1:
            raise ConfigError(
                f"image_cnn: {self.depth} block(s) do not fit {self.height}x{self.width} images "
                "(each halves both sides); use fewer blocks"
            )

    @property
    def depth(self) -> int:
        """The number of blocks."""
        if self.blocks is not None:
            return self.blocks
        return max(1, min(4, int(math.log2(min(self.height, self.width))) - 1))


class ImageCNN(nn.Module):
    """Images (B, channels, H, W) in [0, 1] -> class logits (B, C); `features` then `head`."""

    def __init__(self, config: ImageCNNConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.channels * 2**i for i in range(config.depth)]
        layers: list[nn.Module] = []
        for inputs, outputs in zip([config.in_channels, *widths[:-1]], widths, strict=True):
            layers += [
                nn.Conv2d(inputs, outputs, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
                nn.Conv2d(outputs, outputs, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(widths[-1], config.n_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of images (B, channels, H, W)."""
        maps = self.features(images)  # (B, channels * 2^(blocks-1), H / 2^blocks, W / 2^blocks)
        logits: torch.Tensor = self.head(maps)
        return logits
