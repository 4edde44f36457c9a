"""Time flows one way: nothing after the training period changes what a Forecaster learns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.rows import PriceRows
from deepfin.data.splits import Split, chronological_split
from deepfin.models import build_model
from deepfin.models.forecasting.linear import LinearForecaster
from deepfin.tasks.forecasting.estimator import Forecaster

TICKERS = ("AAA", "BBB", "CCC")
N_DAYS = 120
LOOKBACK = 5
FEATURES = ("log_return", "hl_range", "volatility_5", "rsi_4", "volume_z_5", "momentum_3")


@cache
def panel() -> pl.DataFrame:
    """Three tickers of 120 business days of random-walk OHLCV; one starts 10 days late."""
    rng = np.random.default_rng(42)
    dates = pl.date_range(dt.date(2022, 1, 3), dt.date(2022, 12, 30), interval="1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).head(N_DAYS)
    parts = []
    for index, ticker in enumerate(TICKERS):
        own = dates.slice(10 if index == 2 else 0)
        close = 20.0 * (index + 1) * np.exp(np.cumsum(rng.normal(0, 0.02, len(own))))
        parts.append(
            pl.DataFrame(
                {
                    "date": own,
                    "ticker": ticker,
                    "open": close * np.exp(rng.normal(0, 0.005, len(own))),
                    "high": close * np.exp(np.abs(rng.normal(0, 0.01, len(own)))),
                    "low": close * np.exp(-np.abs(rng.normal(0, 0.01, len(own)))),
                    "close": close,
                    "volume": rng.uniform(1e5, 1e6, len(own)),
                }
            )
        )
    return pl.concat(parts)


def split_of(frame: pl.DataFrame, horizon: int) -> Split:
    """The split every test uses: 15% validation, 15% test, embargo of one horizon."""
    return chronological_split(frame, val_fraction=0.15, test_fraction=0.15, embargo=horizon)


@dataclass(frozen=True)
class Learned:
    """Everything a fit learned from the training period, and the windows it learned from."""

    feature_scaler: dict
    target_scaler: dict
    linear_weights: dict[str, torch.Tensor]
    ridge_alpha: float
    inputs: torch.Tensor  # (windows, T, F)
    targets: torch.Tensor  # (windows, 1)
    labelled: np.ndarray


def forecaster(model: str, horizon: int, per_ticker: bool) -> Forecaster:
    """A Forecaster that fits without gradient descent."""
    return Forecaster(
        model=model,
        lookback=LOOKBACK,
        horizon=horizon,
        features=FEATURES,
        scale_per_ticker=per_ticker,
    )


def training_rows(fitted: Forecaster, train: pl.DataFrame) -> tuple[PriceRows, np.ndarray]:
    """The training period's rows as the fitted forecaster scales them, and every window."""
    rows = fitted.collect(train)
    rows.scale(fitted.feature_scaler_, fitted.target_scaler_)
    return rows, rows.window_ends(np.ones(rows.n_rows, dtype=bool), lookback=LOOKBACK)


def learn(frame: pl.DataFrame, model: str, horizon: int, per_ticker: bool) -> Learned:
    """Split `frame`, fit on train (val for validation) and collect what was learned."""
    split = split_of(frame, horizon)
    fitted = forecaster(model, horizon, per_ticker).fit(split.train, split.val)
    assert fitted.linear_ is not None
    rows, ends = training_rows(fitted, split.train)
    data = rows.windows(ends, lookback=LOOKBACK)
    return Learned(
        feature_scaler=fitted.feature_scaler_.to_dict(),
        target_scaler=fitted.target_scaler_.to_dict(),
        linear_weights={name: value.clone() for name, value in fitted.linear_.state_dict().items()},
        ridge_alpha=fitted.linear_.config.ridge_alpha,
        inputs=data.inputs(torch.arange(len(data))),
        targets=data.targets[data.ends],
        labelled=rows.labelled[ends],
    )


@cache
def baseline(model: str, horizon: int, per_ticker: bool) -> Learned:
    """What the untouched panel teaches (computed once per setting)."""
    return learn(panel(), model, horizon, per_ticker)


def period_dates(frame: pl.DataFrame, horizon: int, period: str) -> pl.Series:
    """The calendar dates of the validation or test period, or of the embargo gaps."""
    split = split_of(frame, horizon)
    assert split.val is not None
    calendar = frame["date"].unique().sort()
    if period == "gap":
        kept = pl.concat([split.train["date"], split.val["date"], split.test["date"]])
        return calendar.filter(~calendar.is_in(kept.implode()))
    return (split.val if period == "val" else split.test)["date"].unique().sort()


