"""Grad-CAM lights up the part of the image a net reads, and nothing else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepfin.explain.gradcam import grad_cam
from deepfin.models import build_image_model


class Halves(nn.Module):
    """Two feature maps: the image's left half (right half black), and its right half."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        left = images.clone()
        left[..., 4:] = 0
        return torch.cat([left, images - left], dim=1)  # (B, 2, 8, 8)


class LeftReader(nn.Module):
    """A net whose class-1 logit is the sum of the left-half map; the right half is ignored."""

    def __init__(self) -> None:
        super().__init__()
        self.features = Halves()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 2, bias=False))
        with torch.no_grad():
            weight = torch.zeros(2, 2, 8, 8)
            weight[1, 0] = 1.0
            self.head[1].weight.copy_(weight.reshape(2, 128))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def test_the_heat_map_covers_what_the_net_reads() -> None:
    images = torch.rand(3, 1, 8, 8) + 0.1
    cam = grad_cam(LeftReader(), images, target=1)
    assert cam.shape == (3, 8, 8)
    assert cam.amax(dim=(1, 2)).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert (cam[:, :, 4:] == 0).all()  # the map the net ignores never counts
    assert (cam[:, :, :4] > 0).all()
    left = images[:, 0, :, :4]
    torch.testing.assert_close(cam[:, :, :4], left / left.amax(dim=(1, 2), keepdim=True))


def test_a_chart_cnn_gets_one_map_per_chart_and_is_left_as_it_was() -> None:
    torch.manual_seed(0)
    model = build_image_model("chart_cnn", in_channels=1, height=64, width=60, n_classes=2)
    model.train()
    images = (torch.rand(2, 1, 64, 60) > 0.9).float()
    cam = grad_cam(model, images)
    assert cam.shape == (2, 64, 60) and float(cam.min()) >= 0 and float(cam.max()) <= 1
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_a_net_without_features_is_refused() -> None:
    with pytest.raises(TypeError, match="no `features` and `head`"):
        grad_cam(nn.Linear(3, 2), torch.zeros(1, 1, 2, 2))
