"""The chart CNN's leakage check: on random-walk prices no chart says anything about the next
20 days, so every test AUC must come out at 0.5 (within 0.01 on this many charts).

505 simulated tickers over the S&P 500 panel's 1,259 trading days (2013-02-08 .. 2018-02-07):
i.i.d. daily log returns (1.5% a day), each open a small gap from the last close, highs and
lows beyond the open and close, random volumes. The run is the S&P one's: 20-day charts, a
20-day horizon, a chart every 5 days, the last 30% of the days as the test.

    python bench/chart_random_walk.py [--channels 64] [--epochs 8]   # table, JSON in bench/results/
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import polars as pl
from synthetic import RESULTS

from deepfin.tasks.charts.config import ChartDataConfig
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.tasks.charts.files import chart_split
from deepfin.training import TrainingConfig

TICKERS, DAYS = 505, 1259


def random_walks(seed: int = 0) -> pl.DataFrame:
    """OHLCV random walks of TICKERS tickers over DAYS business days."""
    rng = np.random.default_rng(seed)
    dates = pl.date_range(pl.date(2013, 2, 8), pl.date(2018, 12, 31), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:DAYS]
    shape = (TICKERS, DAYS)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, shape), axis=1))
    previous = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    opening = previous * np.exp(rng.normal(0, 0.004, shape))
    high = np.maximum(opening, close) * np.exp(np.abs(rng.normal(0, 0.006, shape)))
    low = np.minimum(opening, close) * np.exp(-np.abs(rng.normal(0, 0.006, shape)))
    return pl.DataFrame(
        {
            "date": np.tile(dates.to_numpy(), TICKERS),
            "ticker": np.repeat([f"RW{i:03d}" for i in range(TICKERS)], DAYS),
            "open": opening.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": rng.lognormal(14, 0.5, shape).ravel(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    prices = RESULTS / "random_walks.parquet"
    random_walks().write_parquet(prices)
    split = chart_split(ChartDataConfig(source=str(prices), window=20, horizon=20, stride=5))
    began = time.perf_counter()
    model = ChartClassifier(
        model_params={"channels": args.channels},
        training=TrainingConfig(batch_size=128, learning_rate=1e-4, patience=2, epochs=args.epochs),
    ).fit(split.train, split.val)
    metrics = model.evaluate(split.test)
    seconds = time.perf_counter() - began
    print(f"random walks: {split.describe()}; {seconds:.0f} s")
    print(f"{'model':14s} | {'AUC':>7s} | {'DeLong p':>8s} | {'H-L Sharpe':>10s}")
    for name, row in metrics["models"].items():
        print(f"{name:14s} | {row['auc']:7.4f} | {row['auc_p']:8.3f} | {row['hml_sharpe']:10.2f}")
    out = RESULTS / "chart_random_walk.json"
    out.write_text(json.dumps({"channels": args.channels, "seconds": seconds, **metrics}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