def ridge_on(learned: Learned, alpha: float) -> dict[str, torch.Tensor]:
    """Ridge weights fitted on `learned`'s labelled training windows alone."""
    model = build_model(
        "linear",
        n_features=learned.inputs.shape[2],
        lookback=LOOKBACK,
        n_outputs=1,
        params={"ridge_alpha": alpha},
    )
    assert isinstance(model, LinearForecaster)
    keep = torch.from_numpy(learned.labelled)
    model.fit_closed_form([(learned.inputs[keep], learned.targets[keep])])
    return model.state_dict()


def assert_same_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Identical state dicts, tensor by tensor."""
    assert got.keys() == expected.keys()
    for name, weight in expected.items():
        assert torch.equal(got[name], weight), name


@settings(max_examples=15, deadline=None)
@given(
    model=st.sampled_from(["linear", "naive"]),
    horizon=st.sampled_from([1, 3]),
    per_ticker=st.booleans(),
    period=st.sampled_from(["gap", "val", "test"]),
    change=st.sampled_from(["close", "volume", "drop"]),
    ticker=st.sampled_from(TICKERS),
    data=st.data(),
)
def test_changes_after_the_training_period_change_nothing_learned(
    model: str,
    horizon: int,
    per_ticker: bool,
    period: str,
    change: str,
    ticker: str,
    data: st.DataObject,
) -> None:
    frame = panel()
    dates = period_dates(frame, horizon, period)
    first = data.draw(st.integers(0, dates.len() - 1), label="first date")
    chosen = dates.slice(first, data.draw(st.integers(1, 4), label="dates"))
    hit = (pl.col("ticker") == ticker) & pl.col("date").is_in(chosen.implode())
    if change == "drop":  # one ticker's rows only, so the calendar (and the split) stays put
        changed = frame.filter(~hit)
    else:
        factor = data.draw(st.sampled_from([0.5, 1.7, 40.0]), label="factor")
        names = [change] if change == "volume" else ["open", "high", "low", "close"]
        changed = frame.with_columns(
            pl.when(hit).then(pl.col(name) * factor).otherwise(pl.col(name)) for name in names
        )
    assert not changed.equals(frame)
    assert split_of(changed, horizon).train.equals(split_of(frame, horizon).train)

    before, after = baseline(model, horizon, per_ticker), learn(changed, model, horizon, per_ticker)
    assert after.feature_scaler == before.feature_scaler
    assert after.target_scaler == before.target_scaler
    assert torch.equal(after.inputs, before.inputs)
    # the windows' unknown targets (the last `horizon` rows per ticker) are NaN in both
    torch.testing.assert_close(after.targets, before.targets, rtol=0, atol=0, equal_nan=True)
    assert np.array_equal(after.labelled, before.labelled)
    if period == "val":
        # validation picks the ridge penalty, as it picks a network's epoch; the weights
        # themselves still come from the training windows alone
        assert_same_weights(after.linear_weights, ridge_on(before, after.ridge_alpha))
    else:
        assert after.ridge_alpha == before.ridge_alpha
        assert_same_weights(after.linear_weights, before.linear_weights)


def test_training_windows_stay_inside_the_training_period_and_one_ticker() -> None:
    for horizon in (1, 3):
        split = split_of(panel(), horizon)
        fitted = forecaster("linear", horizon, per_ticker=False).fit(split.train, split.val)
        rows, ends = training_rows(fitted, split.train)
        assert split.val is not None
        train_end, val_start = split.train["date"].max(), split.val["date"].min()
        dates, codes = rows.dates(slice(None)), rows.codes(np.arange(rows.n_rows))
        learnable = rows.labelled[ends]
        assert len(ends) > 0 and learnable.any()
        for end, labelled in zip(ends.tolist(), learnable.tolist(), strict=True):
            start = end - LOOKBACK + 1
            assert start >= 0
            assert (codes[start : end + 1] == codes[end]).all()  # one ticker
            assert dates[end] <= train_end < val_start
            if labelled:  # its target is a training-period price of the same ticker
                target_row = end + horizon
                assert target_row < len(codes) and codes[target_row] == codes[end]
                assert dates[target_row] <= train_end
        # the embargo keeps the last training target clear of the first validation input
        calendar = panel()["date"].unique().sort().to_list()
        assert calendar.index(val_start) - calendar.index(train_end) - 1 == horizon
