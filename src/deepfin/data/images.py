"""Image batches for the training loop: charts drawn per batch, and images held as uint8.

Charts are drawn from the panel's prices when a batch is asked for (tens of thousands a second,
against hundreds a second that a CNN trains on), so a panel's charts never sit in memory; a
batch is the only float copy. Plain images are held once as uint8 (N, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepfin.data.chart_panel import ChartSet
from deepfin.errors import ConfigError


class ChartBatches:
    """Charts (B, 1, H, W) in [0, 1] with their up/down labels (B,), drawn per batch."""

    def __init__(self, charts: ChartSet, device: torch.device | None = None) -> None:
        self.charts = charts
        self.labels = torch.from_numpy(charts.samples.labels)
        self.device = device

    def __len__(self) -> int:
        return len(self.charts)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Charts and labels at `positions`."""
        chosen = positions.cpu().numpy()
        ends = self.charts.samples.ends[chosen]
        images = torch.from_numpy(self.charts.panel.render(ends)).unsqueeze(1)  # (B, 1, H, W)
        labels = self.labels[chosen]
        if self.device is not None:
            images, labels = images.to(self.device), labels.to(self.device)
        return images.float() / 255.0, labels

    def to(self, device: torch.device) -> ChartBatches:
        """The same charts, their batches moved to `device`."""
        return ChartBatches(self.charts, device)


@dataclass(frozen=True)
class Augmentation:
    """Random changes to training images: mirrored left-right, shifted by a few pixels."""

    flip: bool = False
    shift: int = 0  # at most this many pixels in each direction, the gap filled with black

    def __post_init__(self) -> None:
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or self.shift < 0:
            raise ConfigError(f"shift must be an integer >= 0; got {self.shift!r}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Changed copies of images (B, C, H, W), drawn with torch's generator."""
        if self.flip:
            mirrored = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(mirrored[:, None, None, None], images.flip(3), images)
        if self.shift:
            pad = self.shift
            padded = F.pad(images, (pad, pad, pad, pad))  # (B, C, H + 2 pad, W + 2 pad)
            height, width = images.shape[2:]
            dy, dx = torch.randint(0, 2 * pad + 1, (2, images.shape[0])).tolist()
            images = torch.stack(
                [
                    padded[i, :, y : y + height, x : x + width]
                    for i, (y, x) in enumerate(zip(dy, dx, strict=True))
                ]
            )
        return images


class ImageArrays:
    """Images (N, C, H, W) uint8 with class codes (N,); training batches may be augmented."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        augmentation: Augmentation | None = None,
    ) -> None:
        if images.ndim != 4 or images.dtype != torch.uint8 or len(images) != len(labels):
            raise ConfigError(
                f"need uint8 images (N, C, H, W) and N labels; got {tuple(images.shape)} "
                f"{images.dtype} and {len(labels)} labels"
            )
        self.images = images
        self.labels = labels
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1] and labels at `positions`."""
        images = self.images[positions].float() / 255.0
        if self.augmentation is not None:
            images = self.augmentation(images)
        return images, self.labels[positions]

    def to(self, device: torch.device) -> ImageArrays:
        """The same images on `device`."""
        return ImageArrays(self.images.to(device), self.labels.to(device), self.augmentation)
