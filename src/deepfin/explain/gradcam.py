"""Grad-CAM (Selvaraju et al. 2017): which parts of an image drove a CNN's prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def grad_cam(model: nn.Module, images: torch.Tensor, *, target: int = 1) -> torch.Tensor:
    """Heat maps (B, H, W) in [0, 1] of images (B, C, H, W) for the logit of class `target`.

    The model must read its images through `features` (the convolutions) and then `head`.
    Each map of the last convolution is weighted by the mean gradient of the class logit over
    it; their positive sum, upsampled to the image, is scaled so each image's peak is 1.
    """
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Module):
        raise TypeError(f"{type(model).__name__} has no `features` and `head` for Grad-CAM")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = features(images)  # (B, K, h, w)
        with torch.enable_grad():
            maps.requires_grad_(True)  # the gradient is wanted at the maps only
            logits = head(maps)  # (B, C)
            (gradients,) = torch.autograd.grad(logits[:, target].sum(), maps)
    finally:
        model.train(was_training)
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True)).detach()  # (B, 1, h, w)
    cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
