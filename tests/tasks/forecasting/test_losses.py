"""Cross-section losses against plain per-date references, and the batches of whole dates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepfin.data.windows import DatedWindows, WindowDataset
from deepfin.tasks.forecasting.losses import ic_loss, listnet_loss, loss_function


def _batch(seed: int = 0, n_dates: int = 4, per_date: int = 9):
    generator = torch.Generator().manual_seed(seed)
    dates = torch.arange(n_dates).repeat_interleave(per_date)[torch.randperm(n_dates * per_date)]
    labels = torch.randn(len(dates), generator=generator)
    outputs = torch.randn(len(dates), 1, generator=generator, requires_grad=True)
    # date codes need not be 0..G-1: the loss groups whatever values the column holds
    targets = torch.stack([labels, dates.float() * 7 + 3], dim=1)
    return outputs, targets, dates


def test_ic_loss_is_minus_the_mean_per_date_pearson_correlation():
    outputs, targets, dates = _batch()
    expected = [
        np.corrcoef(outputs[dates == d, 0].detach(), targets[dates == d, 0])[0, 1]
        for d in dates.unique()
    ]
    loss = ic_loss(outputs, targets)
    assert loss.item() == pytest.approx(-np.mean(expected), abs=1e-5)
    loss.backward()
    assert outputs.grad is not None and outputs.grad.abs().sum() > 0


def test_ic_loss_is_minus_one_for_a_perfect_ranking_whatever_each_dates_scale():
    _, targets, dates = _batch(seed=1)
    outputs = targets[:, :1] * (dates.float().unsqueeze(1) + 1) + dates.float().unsqueeze(1) * 5
    assert ic_loss(outputs, targets).item() == pytest.approx(-1.0, abs=1e-5)


def test_listnet_is_the_cross_entropy_of_each_dates_softmaxes():
    outputs, targets, dates = _batch(seed=2)
    expected = []
    for d in dates.unique():
        on = dates == d
        wanted = torch.softmax(targets[on, 0], 0)
        expected.append(-(wanted * torch.log_softmax(outputs[on, 0].detach(), 0)).sum().item())
    assert listnet_loss(outputs, targets).item() == pytest.approx(np.mean(expected), abs=1e-5)
    # forecasts equal to the labels minimise it (the cross-entropy is then the entropy)
    best = listnet_loss(targets[:, :1].clone(), targets)
    assert best.item() < listnet_loss(outputs.detach(), targets).item()


def test_cross_section_losses_refuse_windows_without_dates_and_mse_ignores_them():
    outputs, targets, _ = _batch()
    with pytest.raises(ValueError, match="date batches"):
        ic_loss(outputs, targets[:, :1])
    mse = loss_function("mse")
    assert mse(outputs, targets).item() == pytest.approx(
        torch.nn.functional.mse_loss(outputs, targets[:, :1]).item()
    )


def test_a_date_without_spread_is_left_out_of_the_ic():
    outputs, targets, dates = _batch(seed=3)
    flat = targets.clone()
    flat[dates == 0, 0] = 1.0  # every label equal on date 0: no correlation there
    kept = dates != 0
    assert ic_loss(outputs, flat).item() == pytest.approx(
        ic_loss(outputs[kept], targets[kept]).item(), abs=1e-6
    )


def test_date_batches_hold_whole_dates_and_cover_every_window_once():
    n_rows, lookback = 400, 5
    features = torch.randn(n_rows, 2)
    targets = torch.randn(n_rows, 1)
    ends = torch.arange(lookback - 1, n_rows)
    stamps = torch.arange(len(ends)) % 37  # 37 dates, about 11 windows each
    dated = DatedWindows.of(WindowDataset(features, targets, ends, lookback=lookback), stamps)
    torch.manual_seed(0)
    batches = dated.batch_positions(25)
    together = torch.cat(batches)
    assert sorted(together.tolist()) == list(range(len(ends)))
    for positions in batches:
        in_batch = set(stamps[positions].tolist())
        # whole dates: every window of a date in the batch is in the batch
        assert int(np.isin(stamps.numpy(), list(in_batch)).sum()) == len(positions)
    assert all(len(p) >= 25 for p in batches[:-1])
    inputs, with_dates = dated.batch(batches[0])
    assert inputs.shape == (len(batches[0]), lookback, 2)
    assert with_dates.shape == (len(batches[0]), 2)
    torch.manual_seed(1)
    assert not torch.equal(torch.cat(dated.batch_positions(25)), together)  # a new order
