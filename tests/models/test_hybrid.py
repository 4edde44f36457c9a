"""The hybrid: what each memory reads, its checked options, equal sizes, and a planted signal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from deepfin.data.windows import WindowDataset
from deepfin.errors import ConfigError
from deepfin.models import build_model
from deepfin.models.forecasting.hybrid import (
    HybridForecaster,
    parameter_count,
    path_hidden_size,
)
from deepfin.training import TrainingConfig, fit_model, predict_batches

# the planted signal: a 100-row level (long), the last two rows (short), noise
LOOKBACK, LEVEL_ROWS, NOISE = 100, 100, 0.5
PLANTED = {"hidden_size": 16, "short_days": 10, "long_step": 10}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny recurrent nets run fastest on one thread: with more, hand-offs dominate."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hybrid(lookback: int = 250, n_features: int = 2, **params: Any) -> HybridForecaster:
    """A small hybrid with seeded weights, in eval mode."""
    torch.manual_seed(0)
    model = build_model(
        "hybrid",
        n_features=n_features,
        lookback=lookback,
        n_outputs=1,
        params={"hidden_size": 8, **params},
    )
    assert isinstance(model, HybridForecaster)
    return model.eval()


def gradient_by_row(model: HybridForecaster, x: torch.Tensor) -> torch.Tensor:
    """d forecast / d row of the window, (B, T, F), for windows (B, T, F): zero where unread."""
    # not a perturbed forecast: at random weights 50 LSTM steps shrink the oldest row's effect
    # below float32's resolution of the output, though not below that of its gradient
    x = x.clone().requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None
    return x.grad


def test_the_short_path_reads_only_the_last_short_days() -> None:
    grad = gradient_by_row(hybrid(paths="short", short_days=20), torch.randn(4, 250, 2))
    assert torch.all(grad[:, :-20] == 0)  # (B, T, F): every row before the last 20
    assert torch.all(grad[:, -20:].abs().sum(dim=(0, 2)) > 0)


def test_the_long_path_reads_block_means_of_the_whole_window() -> None:
    model = hybrid(lookback=252, paths="long", long_step=5)
    assert model.config.long_steps == 50
    grad = gradient_by_row(model, torch.randn(4, 252, 2))
    assert torch.all(grad[:, :2] == 0)  # 252 % 5 = 2 rows: the oldest partial block is dropped
    assert torch.all(grad[:, 2:].abs().sum(dim=(0, 2)) > 0)
    weeks = grad[:, 2:].reshape(4, 50, 5, 2)  # (B, T, F) -> (B, T/5, 5, F)
    # a block mean: every day of a week weighs the same
    torch.testing.assert_close(weeks, weeks[:, :, :1].expand_as(weeks))


def test_both_paths_read_the_whole_window() -> None:
    grad = gradient_by_row(hybrid(), torch.randn(4, 250, 2))
    assert torch.all(grad.abs().sum(dim=(0, 2)) > 0)


@pytest.mark.parametrize(
    ("lookback", "short_rows", "long_rows"), [(250, 20, 5), (12, 12, 5), (6, 6, 3), (2, 2, 1)]
)
def test_the_defaults_fit_short_windows(lookback: int, short_rows: int, long_rows: int) -> None:
    config = hybrid(lookback=lookback).config
    assert (config.short_rows, config.long_rows) == (short_rows, long_rows)
    assert config.long_steps >= 2


@pytest.mark.parametrize(
    ("lookback", "params", "message"),
    [
        (250, {"short_days": 0}, "short_days must be an integer >= 1; got 0"),
        (250, {"long_step": 2.5}, "long_step must be an integer >= 1; got 2.5"),
        (250, {"paths": "all"}, "paths must be one of both, long, short; got 'all'"),
        (30, {"short_days": 40}, r"short_days=40 is more than lookback=30; set short_days <= 30"),
        (30, {"long_step": 20}, r"1 block\(s\) of long_step=20 rows.*40, long_step <= 15, or"),
        (1, {}, r"needs at least 2: set lookback >= 2, or paths='short'"),
    ],
)
def test_bad_options_say_what_to_set(lookback: int, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        hybrid(lookback=lookback, **params)


def test_one_path_alone_needs_only_its_own_rows() -> None:
    assert hybrid(lookback=30, paths="long", short_days=40).long is not None
    assert hybrid(lookback=1, paths="short").short is not None


@pytest.mark.parametrize(("n_features", "hidden_size", "num_layers"), [(1, 8, 1), (4, 64, 2)])
def test_one_path_has_about_the_parameters_of_both(
    n_features: int, hidden_size: int, num_layers: int
) -> None:
    counts = {}
    for paths in ("both", "long", "short"):
        model = hybrid(
            n_features=n_features, paths=paths, hidden_size=hidden_size, num_layers=num_layers
        )
        counts[paths] = sum(p.numel() for p in model.parameters())
        assert counts[paths] == parameter_count(model.config, paths, path_hidden_size(model.config))
    for paths in ("long", "short"):
        assert abs(counts[paths] / counts["both"] - 1) < 0.1, counts


def planted(n_rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features (N, 1), targets (N, 1) and the long and short components (2, N) of a series.

    The target after row t is a level, the sum of the last 100 rows over 10 (unit variance),
    plus 0.8 x_t - 0.6 x_(t-1) (unit variance) plus noise: the level needs the whole window,
    the difference the newest two rows, which a block mean all but cancels.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_rows, generator=generator)
    sums = torch.cat([torch.zeros(1), x.cumsum(0)])
    level = torch.full((n_rows,), float("nan"))  # undefined before a full window
    level[LEVEL_ROWS - 1 :] = (sums[LEVEL_ROWS:] - sums[:-LEVEL_ROWS]) / LEVEL_ROWS**0.5
    recent = torch.cat([torch.zeros(1), 0.8 * x[1:] - 0.6 * x[:-1]])
    target = level + recent + NOISE * torch.randn(n_rows, generator=generator)
    return x.unsqueeze(1), target.unsqueeze(1), torch.stack([level, recent])  # (N, 1), (N, 1)


def test_both_memories_recover_a_planted_level_and_a_planted_difference() -> None:
    seed, n_rows = 0, 4000
    features, targets, components = planted(n_rows, seed)
    ends = torch.arange(LOOKBACK - 1, n_rows)
    cut_val, cut_test = int(0.6 * len(ends)), int(0.8 * len(ends))
    # a gap of one lookback between the periods: no window of one shares rows with another
    periods = [ends[:cut_val], ends[cut_val + LOOKBACK : cut_test], ends[cut_test + LOOKBACK :]]
    train, val, test = (WindowDataset(features, targets, e, lookback=LOOKBACK) for e in periods)
    training = TrainingConfig(
        epochs=30, batch_size=64, learning_rate=3e-3, patience=5, seed=seed, progress=False
    )
    mse: dict[str, float] = {}
    carried: dict[str, dict[str, float]] = {}
    for paths in ("long", "short", "both"):
        torch.manual_seed(seed)
        model = build_model(
            "hybrid",
            n_features=1,
            lookback=LOOKBACK,
            n_outputs=1,
            params={**PLANTED, "paths": paths},
        )
        fit_model(model, train, val, loss_fn=torch.nn.functional.mse_loss, config=training)
        forecast = predict_batches(model, test)[:, 0]  # (B, 1) -> (B,)
        mse[paths] = torch.mean((forecast - targets[test.ends, 0]) ** 2).item()
        # how much of each component the forecast carries: least squares on both (and 1)
        design = torch.stack([*components[:, test.ends], torch.ones(len(test))], dim=1)  # (B, 3)
        weights = torch.linalg.lstsq(design, forecast.unsqueeze(1)).solution[:, 0]  # (3,)
        carried[paths] = dict(zip(("level", "difference"), weights.tolist(), strict=False))

    floor = NOISE**2
    # seeds 0-6 gave both 0.97-1.13 x the floor, one path alone 3.0-5.7 x
    assert mse["both"] < 1.5 * floor, mse
    assert min(mse["long"], mse["short"]) > 2.5 * floor, mse
    # each alone recovers its own component (weight 1: all of it), both recover both; seeds 0-4
    # gave long (1.01-1.09, 0.00), short (0.04-0.12, 0.97-1.03), both (0.97-1.10, 0.97-1.04)
    assert carried["long"]["level"] > 0.8 and abs(carried["long"]["difference"]) < 0.2, carried
    assert carried["short"]["difference"] > 0.8 and abs(carried["short"]["level"]) < 0.3, carried
    assert min(carried["both"].values()) > 0.8, carried
