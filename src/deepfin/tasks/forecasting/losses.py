"""A forecaster's training losses: per window (MSE, Huber) and per cross-section (IC, ListNet).

With date batches the targets carry each window's date code as a last column (B, 2); the
per-window losses read the label column only, the cross-section losses group by the date.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LISTNET_TEMPERATURE = 1.0  # labels are normalised per date, so their softmax needs no rescale


def _label_and_dates(
    outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Forecasts (B,), labels (B,), date groups (B,) 0..G-1, and G."""
    if targets.shape[1] != 2:
        raise ValueError("a cross-section loss needs date batches: targets (B, 2) with the date")
    _, groups = torch.unique(targets[:, 1], return_inverse=True)
    return outputs[:, 0].float(), targets[:, 0].float(), groups, int(groups.max()) + 1


def _group_sum(values: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    return values.new_zeros(n_groups).index_add_(0, groups, values)


def ic_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Minus the mean over dates of the Pearson correlation of forecasts and labels."""
    forecast, label, groups, n_groups = _label_and_dates(outputs, targets)
    counts = _group_sum(torch.ones_like(label), groups, n_groups)
    forecast = forecast - (_group_sum(forecast, groups, n_groups) / counts)[groups]
    label = label - (_group_sum(label, groups, n_groups) / counts)[groups]
    covariance = _group_sum(forecast * label, groups, n_groups)
    spread = _group_sum(forecast**2, groups, n_groups) * _group_sum(label**2, groups, n_groups)
    # a date of one ticker, or of equal labels, has no correlation to learn from
    usable = (counts > 1) & (spread > 0)
    if not usable.any():
        return (outputs * 0.0).sum()  # no gradient, but a graph: the step is a no-op
    correlation = covariance[usable] / torch.sqrt(spread[usable] + 1e-12)
    return -correlation.mean()


def listnet_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ListNet: cross-entropy between each date's softmax of labels and of forecasts."""
    forecast, label, groups, n_groups = _label_and_dates(outputs, targets)

    def log_softmax(values: torch.Tensor) -> torch.Tensor:
        highest = values.new_full((n_groups,), -torch.inf).scatter_reduce(
            0, groups, values, reduce="amax"
        )
        shifted = values - highest[groups].detach()
        return shifted - torch.log(_group_sum(torch.exp(shifted), groups, n_groups))[groups]

    wanted = torch.exp(log_softmax(label / LISTNET_TEMPERATURE))
    cross_entropy = -_group_sum(wanted * log_softmax(forecast), groups, n_groups)
    return cross_entropy.mean()


def _on_labels(loss: nn.Module) -> LossFunction:
    """A per-window loss that ignores the date column of date batches."""

    def on_labels(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss(outputs, targets[:, : outputs.shape[1]])

    return on_labels


def loss_function(name: str) -> LossFunction:
    """The training loss `name` (one of config.LOSSES)."""
    if name == "ic":
        return ic_loss
    if name == "listnet":
        return listnet_loss
    return _on_labels(nn.HuberLoss() if name == "huber" else nn.MSELoss())
