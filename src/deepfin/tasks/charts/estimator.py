"""ChartClassifier: will the price rise? A CNN reads each ticker's recent chart (Jiang, Kelly
and Xiu 2023), beside 1-week reversal, 20-day momentum and a logistic regression on the same
window's returns."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from deepfin.data.chart_panel import OHLC, ChartPanel, ChartSet, chart_samples
from deepfin.data.charts import ChartStyle
from deepfin.data.images import ChartBatches
from deepfin.errors import DataError
from deepfin.models import build_image_model
from deepfin.tasks.base import Estimator
from deepfin.tasks.charts.config import CHART_TRAINING, ChartConfig
from deepfin.training import History, TrainingConfig, fit_model
from deepfin.training.evaluation import predict_batches

log = logging.getLogger(__name__)
REVERSAL_DAYS, MOMENTUM_DAYS = 5, 20
EXAMPLES = 3  # test charts kept for the report at each end of the net's up-probabilities


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (B, 2) against up/down labels (B,) (floats in evaluation)."""
    return F.cross_entropy(logits, labels.long())


@dataclasses.dataclass
class WindowLogistic:
    """The logistic baseline: standardised daily log returns of the chart's window -> up."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, returns: np.ndarray, labels: np.ndarray) -> WindowLogistic:
        """Fitted by scikit-learn's L-BFGS on the training charts' returns (B, days - 1)."""
        mean, scale = returns.mean(axis=0), returns.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        model = LogisticRegression(max_iter=1000).fit((returns - mean) / scale, labels)
        return cls(mean, scale, model.coef_[0].copy(), float(model.intercept_[0]))

    def up_probability(self, returns: np.ndarray) -> np.ndarray:
        """(B,) the chance of a rise."""
        logit = ((returns - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logit))

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable numbers."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WindowLogistic:
        """Back from `to_state`."""
        arrays = {
            key: np.asarray(state[key], dtype=np.float64) for key in ("mean", "scale", "coef")
        }
        return cls(**arrays, intercept=float(state["intercept"]))


@dataclasses.dataclass
class ChartExamples:
    """Test charts (B, H, W) uint8 with their day, ticker, the net's up-probability, outcome."""

    images: np.ndarray
    dates: list[str]
    tickers: list[str]
    probability: list[float]
    up: list[int]

    @classmethod
    def extremes(cls, charts: ChartSet, probability: np.ndarray) -> ChartExamples:
        """The charts the net finds least and most likely to rise."""
        order = np.argsort(probability, kind="stable")
        chosen = np.r_[order[:EXAMPLES], order[-EXAMPLES:]] if order.size > 2 * EXAMPLES else order
        return cls(
            images=charts.panel.render(charts.samples.ends[chosen]),
            dates=[str(day) for day in charts.dates[chosen]],
            tickers=[str(name) for name in charts.tickers[chosen]],
            probability=[float(p) for p in probability[chosen]],
            up=[int(u) for u in charts.samples.labels[chosen]],
        )


