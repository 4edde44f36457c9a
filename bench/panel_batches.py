"""Date batches against per-window batches: training windows per second on a 505-ticker panel.

One GRU (hidden 32, lookback 20) trains two epochs on the S&P 500 five-year panel (a generated
panel of its shape where ../shared/data is absent), once with shuffled windows at batch 256 and
MSE, once with batches of whole dates (about 505 windows each) and the IC loss. Goal (from the
panel issue): the date batches at least as fast, in windows per second.

    python bench/panel_batches.py        # table on stdout, JSON in bench/results/
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from synthetic import RESULTS, panel_path

from deepfin import Forecaster
from deepfin.training import TrainingConfig

SP500 = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_5yr" / "all_stocks_5yr.csv.gz"
)
FEATURES = ("log_return", "volatility_20", "rsi_14", "volume_z_20", "hl_range", "momentum_10")
SETTINGS = {
    "windows, batch 256, mse": {"loss": "mse", "date_batches": False},
    "whole dates, ic loss": {"loss": "ic", "date_batches": True},
}


def main() -> None:
    source = SP500 if SP500.exists() else panel_path(505, 1259)
    panel = Forecaster(features=FEATURES, lookback=20).prepare(str(source))
    results = {}
    for name, settings in SETTINGS.items():
        forecaster = Forecaster(
            model="gru",
            lookback=20,
            features=FEATURES,
            label_norm="rank",
            model_params={"hidden_size": 32},
            training=TrainingConfig(epochs=2, batch_size=256, progress=False, patience=0),
            **settings,
        )
        began = time.perf_counter()
        forecaster.fit(panel)
        seconds = time.perf_counter() - began
        history = forecaster.history_.epochs
        epoch_seconds = sum(row["seconds"] for row in history) / len(history)
        windows = len(panel.train)
        results[name] = {
            "train_windows": windows,
            "seconds_per_epoch": epoch_seconds,
            "windows_per_second": windows / epoch_seconds,
            "fit_seconds": seconds,
        }
    print(f"{'batches':26s} | {'windows':>9s} | {'s / epoch':>9s} | {'windows / s':>11s}")
    print("-" * 64)
    for name, row in results.items():
        print(
            f"{name:26s} | {row['train_windows']:9,} | {row['seconds_per_epoch']:9.1f} | "
            f"{row['windows_per_second']:11,.0f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "panel_batches.json"
    out.write_text(json.dumps({"source": source.name, "results": results}, indent=1))
    print(f"\nper epoch including the validation pass; JSON: {out}")


if __name__ == "__main__":
    main()
