"""The contract every task estimator keeps, as the models keep theirs (check_estimator's habit)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from deepfin.config import ForecastConfig
from deepfin.data.splits import chronological_split
from deepfin.errors import NotFittedError
from deepfin.runs.load import load_run
from deepfin.tasks.charts.config import ChartConfig
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.tasks.credit.config import CreditConfig
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.text.config import TextConfig
from deepfin.tasks.text.estimator import TextClassifier
from deepfin.training import TrainingConfig
from deepfin.training.privacy import PrivacyConfig
from tests.conftest import price_frame
from tests.tasks.charts.test_estimator import candle_panel, small_split
from tests.tasks.text.test_estimator import planted_texts

FAST = TrainingConfig(epochs=2, batch_size=64, progress=False, seed=3)


def prices() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pl.concat(
        price_frame(0.01 * rng.standard_normal(260), ticker=f"T{i}", start_price=30.0 + i)
        for i in range(5)
    )
    split = chronological_split(frame, embargo=1)
    assert split.val is not None
    return split.train, split.val, split.test


def loans() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(1)
    n = 900
    income, grade = rng.normal(size=n), rng.choice(["A", "B", "C"], n)
    odds = -1.2 * income + 0.8 * (grade == "C") - 1.0
    frame = pl.DataFrame(
        {
            "income": income,
            "grade": grade,
            "default": (rng.random(n) < 1 / (1 + np.exp(-odds))).astype(int),
        }
    )
    return frame[:600], frame[600:750], frame[750:]


def charts() -> tuple[Any, Any, Any]:
    split = small_split(candle_panel(8, 80, signal=1.0))
    return split.train, split.val, split.test


def texts() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    frame = planted_texts(400)
    return frame[:250], frame[250:320], frame[320:]


# (estimator factory, data, predictions of a fitted estimator)
CASES: dict[str, tuple[Callable[[], Any], Callable[[], tuple], Callable[[Any, Any], Any]]] = {
    "forecast-lstm": (
        lambda: Forecaster(model="lstm", lookback=8, training=FAST),
        prices,
        lambda est, frame: est.predict(frame)["forecast_log_return"].to_numpy(),
    ),
    "forecast-linear": (
        lambda: Forecaster(model="linear", lookback=8, training=FAST),
        prices,
        lambda est, frame: est.predict(frame)["forecast_log_return"].to_numpy(),
    ),
    "text-tfidf_logistic": (
        lambda: TextClassifier(training=FAST),
        texts,
        lambda est, frame: est.predict(frame)["probability"].to_numpy(),
    ),
    "text-minilm": (
        lambda: TextClassifier(model="minilm", training=FAST),
        texts,
        lambda est, frame: np.vstack(est.predict(frame)["top_probabilities"].to_list()),
    ),
    "chart-chart_cnn": (
        lambda: ChartClassifier(model_params={"channels": 8}, ensemble=2, training=FAST),
        charts,
        lambda est, charts: est.up_probability(charts),
    ),
    "credit-mlp": (
        lambda: CreditScorer(model="mlp", baselines=("logistic",), training=FAST),
        loans,
        lambda est, frame: est.predict_proba(frame),
    ),
}


def rebuilt(estimator: Any) -> Any:
    """A new estimator from get_params alone."""
    params = estimator.get_params()
    params["training"] = TrainingConfig(**params["training"])
    if "privacy" in params:
        params["privacy"] = PrivacyConfig(**params["privacy"]) if params["privacy"] else None
    return type(estimator)(**params)


@pytest.mark.parametrize("case", list(CASES))
def test_task_estimator_contract(case: str, tmp_path) -> None:
    factory, data, predict = CASES[case]
    train, val, test = data()
    estimator = factory()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        predict(estimator, test)
    assert rebuilt(estimator).get_params() == estimator.get_params()
    assert estimator.fit(train, val) is estimator  # fit returns self
    metrics = estimator.evaluate(test)
    estimator.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    np.testing.assert_allclose(predict(loaded, test), predict(estimator, test), rtol=1e-6)
    again = factory().fit(train, val)  # a fixed seed gives the same fit, metric for metric
    assert _same(again.evaluate(test), metrics)


def _same(left: Any, right: Any) -> bool:
    """Nested metrics equal (numbers to 1e-9), for dicts that approx cannot compare."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, float) and isinstance(right, float):
        return left == pytest.approx(right, rel=1e-9, nan_ok=True)
    return bool(left == right)


@pytest.mark.parametrize(
    ("estimator", "config"),
    [
        (Forecaster, ForecastConfig),
        (CreditScorer, CreditConfig),
        (TextClassifier, TextConfig),
        (ChartClassifier, ChartConfig),
    ],
)
def test_the_constructor_takes_each_config_field_with_its_default(estimator, config) -> None:
    # the config dataclass declares a task's parameters; the constructor must not drift from it
    taken = {
        name: param.default
        for name, param in inspect.signature(estimator).parameters.items()
        if name not in ("training", "privacy")
    }
    declared = {field.name: _default(field) for field in dataclasses.fields(config)}
    assert taken == declared


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory() or None  # an empty dict is taken as None
    return field.default
