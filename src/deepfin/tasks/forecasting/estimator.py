"""Forecaster: fit / predict / evaluate a forecasting model next to naive and linear baselines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from deepfin.config import ForecastConfig
from deepfin.data.features import (
    DEFAULT_FEATURES,
    FACTORS,
    feature_warmup,
)
from deepfin.data.io import PriceSource, read_prices
from deepfin.data.scaling import Scaler
from deepfin.data.windows import WindowDataset, window_ends
from deepfin.errors import DataError
from deepfin.models import MODELS, build_model
from deepfin.models.forecasting.baselines import LinearForecaster
from deepfin.tasks.base import Estimator
from deepfin.tasks.forecasting.evaluation import prediction_table, score_predictions
from deepfin.tasks.forecasting.preprocess import drop_short_tickers, featurize, min_rows
from deepfin.tasks.forecasting.rows import (
    Rows,
    fit_linear_baseline,
    labelled_windows,
    suspect_hint,
    ticker_codes,
)
from deepfin.training import History, TrainingConfig, fit_model, predict_batches

log = logging.getLogger(__name__)


class Forecaster(Estimator):
    """A forecasting model with its preprocessing, trained on one period and judged on another."""

    def __init__(
        self,
        *,
        model: str = "hybrid",
        lookback: int = 30,
        horizon: int = 1,
        features: tuple[str, ...] = DEFAULT_FEATURES,
        target: str = "log_return",
        scaler: str = "standard",
        scale_per_ticker: bool = False,
        loss: str = "mse",
        model_params: dict[str, Any] | None = None,
        max_abs_log_return: float = 0.4,
        training: TrainingConfig | None = None,
    ) -> None:
        self.config = ForecastConfig(
            model=model,
            lookback=lookback,
            horizon=horizon,
            features=tuple(features),
            target=target,
            scaler=scaler,
            scale_per_ticker=scale_per_ticker,
            loss=loss,
            model_params=dict(model_params or {}),
            max_abs_log_return=max_abs_log_return,
        )
        self.training = training or TrainingConfig()
        self.model_: nn.Module | None = None
        self.linear_: LinearForecaster | None = None
        self.history_ = History()
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None
        # per part: the forecast origins that were trained on, validated on or scored
        self.scored_: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: ForecastConfig, training: TrainingConfig) -> Forecaster:
        """Build from config dataclasses (as `load_config` returns them)."""
        return cls(**dataclasses.asdict(config), training=training)

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {**dataclasses.asdict(self.config), "training": dataclasses.asdict(self.training)}

    # ----------------------------------------------------------------------------- fit
    def fit(
        self,
        train: PriceSource,
        val: PriceSource | None = None,
        *,
        val_origins: tuple[dt.date, dt.date] | None = None,
        checkpoint_dir: Path | None = None,
        resume: bool = False,
        warm_start: nn.Module | None = None,
    ) -> Forecaster:
        """Fit scalers on `train` only, then the model; `val` drives early stopping.

        `val_origins` (first, last): validate only on forecasts made on those dates; earlier
        rows of `val` are then input history. `warm_start`: a model of the same architecture
        whose weights training starts from.
        """
        cfg = self.config
        train_frame = drop_short_tickers(featurize(read_prices(train), self.config), self.config)
        raw_inputs = train_frame.select(cfg.features).to_numpy().astype(np.float64)
        codes, tickers = ticker_codes(train_frame)
        usable = np.isfinite(raw_inputs).all(axis=1)
        self.feature_scaler_ = Scaler(kind=cfg.scaler, per_ticker=cfg.scale_per_ticker).fit(
            raw_inputs[usable], codes[usable], tickers
        )
        target = train_frame["target"].to_numpy()
        known = np.isfinite(target) & ~train_frame["jump_ahead"].to_numpy()
        self.target_scaler_ = Scaler(kind=cfg.scaler, per_ticker=cfg.scale_per_ticker).fit(
            target[known, None], codes[known], tickers
        )
        train_rows = self._rows(train_frame)
        train_data = labelled_windows(train_rows, train_rows.labelled)
        if len(train_data) == 0:
            raise DataError(
                "the training period has no window with a trustworthy outcome; "
                f"{suspect_hint(train_rows, self.config.max_abs_log_return)}"
            )
        self.scored_ = {"train": train_rows.scored_dates(train_rows.labelled)}
        val_data = None
        if val is not None:
            val_rows = self._rows(featurize(read_prices(val), self.config))
            # windows made before the validation dates are history: their inputs only
            validated = val_rows.labelled & val_rows.made_between(val_origins)
            val_data = labelled_windows(val_rows, validated)
            if len(val_data) == 0:
                raise DataError(
                    "the validation period has no complete window; it needs more than "
                    f"lookback + horizon + warm-up = {self.min_rows} rows per ticker"
                )
            self.scored_["val"] = val_rows.scored_dates(validated)
        n_features = train_data.features.shape[1]
        self.linear_ = fit_linear_baseline(train_data, val_data, lookback=cfg.lookback)
        if cfg.model == "linear":  # the baseline just fitted is the model
            self.model_ = self.linear_
            return self
        # seeded before building so the initial weights are reproducible too
        torch.manual_seed(self.training.seed)
        self.model_ = build_model(
            cfg.model,
            n_features=n_features,
            lookback=cfg.lookback,
            n_outputs=1,
            params=cfg.model_params,
        )
        if warm_start is not None:
            self.model_.load_state_dict(warm_start.state_dict())
        if MODELS[cfg.model].fit == "gradient":
            loss_fn = nn.HuberLoss() if cfg.loss == "huber" else nn.MSELoss()
            self.history_ = fit_model(
                self.model_,
                train_data,
                val_data,
                loss_fn=loss_fn,
                config=self.training,
                checkpoint_dir=checkpoint_dir,
                resume=resume,
            )
            self.model_.cpu()
        return self

    @property
    def context_rows(self) -> int:
        """Dates of history before a forecast origin that its window and features read."""
        return self.config.lookback + feature_warmup(self.config.features) + 1

    @property
    def min_rows(self) -> int:
        """Rows a ticker needs for one labelled window."""
        return min_rows(self.config)

    def check_outcomes(self, frame: PriceSource, *, part: str) -> None:
        """Fail before any training when most outcomes of `part` are suspect jumps."""
        featurized = featurize(read_prices(frame), self.config)
        known = featurized["target"].is_not_null() & featurized["target"].is_not_nan()
        n_known = int(known.sum())
        n_suspect = int((known & featurized["jump_ahead"]).sum())
        if n_known and n_suspect > n_known / 2:
            raise DataError(
                f"{n_suspect} of the {n_known} outcomes in the {part} period span a one-day "
                f"move beyond max_abs_log_return={self.config.max_abs_log_return:g}, so most "
                "of it could not be scored. If such moves are real in this data (intraday bars, "
                "crypto, penny stocks), raise the bound (CLI: --max-abs-log-return)"
            )

    def _rows(self, frame: pl.DataFrame) -> Rows:
        """Scale a featurized frame and index its windows."""
        cfg = self.config
        codes, tickers = ticker_codes(frame)
        inputs = self.feature_scaler_.transform(
            frame.select(cfg.features).to_numpy(), codes, tickers
        )
        target = self.target_scaler_.transform(frame["target"].to_numpy()[:, None], codes, tickers)
        if cfg.target == "price":
            # the price level as an input too, scaled with the target's scaler
            close = self.target_scaler_.transform(
                frame["close"].to_numpy()[:, None], codes, tickers
            )
            inputs = np.ascontiguousarray(np.hstack([inputs, close]))
        ends = window_ends(codes, np.isfinite(inputs).all(axis=1), lookback=cfg.lookback)
        data = WindowDataset(
            torch.from_numpy(inputs),
            torch.from_numpy(target),
            torch.from_numpy(ends),
            lookback=cfg.lookback,
        )
        columns = ["date", "ticker", "close", "future_close", "jump_ahead"]
        columns += [f"{name}_signal" for name in FACTORS]
        return Rows(
            frame.select(columns),
            data,
            known=np.isfinite(target[ends, 0]),
            suspect=frame["jump_ahead"].to_numpy()[ends],
            codes=codes,
            tickers=tickers,
        )

    # ------------------------------------------------------------------------- predict
    def _forecast(self, rows: Rows, model: nn.Module | None) -> np.ndarray:
        """Raw forecasts (target units) for every window; `None` means the naive forecast."""
        cfg = self.config
        ends = rows.data.ends.numpy()
        close = rows.frame["close"].to_numpy()[ends]
        if model is None or (cfg.model == "naive" and model is self.model_):
            return np.zeros(len(ends)) if cfg.target == "log_return" else close
        scaled = predict_batches(model, rows.data).numpy()
        raw = self.target_scaler_.inverse_transform(scaled, rows.codes[ends], rows.tickers)
        return raw[:, 0]

    def _as_return(self, raw: np.ndarray, close: np.ndarray) -> np.ndarray:
        if self.config.target == "log_return":
            return raw
        return np.log(np.maximum(raw, 1e-12) / close)

    def predict(self, frame: PriceSource) -> pl.DataFrame:
        """Forecast `horizon` rows ahead from every complete window, including the latest."""
        self.check_is_fitted()
        rows = self._rows(featurize(read_prices(frame), self.config))
        if len(rows.data) == 0:
            raise DataError(
                f"no complete window to forecast from; need at least "
                f"{self.config.lookback + feature_warmup(self.config.features)} rows per ticker"
            )
        ends = rows.data.ends.numpy()
        close = rows.frame["close"].to_numpy()[ends]
        forecast_return = self._as_return(self._forecast(rows, self.model_), close)
        return (
            rows.frame[ends]
            .select("date", "ticker", "close")
            .with_columns(
                pl.Series("forecast_log_return", forecast_return),
                pl.Series("forecast_price", close * np.exp(forecast_return)),
            )
        )

    # ------------------------------------------------------------------------ evaluate
    def evaluate(
        self, test: PriceSource, *, origins: tuple[dt.date, dt.date] | None = None
    ) -> dict[str, Any]:
        """Metrics of the model, the linear and the naive baseline on the test period.

        Every window whose outcome is known gets a forecast; those whose outcome spans a
        suspect jump are kept in `predictions_` (flagged) and left out of the metrics.
        `origins` (first, last) keeps only forecasts made on those dates; earlier rows of
        `test` then serve as input history only, later ones only to know the outcome.
        """
        self.check_is_fitted()
        rows = self._rows(featurize(read_prices(test), self.config))
        keep = rows.known & rows.made_between(origins)
        if not keep.any():
            raise DataError(
                f"the test period has no labelled window; it needs at least {self.min_rows} "
                "rows per ticker"
            )
        if not (keep & ~rows.suspect).any():
            raise DataError(
                "the test period has no window with a trustworthy outcome; "
                f"{suspect_hint(rows, self.config.max_abs_log_return)}"
            )
        self.scored_["test"] = rows.scored_dates(keep & ~rows.suspect)
        close = rows.frame["close"].to_numpy()[rows.data.ends.numpy()[keep]]
        forecasts = {
            self.config.model: self._as_return(self._forecast(rows, self.model_)[keep], close),
            "linear": self._as_return(self._forecast(rows, self.linear_)[keep], close),
            "naive": np.zeros(len(close)),
        }
        self.predictions_ = prediction_table(rows.frame[rows.data.ends.numpy()[keep]], forecasts)
        self.metrics_ = score_predictions(
            self.predictions_, list(forecasts), horizon=self.config.horizon
        )
        return self.metrics_

    # ---------------------------------------------------------------------- save, load
    def save(self, run_dir: Path | str) -> Path:
        """Write config, weights, preprocessing, history and (if evaluated) metrics."""
        from deepfin.tasks.forecasting.files import save_forecaster

        return save_forecaster(self, Path(run_dir))

    @classmethod
    def load(cls, run_dir: Path | str) -> Forecaster:
        """Rebuild a fitted Forecaster from a run folder; executes no code from it."""
        from deepfin.tasks.forecasting.files import load_forecaster

        return load_forecaster(Path(run_dir))