class ChartClassifier(Estimator):
    """The chance that each chart's close rises over the horizon, from one net or the mean of
    several trained from different seeds."""

    _fitted_attribute = "style_"

    def __init__(
        self,
        *,
        model: str = "chart_cnn",
        model_params: dict[str, Any] | None = None,
        ensemble: int = 1,
        cost_bps: float = 10.0,
        training: TrainingConfig | None = None,
    ) -> None:
        self.config = ChartConfig(
            model=model,
            model_params=dict(model_params or {}),
            ensemble=ensemble,
            cost_bps=cost_bps,
        )
        self.training = training or TrainingConfig(**CHART_TRAINING)
        self.models_: list[nn.Module] = []
        self.histories_: list[History] = []
        self.logistic_: WindowLogistic | None = None
        self.style_: ChartStyle | None = None  # learned from the training charts
        self.horizon_: int = 0
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None
        self.examples_: ChartExamples | None = None  # a few test charts, for the report

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {**dataclasses.asdict(self.config), "training": dataclasses.asdict(self.training)}

    def fit(self, train: ChartSet, val: ChartSet | None = None) -> ChartClassifier:
        """Train the net(s) on the training charts (`val` chooses each net's kept epoch) and
        the logistic baseline on the same windows' returns."""
        style = train.panel.style
        self.style_, self.horizon_ = style, train.horizon
        labels = train.samples.labels
        if labels.min() == labels.max():
            raise DataError(
                f"every training chart is labelled {'up' if labels[0] else 'down'}; the net "
                "needs both: use more tickers or days"
            )
        self.logistic_ = WindowLogistic.fit(train.panel.window_returns(train.samples.ends), labels)
        if val is None:
            log.warning("no validation charts: each net trains every epoch; the last is kept")
        self.models_, self.histories_ = [], []
        for member in range(self.config.ensemble):
            seed = self.training.seed + member
            torch.manual_seed(seed)
            net = build_image_model(
                self.config.model,
                in_channels=1,
                height=style.height,
                width=style.width,
                n_classes=2,
                params=self.config.model_params,
            )
            history = fit_model(
                net,
                ChartBatches(train),
                None if val is None else ChartBatches(val),
                loss_fn=cross_entropy,
                config=dataclasses.replace(self.training, seed=seed),
            )
            self.models_.append(net.eval())
            self.histories_.append(history)
        return self

    def up_probability(self, charts: ChartSet) -> np.ndarray:
        """(M,) the nets' mean chance of a rise for each chart."""
        self.check_is_fitted()
        self._check_style(charts)
        total = np.zeros(len(charts))
        for net in self.models_:
            logits = predict_batches(net.cpu(), ChartBatches(charts))
            total += torch.softmax(logits.double(), dim=1)[:, 1].numpy()
        return total / len(self.models_)

    def baseline_scores(self, charts: ChartSet) -> dict[str, np.ndarray]:
        """Per baseline (M,): the logistic chance of a rise, and the sign rules' scores (a rise
        is forecast where the score is positive)."""
        assert self.logistic_ is not None
        ends = charts.samples.ends
        panel = charts.panel
        return {
            "logistic": self.logistic_.up_probability(panel.window_returns(ends)),
            "reversal_1w": -panel.past_return(ends, REVERSAL_DAYS),
            "momentum_20d": panel.past_return(ends, MOMENTUM_DAYS),
        }

    def _check_style(self, charts: ChartSet) -> None:
        if charts.panel.style != self.style_:
            raise DataError(
                f"these charts are drawn as {charts.panel.style}, the nets learned "
                f"{self.style_}; draw them the same way (ChartPanel.from_frame(frame, "
                "classifier.style_))"
            )

    def charts_of(self, frame: pl.DataFrame, *, latest: bool = False) -> ChartSet:
        """Every chart of a price frame (as `read_prices` returns), or each ticker's latest."""
        self.check_is_fitted()
        assert self.style_ is not None
        missing = [name for name in OHLC if name not in frame.columns]
        if missing and not self.style_.line:
            raise DataError(
                f"this run's nets read bar charts of open, high, low and close; the data lacks "
                f"{', '.join(missing)} (a close-only file needs a run trained with --style line)"
            )
        panel = ChartPanel.from_frame(frame, self.style_)
        samples = chart_samples(panel, horizon=self.horizon_, stride=1)
        if latest:
            last_rows = panel.row_starts[1:] - 1
            samples = samples.take(np.isin(samples.ends, last_rows))
        return ChartSet(panel, samples, self.horizon_)

    def predict(self, frame: pl.DataFrame, *, latest: bool = False) -> pl.DataFrame:
        """Per ticker and day (or each ticker's latest day): the chance the close rises over
        the horizon."""
        charts = self.charts_of(frame, latest=latest)
        return pl.DataFrame(
            {
                "date": charts.dates,
                "ticker": charts.tickers,
                "up_probability": self.up_probability(charts),
            }
        )

    def evaluate(self, test: ChartSet) -> dict[str, Any]:
        """The nets and the three baselines on the test charts: accuracy, AUC and its tests,
        AUC by year, Rank IC, decile portfolios before and after costs."""
        from deepfin.tasks.charts.evaluation import chart_metrics, prediction_frame

        scores = {self.config.model: self.up_probability(test)} | self.baseline_scores(test)
        self.metrics_ = chart_metrics(
            test, scores, horizon=self.horizon_, cost_bps=self.config.cost_bps
        )
        self.predictions_ = prediction_frame(test, scores)
        self.examples_ = ChartExamples.extremes(test, scores[self.config.model])
        return self.metrics_

    def save(self, run_dir: Path | str) -> Path:
        """Write config, weights, the baseline and (if evaluated) metrics and predictions."""
        from deepfin.tasks.charts.files import save_chart_classifier

        return save_chart_classifier(self, Path(run_dir))

    @classmethod
    def load(cls, run_dir: Path | str) -> ChartClassifier:
        """Rebuild a fitted ChartClassifier from a run folder; executes no code from it."""
        from deepfin.tasks.charts.files import load_chart_classifier

        return load_chart_classifier(run_dir)
