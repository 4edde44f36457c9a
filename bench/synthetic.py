"""Synthetic daily OHLCV panels for the benchmarks, written to Parquet once and reused."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS = Path(__file__).resolve().parent / "results"
TICKERS_PER_ROW_GROUP = 250  # ~1.25 M rows per row group at 5,000 days: a typical vendor file
SCHEMA = pa.schema(
    [("date", pa.date32()), ("ticker", pa.string())]
    + [(name, pa.float64()) for name in ("open", "high", "low", "close", "volume")]
)


def panel_path(n_tickers: int, n_days: int, *, seed: int = 0) -> Path:
    """The cached Parquet panel of `n_tickers` x `n_days`, generated on first use."""
    path = RESULTS / f"panel_{n_tickers}x{n_days}_seed{seed}.parquet"
    if not path.exists():
        began = time.perf_counter()
        RESULTS.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        write_panel(partial, n_tickers, n_days, seed=seed)
        partial.replace(path)
        print(f"generated {path.name} in {time.perf_counter() - began:.1f} s (cached for reuse)")
    return path


def write_panel(path: Path, n_tickers: int, n_days: int, *, seed: int = 0) -> None:
    """Fat-tailed random-walk prices with consistent OHLC and log-normal volume, by ticker."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64("2000-01-03"), np.datetime64("2100-01-01"), dtype="M8[D]")
    dates = dates[np.is_busday(dates)][:n_days]
    with pq.ParquetWriter(path, SCHEMA) as writer:
        for first in range(0, n_tickers, TICKERS_PER_ROW_GROUP):
            count = min(TICKERS_PER_ROW_GROUP, n_tickers - first)
            daily_vol = rng.uniform(0.01, 0.03, (count, 1))
            # Student-t(5) shocks scaled to unit variance: fat tails like real returns
            returns = rng.standard_t(5, (count, n_days)) * daily_vol / np.sqrt(5 / 3)
            close = rng.uniform(10, 500, (count, 1)) * np.exp(np.cumsum(returns, axis=1))
            open_ = close * np.exp(0.3 * daily_vol * rng.standard_normal((count, n_days)))
            wick = np.exp(np.abs(0.5 * daily_vol * rng.standard_normal((count, n_days))))
            names = [f"T{index:05d}" for index in range(first, first + count)]
            table = pa.table(
                {
                    "date": np.tile(dates, count),
                    "ticker": np.repeat(names, n_days),
                    "open": open_.ravel(),
                    "high": (np.maximum(open_, close) * wick).ravel(),
                    "low": (np.minimum(open_, close) / wick).ravel(),
                    "close": close.ravel(),
                    "volume": np.exp(rng.normal(13, 1, (count, n_days))).ravel(),
                },
                schema=SCHEMA,
            )
            writer.write_table(table)
