"""Fitting a forecaster's model on its windows, the linear baseline beside it, and what to say
when outcomes are suspect."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepfin.config import ForecastConfig
from deepfin.data.rows import PriceRows
from deepfin.data.scaling import Scaler
from deepfin.data.windows import WindowDataset
from deepfin.errors import DataError
from deepfin.metrics.ranking import panel_ic_metrics
from deepfin.models import MODELS, build_model
from deepfin.models.forecasting.linear import LinearForecaster
from deepfin.tasks.forecasting.evaluation import MIN_PANEL_NAMES
from deepfin.training import History, TrainingConfig, evaluate_loss, fit_model, predict_batches

log = logging.getLogger(__name__)

# ridge penalties tried for the linear baseline; a fair baseline is tuned like the model is
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0)
DEFAULT_RIDGE_ALPHA = 1.0  # without a validation period to choose one
MIN_IC_DATES = 20  # validation dates with that many tickers for Rank IC to choose the epoch


def suspect_hint(rows: PriceRows, bound: float) -> str:
    """What to do when most outcomes span suspect jumps."""
    known = rows.known
    n_suspect, n_known = int((known & rows.suspect).sum()), int(known.sum())
    return (
        f"{n_suspect} of its {n_known} outcomes span a one-day move beyond "
        f"max_abs_log_return={bound:g}. If such moves are real in this data (intraday bars, "
        "crypto, penny stocks), raise the bound (CLI: --max-abs-log-return)"
    )


def fit_linear_baseline(
    train: WindowDataset, val: WindowDataset | None, *, lookback: int
) -> LinearForecaster:
    """Ridge regression on the window; the penalty is chosen on the validation period."""
    best: tuple[float, LinearForecaster] | None = None
    statistics = None  # one pass over the training windows serves every penalty
    for alpha in RIDGE_ALPHAS if val is not None else (DEFAULT_RIDGE_ALPHA,):
        linear = build_model(
            "linear",
            n_features=train.features.shape[1],
            lookback=lookback,
            n_outputs=1,
            params={"ridge_alpha": alpha},
        )
        assert isinstance(linear, LinearForecaster)
        statistics = statistics or linear.statistics(_chunks(train))
        linear.solve(statistics)
        score = evaluate_loss(linear, val, nn.functional.mse_loss) if val is not None else 0.0
        if best is None or score < best[0]:
            best = (score, linear)
    assert best is not None
    return best[1]


def fit_network(
    config: ForecastConfig,
    training: TrainingConfig,
    train: WindowDataset,
    val: WindowDataset | None,
    *,
    checkpoint_dir: Path | None,
    resume: bool,
    warm_start: nn.Module | None,
    val_score: Callable[[nn.Module], float] | None = None,
) -> tuple[nn.Module, History]:
    """Build `config.model` and fit it (by gradient descent where it has weights to learn).

    `val_score`: a validation score to maximise that chooses the kept epoch (see
    `rank_ic_score`); without it, the validation loss does.
    """
    # seeded before building so the initial weights are reproducible too
    torch.manual_seed(training.seed)
    model = build_model(
        config.model,
        n_features=train.features.shape[1],
        lookback=config.lookback,
        n_outputs=1,
        params=config.model_params,
    )
    if warm_start is not None:
        model.load_state_dict(warm_start.state_dict())
    history = History()
    if MODELS[config.model].fit == "gradient":
        loss_fn = nn.HuberLoss() if config.loss == "huber" else nn.MSELoss()
        history = fit_model(
            model,
            train,
            val,
            loss_fn=loss_fn,
            config=training,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            val_score=val_score,
        )
        model.cpu()
    return model, history


def rank_ic_score(
    val: WindowDataset,
    rows: PriceRows,
    ends: np.ndarray,
    target_scaler: Scaler,
    *,
    horizon: int,
) -> Callable[[nn.Module], float] | None:
    """The mean per-date Rank IC of a model's return forecasts on the validation windows.

    On a panel this is what a forecast is for, and it keeps learning where the validation MSE
    of raw returns is flat from the first epoch. None (choose on the loss) when too few dates
    have enough tickers to measure it, with a warning saying so.
    """
    dates, codes = rows.stamps[ends], rows.codes(ends)
    _, per_date = np.unique(dates, return_counts=True)
    measured = int((per_date >= MIN_PANEL_NAMES).sum())
    if len(rows.tickers) < MIN_PANEL_NAMES:
        return None
    if measured < MIN_IC_DATES:
        log.warning(
            "the validation period has %d date(s) with at least %d tickers, too few to measure "
            "Rank IC (%d needed): the kept epoch is chosen on the validation loss; lengthen "
            "the validation period (--val-fraction) to select on Rank IC",
            measured,
            MIN_PANEL_NAMES,
            MIN_IC_DATES,
        )
        return None
    actual = target_scaler.inverse_transform(rows.targets[ends], codes, rows.tickers)[:, 0]

    def score(model: nn.Module) -> float:
        scaled = predict_batches(model, val).numpy()
        forecast = target_scaler.inverse_transform(scaled, codes, rows.tickers)[:, 0]
        try:
            metrics = panel_ic_metrics(
                dates=dates, actual_return=actual, forecast_return=forecast, horizon=horizon
            )
        except DataError:  # constant forecasts on most dates: no ranking to score
            return math.nan
        return float(metrics["rank_ic_mean"])

    return score


def _chunks(data: WindowDataset, size: int = 8192) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), size):
        yield data.batch(torch.arange(start, min(start + size, len(data))))
