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
from deepfin.data.windows import DatedWindows, WindowDataset
from deepfin.errors import DataError
from deepfin.metrics.ranking import panel_ic_metrics
from deepfin.models import MODELS, build_model
from deepfin.models.forecasting.gbdt import GBDTForecaster
from deepfin.models.forecasting.linear import LinearForecaster
from deepfin.tasks.forecasting.evaluation import MIN_PANEL_NAMES
from deepfin.tasks.forecasting.losses import loss_function
from deepfin.tasks.forecasting.quantiles import point_and_quantile_loss
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
    val_score: Callable[[torch.Tensor], float] | None = None,
    stamps: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> tuple[nn.Module, History]:
    """Build `config.model` and fit it (by gradient descent where it has weights to learn).

    `val_score`: a validation score to maximise that chooses the kept epoch (see
    `rank_ic_score`); without it, the validation loss does. `stamps`: the date of each
    training and validation window, which date batches group by.
    """
    # seeded before building so the initial weights are reproducible too
    torch.manual_seed(training.seed)
    model = build_model(
        config.model,
        n_features=train.features.shape[1],
        lookback=config.lookback,
        n_outputs=1 + len(config.quantiles),  # the point forecast, then each quantile
        params=config.model_params,
    )
    if warm_start is not None:
        model.load_state_dict(warm_start.state_dict())
    history = History()
    if isinstance(model, GBDTForecaster):
        x, y = _tree_rows(model, train)
        x_val, y_val = _tree_rows(model, val) if val is not None else (None, None)
        model.fit(x, y, x_val=x_val, y_val=y_val, seed=training.seed)
        rounds = model.booster_.best_iteration if model.booster_ is not None else 0
        log.info("gbdt: %d trees kept", rounds or model.config.n_estimators)
    elif MODELS[config.model].fit == "gradient":
        if config.date_batches:
            if stamps is None:
                raise ValueError("date batches need the date of each window")
            train = DatedWindows.of(train, torch.from_numpy(stamps[0]))
            if val is not None and stamps[1] is not None:
                val = DatedWindows.of(val, torch.from_numpy(stamps[1]))
        history = fit_model(
            model,
            train,
            val,
            loss_fn=(
                point_and_quantile_loss(config.quantiles, loss_function(config.loss))
                if config.quantiles
                else loss_function(config.loss)
            ),
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
) -> Callable[[torch.Tensor], float] | None:
    """The mean per-date Rank IC of a model's outputs (M, 1) on the validation windows.

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
    # raw returns from the closes: the labels may be normalised per date
    actual = realised_returns(rows, ends)

    def score(outputs: torch.Tensor) -> float:
        scaled = outputs.numpy()
        forecast = target_scaler.inverse_transform(scaled, codes, rows.tickers)[:, 0]
        try:
            metrics = panel_ic_metrics(
                dates=dates, actual_return=actual, forecast_return=forecast, horizon=horizon
            )
        except DataError:  # constant forecasts on most dates: no ranking to score
            return math.nan
        return float(metrics["rank_ic_mean"])

    return score


def realised_returns(rows: PriceRows, ends: np.ndarray) -> np.ndarray:
    """The log return from each window end to `horizon` rows later (outcomes that are known)."""
    ends = ends.astype(np.int64)
    return np.log(rows.close[ends + rows.horizon] / rows.close[ends])


def return_map(scores: np.ndarray, rows: PriceRows, ends: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) that turn a model's per-date scores into return forecasts.

    A model trained on normalised labels forecasts a rank, not a return; the slope of the
    realised returns on the scores within each date (least squares, on rows the model was not
    trained on) gives the size of the return a score is worth, the intercept the mean return.
    A slope that is not positive means the scores carry no return: it is floored at a
    negligible positive value, so the ranking is still scored but the forecast is the drift.
    """
    actual = realised_returns(rows, ends)
    dates = rows.stamps[ends]
    _, group = np.unique(dates, return_inverse=True)
    counts = np.bincount(group).astype(float)

    def centred(values: np.ndarray) -> np.ndarray:
        return values - (np.bincount(group, weights=values) / counts)[group]

    score_c, actual_c = centred(scores.astype(float)), centred(actual)
    spread = float((score_c**2).sum())
    slope = float((score_c * actual_c).sum()) / spread if spread > 0 else 0.0
    floor = 1e-6 * float(actual.std()) / max(float(scores.std()), 1e-12)
    if slope <= floor:
        log.warning(
            "the model's scores do not rise with the returns of the calibration dates: its "
            "return forecasts are the mean return (its ranking is still scored)"
        )
        slope = floor
    return float(actual.mean() - slope * scores.mean()), slope


def fit_return_maps(
    models: dict[str, nn.Module],
    rows: PriceRows,
    ends: np.ndarray,
    target_scaler: Scaler,
    *,
    lookback: int,
    max_windows: int = 200_000,
) -> dict[str, tuple[float, float]]:
    """Each model's `return_map` on the windows at `ends`: those of the latest whole dates,
    up to `max_windows` of them."""
    dates, per_date = np.unique(rows.stamps[ends], return_counts=True)
    latest = np.cumsum(per_date[::-1]) <= max_windows
    first = dates[::-1][max(int(latest.sum()) - 1, 0)]
    ends = ends[rows.stamps[ends] >= first]
    windows = rows.windows(ends, lookback=lookback)
    maps = {}
    for name, model in models.items():
        scaled = predict_batches(model, windows).numpy()
        scores = target_scaler.inverse_transform(scaled, rows.codes(ends), rows.tickers)[:, 0]
        maps[name] = return_map(scores, rows, ends)
    return maps


def _tree_rows(model: GBDTForecaster, data: WindowDataset) -> tuple[np.ndarray, np.ndarray]:
    """The trees' inputs (N, lags * F) and targets (N,) of every window, a chunk at a time."""
    inputs, targets = [], []
    for window, target in _chunks(data, size=65_536):
        inputs.append(model.rows(window))
        targets.append(target[:, 0].numpy())
    return np.concatenate(inputs), np.concatenate(targets)


def _chunks(data: WindowDataset, size: int = 8192) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), size):
        yield data.batch(torch.arange(start, min(start + size, len(data))))
