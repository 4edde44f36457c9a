"""Forecaster: fit / predict / evaluate a forecasting model next to naive and linear baselines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from torch import nn

from deepfin.config import ForecastConfig
from deepfin.data.features import DEFAULT_FEATURES, feature_warmup
from deepfin.data.io import PriceSource
from deepfin.data.panel import PARTS, TEST, TRAIN, VAL, Panel, split_panel
from deepfin.data.rows import PriceRows
from deepfin.errors import ConfigError, DataError
from deepfin.models.forecasting.linear import LinearForecaster
from deepfin.tasks.base import Estimator
from deepfin.tasks.forecasting.evaluation import prediction_table, score_predictions
from deepfin.tasks.forecasting.fitting import (
    fit_linear_baseline,
    fit_network,
    fit_return_maps,
    rank_ic_score,
    realised_returns,
    suspect_hint,
)
from deepfin.tasks.forecasting.preprocess import (
    check_forecasts,
    check_panel,
    check_suspects,
    collect_for,
    min_rows,
    periods,
    short_tickers,
)
from deepfin.tasks.forecasting.quantiles import (
    band_scores,
    conformal_corrections,
    quantile_columns,
    quantile_forecasts,
    track_quantiles,
)
from deepfin.training import History, TrainingConfig, predict_batches

log = logging.getLogger(__name__)

ADAPTIVE_RATE = 0.05  # a quantile moves by this share of the validation returns' spread per date


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
        label_norm: str = "none",
        cross_section_norm: str = "none",
        date_batches: bool = False,
        quantiles: tuple[float, ...] = (),
        conformal: bool = False,
        adaptive: bool = False,
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
            label_norm=label_norm,
            cross_section_norm=cross_section_norm,
            date_batches=date_batches,
            quantiles=tuple(quantiles),
            conformal=conformal,
            adaptive=adaptive,
        )
        self.training = training or TrainingConfig()
        self.model_: nn.Module | None = None
        self.linear_: LinearForecaster | None = None
        self.history_ = History()
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None
        # per part: the forecast origins that were trained on, validated on or scored
        self.scored_: dict[str, str] = {}
        # per model ("model", "linear"): (intercept, slope) from scores to returns
        self.return_maps_: dict[str, tuple[float, float]] = {}
        # per quantile: the conformal shift of its log-return forecast (zeros without), and
        # (adaptive) the offset tracking reached by the end of the test period
        self.quantile_shifts_ = np.zeros(len(self.config.quantiles))
        self.quantile_offsets_ = np.zeros(len(self.config.quantiles))
        self.quantile_step_ = 0.0  # adaptive: how far one date's outcomes move a quantile

    @classmethod
    def from_config(cls, config: ForecastConfig, training: TrainingConfig) -> Forecaster:
        """Build from config dataclasses (as `load_config` returns them)."""
        return cls(**dataclasses.asdict(config), training=training)

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {**dataclasses.asdict(self.config), "training": dataclasses.asdict(self.training)}

    # ----------------------------------------------------------------------------- fit
    def prepare(
        self,
        source: PriceSource,
        *,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        embargo: int | None = None,
        **read: Any,
    ) -> Panel:
        """Read `source` in bounded memory and split it by date into a Panel to fit and evaluate.

        `read`: how to read it (columns, layout, ffill_limit, tickers, max_tickers, chunk_rows).
        """
        return split_panel(
            self.collect(source, **read),
            lookback=self.config.lookback,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            embargo=embargo,
            scaler=self.config.scaler,
            per_ticker=self.config.scale_per_ticker,
        )

    def fit(
        self,
        train: PriceSource | Panel,
        val: PriceSource | None = None,
        *,
        val_origins: tuple[dt.date, dt.date] | None = None,
        checkpoint_dir: Path | None = None,
        resume: bool = False,
        warm_start: nn.Module | None = None,
    ) -> Forecaster:
        """Fit scalers on the training rows only, then the model; validation stops it early.

        `train` is a Panel from `prepare` (its train and val parts are used), or prices of the
        training period with `val` those of the validation period. `val_origins` (first, last):
        validate only on forecasts made on those dates; earlier rows of `val` are then input
        history. `warm_start`: a model of the same architecture whose weights training starts
        from.
        """
        if isinstance(train, Panel):
            check_panel(train, self.config)
            if val is not None:
                raise ConfigError("a Panel carries its own validation part; pass no `val`")
            rows = train.rows
            short_tickers(rows, train.part == TRAIN, self.config)  # named in a warning
            self.feature_scaler_, self.target_scaler_ = train.feature_scaler, train.target_scaler
            has_val = bool((train.part == VAL).any())
            fitted = (rows, train.ends[TRAIN], rows if has_val else None, train.ends[VAL])
        else:
            scalers, *fitted = periods(self.config, train, val, val_origins)  # type: ignore[assignment]
            self.feature_scaler_, self.target_scaler_ = scalers
        return self._train(
            *fitted, checkpoint_dir=checkpoint_dir, resume=resume, warm_start=warm_start
        )

    def _train(
        self,
        rows: PriceRows,
        train_ends: np.ndarray,
        val_rows: PriceRows | None,
        val_ends: np.ndarray,
        *,
        checkpoint_dir: Path | None,
        resume: bool,
        warm_start: nn.Module | None,
    ) -> Forecaster:
        """The linear baseline, then the model, on the given windows."""
        cfg = self.config
        if len(train_ends) == 0:
            raise DataError(
                "the training period has no window with a trustworthy outcome; "
                f"{suspect_hint(rows, cfg.max_abs_log_return)}"
            )
        train_data = rows.windows(train_ends, lookback=cfg.lookback)
        self.scored_ = {"train": rows.describe(train_ends)}
        val_data = None
        if val_rows is not None:
            if len(val_ends) == 0:
                raise DataError(
                    "the validation period has no complete window; it needs more than "
                    f"lookback + horizon + warm-up = {min_rows(self.config)} rows per ticker"
                )
            val_data = val_rows.windows(val_ends, lookback=cfg.lookback)
            self.scored_["val"] = val_rows.describe(val_ends)
        self.linear_ = fit_linear_baseline(train_data, val_data, lookback=cfg.lookback)
        if cfg.model == "linear":  # the baseline just fitted is the model
            self.model_ = self.linear_
            return self._calibrate(rows, train_ends, val_rows, val_ends)
        # on a panel the kept epoch is the one whose forecasts rank the validation dates best
        score = None
        if val_data is not None and val_rows is not None and cfg.target == "log_return":
            score = rank_ic_score(
                val_data, val_rows, val_ends, self.target_scaler_, horizon=cfg.horizon
            )
        self.model_, self.history_ = fit_network(
            cfg,
            self.training,
            train_data,
            val_data,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            warm_start=warm_start,
            val_score=score,
            stamps=(rows.stamps[train_ends], val_rows.stamps[val_ends] if val_rows else None),
        )
        return self._calibrate(rows, train_ends, val_rows, val_ends)

    def _calibrate(
        self,
        rows: PriceRows,
        train_ends: np.ndarray,
        val_rows: PriceRows | None,
        val_ends: np.ndarray,
    ) -> Forecaster:
        """Trained on normalised labels, the models' scores are mapped to returns."""
        self.return_maps_ = {}
        if self.config.label_norm != "none":
            assert self.model_ is not None and self.linear_ is not None
            # on rows the models were not trained on, when there are any
            on_rows, on_ends = rows, train_ends
            if val_rows is not None and len(val_ends):
                on_rows, on_ends = val_rows, val_ends
            self.return_maps_ = fit_return_maps(
                {"model": self.model_, "linear": self.linear_},
                on_rows,
                on_ends,
                self.target_scaler_,
                lookback=self.config.lookback,
            )
        self.quantile_shifts_ = np.zeros(len(self.config.quantiles))
        self.quantile_offsets_ = np.zeros(len(self.config.quantiles))
        if self.config.conformal or self.config.adaptive:
            if val_rows is None or not len(val_ends):
                raise ConfigError("conformal and adaptive calibration need a validation period")
            actual = realised_returns(val_rows, val_ends)
            self.quantile_step_ = ADAPTIVE_RATE * float(np.std(actual))
            if self.config.conformal:
                raw = self.quantiles(val_rows, val_ends)
                self.quantile_shifts_ = conformal_corrections(raw, actual, self.config.quantiles)
        return self

    def quantiles(self, rows: PriceRows, ends: np.ndarray) -> np.ndarray:
        """Log-return quantile forecasts (N, Q) of the windows at `ends`."""
        assert self.model_ is not None
        return quantile_forecasts(
            self.model_,
            rows,
            ends,
            target_scaler=self.target_scaler_,
            lookback=self.config.lookback,
            shifts=self.quantile_shifts_ + self.quantile_offsets_,
        )

    @property
    def context_rows(self) -> int:
        """Dates of history before a forecast origin that its window and features read."""
        return self.config.lookback + feature_warmup(self.config.features) + 1

    def check_outcomes(self, data: PriceSource | Panel, *, part: str = "test") -> None:
        """Fail before any training when most outcomes of `part` are suspect jumps."""
        if isinstance(data, Panel):
            rows = data.rows
            inside = rows.known & (data.part == PARTS[part]) & rows.target_in(data.part)
        else:
            rows = self.collect(data)
            inside = rows.known
        check_suspects(rows, inside, part=part, bound=self.config.max_abs_log_return)

    def collect(self, source: PriceSource | PriceRows, **read: Any) -> PriceRows:
        """The rows of `source`, featurized with this forecaster's features and target.

        Rows collected before are copied (after a check that they carry these features), so
        the caller's rows are never scaled.
        """
        return collect_for(self.config, source, **read)

    # ------------------------------------------------------------------------- predict
    def _forecast(self, rows: PriceRows, ends: np.ndarray, model: nn.Module | None) -> np.ndarray:
        """Log-return forecasts for the windows at `ends`; `None` means the naive forecast."""
        cfg = self.config
        if model is None or (cfg.model == "naive" and model is self.model_):
            return np.zeros(len(ends))
        scaled = predict_batches(model, rows.windows(ends, lookback=cfg.lookback)).numpy()
        raw = self.target_scaler_.inverse_transform(scaled, rows.codes(ends), rows.tickers)[:, 0]
        mapped = self.return_maps_.get("model" if model is self.model_ else "linear")
        if mapped is not None:  # a score of normalised labels, as a return
            raw = mapped[0] + mapped[1] * raw
        if cfg.target == "price":  # a price level forecast, as a return from the last close
            raw = np.log(np.maximum(raw, 1e-12) / rows.close[ends])
        check_forecasts(raw, model)
        return raw

    def predict(self, source: PriceSource, **read: Any) -> pl.DataFrame:
        """Forecast `horizon` rows ahead from every complete window, including the latest.

        `read`: how to read `source` (columns, layout, ffill_limit; Parquet is streamed).
        """
        self.check_is_fitted()
        rows = collect_for(self.config, source, labels=False, **read)
        rows.scale(self.feature_scaler_, self.target_scaler_)
        everything = np.ones(rows.n_rows, dtype=bool)
        ends = rows.window_ends(everything, lookback=self.config.lookback)
        if len(ends) == 0:
            raise DataError(
                f"no complete window to forecast from; need at least "
                f"{self.config.lookback + feature_warmup(self.config.features)} rows per ticker"
            )
        close = rows.close[ends]
        forecast_return = self._forecast(rows, ends, self.model_)
        bands = []
        if self.config.quantiles:
            bands = quantile_columns(self.quantiles(rows, ends), self.config.quantiles, "forecast")
        return rows.prices(ends).with_columns(
            pl.Series("forecast_log_return", forecast_return),
            pl.Series("forecast_price", close * np.exp(forecast_return)),
            *bands,
        )

    # ------------------------------------------------------------------------ evaluate
    def evaluate(
        self, test: PriceSource | Panel, *, origins: tuple[dt.date, dt.date] | None = None
    ) -> dict[str, Any]:
        """Metrics of the model, the linear and the naive baseline on the test period.

        `test` is the Panel the model was fitted on (its test part is scored), or prices of
        the test period. Every window whose outcome is known gets a forecast; those whose
        outcome spans a suspect jump are kept in `predictions_` (flagged) and left out of the
        metrics. `origins` (first, last) keeps only forecasts made on those dates; earlier rows
        then serve as input history only, later ones only to know the outcome.
        """
        self.check_is_fitted()
        if isinstance(test, Panel):
            check_panel(test, self.config)
            rows, ends = test.rows, test.ends[TEST]
        else:  # the actual returns come from the closes: the labels need no normalising
            rows = collect_for(self.config, test, labels=False)
            rows.scale(self.feature_scaler_, self.target_scaler_)
            made = rows.known & rows.made_between(origins)
            ends = rows.window_ends(made, lookback=self.config.lookback)
        if len(ends) == 0:
            raise DataError(
                "the test period has no labelled window; it needs at least "
                f"{min_rows(self.config)} rows per ticker"
            )
        suspect = rows.suspect[ends]
        if suspect.all():
            raise DataError(
                "the test period has no window with a trustworthy outcome; "
                f"{suspect_hint(rows, self.config.max_abs_log_return)}"
            )
        self.scored_["test"] = rows.describe(ends[~suspect])
        models = {self.config.model: self.model_, "linear": self.linear_, "naive": None}
        forecasts = {name: self._forecast(rows, ends, model) for name, model in models.items()}
        self.predictions_ = prediction_table(rows.table(ends), forecasts)
        del forecasts  # the table holds them now
        self.metrics_ = score_predictions(
            self.predictions_, list(models), horizon=self.config.horizon
        )
        if self.config.quantiles:
            self.quantile_offsets_ = np.zeros(len(self.config.quantiles))
            bands = self.quantiles(rows, ends)
            if self.config.adaptive:
                bands, self.quantile_offsets_ = track_quantiles(
                    rows.stamps[ends],
                    bands,
                    self.predictions_["actual_log_return"].to_numpy(),
                    ~suspect,
                    self.config.quantiles,
                    horizon=self.config.horizon,
                    step=self.quantile_step_,
                )
            prefix = self.config.model
            columns = quantile_columns(bands, self.config.quantiles, prefix)
            self.predictions_ = self.predictions_.with_columns(columns)
            actual = self.predictions_["actual_log_return"].to_numpy()
            self.metrics_[self.config.model]["quantiles"] = band_scores(
                actual[~suspect], bands[~suspect], self.config.quantiles
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
