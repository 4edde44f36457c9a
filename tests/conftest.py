"""Shared fixtures: synthetic price panels with known structure, and the shared data folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

# the models under test are small: one thread is faster than two fighting over two cores,
# and it keeps the suite's timing steady when the machine is busy
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def price_frame(
    log_returns: np.ndarray, *, ticker: str = "series", start_price: float = 100.0
) -> pl.DataFrame:
    """A daily price frame whose close follows the given log returns."""
    n_days = len(log_returns)
    dates = pl.date_range(
        dt.date(2000, 1, 3), dt.date(2000, 1, 3) + dt.timedelta(days=n_days - 1), eager=True
    )
    close = start_price * np.exp(np.cumsum(log_returns))
    volume = np.full(n_days, 1e6) * np.exp(np.sin(np.arange(n_days)))
    return pl.DataFrame(
        {
            "date": dates,
            "ticker": [ticker] * n_days,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": volume,
        }
    )


def nonlinear_ar_returns(n_days: int, *, noise: float, seed: int) -> np.ndarray:
    """Returns of a nonlinear AR(2): r_t = noise*(1.5 tanh(2 z1) - tanh(2 z2)) + noise*eps."""
    rng = np.random.default_rng(seed)
    returns = np.zeros(n_days)
    for t in range(2, n_days):
        z1, z2 = returns[t - 1] / noise, returns[t - 2] / noise
        signal = 1.5 * np.tanh(2 * z1) - np.tanh(2 * z2)
        returns[t] = noise * (signal + rng.standard_normal())
    return returns


@pytest.fixture
def panel() -> pl.DataFrame:
    """Six tickers of 300 days of random-walk prices."""
    rng = np.random.default_rng(7)
    frames = [
        price_frame(0.01 * rng.standard_normal(300), ticker=f"T{i}", start_price=20.0 + 10 * i)
        for i in range(6)
    ]
    return pl.concat(frames)


@pytest.fixture
def sp500_panel_path() -> Path:
    """The S&P 500 five-year panel in ../shared/data; skips when absent."""
    path = SHARED_DATA / "sp500_5yr" / "all_stocks_5yr.csv.gz"
    if not path.exists():
        pytest.skip(f"real-data test: {path} is absent (needs ../shared/data beside the repo)")
    return path
