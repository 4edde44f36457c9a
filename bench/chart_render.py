"""Chart rendering speed: images per second for 5-, 20- and 60-day charts, deepfin's numpy
renderer beside mplfinance drawing the same windows to arrays, in the same run.

The series is a random walk of OHLCV days; every window is drawn (deepfin in batches of 4,096,
mplfinance one figure per window, the first 40 windows). Goal (from the chart issue): deepfin
at least 50x faster.

With ../shared/data beside the repository it also draws every 20-day chart of the 505-ticker
S&P 500 panel the way training does (batches of 256 charts, drawn when asked for) and reports
the process's peak memory beside what the charts would take if they were all held at once.

    python bench/chart_render.py      # table on stdout, JSON in bench/results/
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from synthetic import RESULTS

from deepfin.data.charts import ChartStyle, moving_average, render

PANEL = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_5yr" / "all_stocks_5yr.csv.gz"
)
GATHER = 256  # charts drawn at once, as the training loop gathers them for batches of 128
DAYS = 3000
BATCH = 4096
MPF_WINDOWS = 40


def series(seed: int = 0) -> dict[str, np.ndarray]:
    """A random walk of OHLCV days."""
    generator = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(generator.normal(0, 0.01, DAYS)))
    opening = close * np.exp(generator.normal(0, 0.003, DAYS))
    high = np.maximum(opening, close) * np.exp(np.abs(generator.normal(0, 0.005, DAYS)))
    low = np.minimum(opening, close) * np.exp(-np.abs(generator.normal(0, 0.005, DAYS)))
    volume = generator.integers(1_000, 100_000, DAYS).astype(float)
    return {"open": opening, "high": high, "low": low, "close": close, "volume": volume}


def deepfin_rate(prices: dict[str, np.ndarray], style: ChartStyle) -> float:
    """Images per second over every window of the series."""
    average = moving_average(prices["close"], style.days)
    ends = np.arange(2 * style.days - 1, DAYS)
    args = (prices["open"], prices["high"], prices["low"], prices["close"], prices["volume"])
    render(*args, ends[:10], style, average=average)  # warm-up
    began = time.perf_counter()
    for start in range(0, ends.size, BATCH):
        render(*args, ends[start : start + BATCH], style, average=average)
    return ends.size / (time.perf_counter() - began)


def mplfinance_rate(prices: dict[str, np.ndarray], style: ChartStyle) -> float | None:
    """Images per second of mplfinance drawing the same windows (OHLC bars, moving average,
    volume) into arrays of the same size; None if it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mplfinance as mpf
    except ImportError:
        return None
    frame = pd.DataFrame(
        {key.capitalize(): value for key, value in prices.items()},
        index=pd.bdate_range("2000-01-03", periods=DAYS),
    )
    dpi = 100
    size = (style.width / dpi, style.height / dpi)
    ends = np.arange(2 * style.days - 1, DAYS)[:MPF_WINDOWS]
    began = time.perf_counter()
    for end in ends:
        window = frame.iloc[end - style.days + 1 : end + 1]
        figure, _ = mpf.plot(
            window, type="ohlc", mav=(style.days // 2,), volume=True, style="classic",
            axisoff=True, returnfig=True, figsize=size, tight_layout=True,
        )  # fmt: skip
        figure.canvas.draw()
        np.asarray(figure.canvas.buffer_rgba())[..., 0]  # the image, as an array
        plt.close(figure)
    return ends.size / (time.perf_counter() - began)


def peak_mib() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def panel_run() -> dict[str, float] | None:
    """Every 20-day chart of the S&P 500 panel drawn in training-sized batches: images per
    second and peak memory; None without the shared data."""
    if not PANEL.exists():
        return None
    import torch

    from deepfin.data.chart_panel import ChartPanel, ChartSet, chart_samples
    from deepfin.data.images import ChartBatches
    from deepfin.data.io import read_prices

    before = peak_mib()
    frame = read_prices(PANEL)
    panel = ChartPanel.from_frame(frame, ChartStyle.of(20))
    del frame
    samples = chart_samples(panel, horizon=20, stride=1)
    batches = ChartBatches(ChartSet(panel, samples, 20))
    loaded = peak_mib()
    began = time.perf_counter()
    for start in range(0, len(batches), GATHER):
        batches.batch(torch.arange(start, min(start + GATHER, len(batches))))
    seconds = time.perf_counter() - began
    chart_bytes = ChartStyle.of(20).height * ChartStyle.of(20).width
    return {
        "tickers": float(len(panel.tickers)),
        "charts": float(len(samples)),
        "images_per_s": len(samples) / seconds,
        "peak_mib_before_reading": before,
        "peak_mib_after_reading": loaded,
        "peak_mib_after_drawing": peak_mib(),
        "all_charts_as_uint8_mib": len(samples) * chart_bytes / 2**20,
        "all_charts_as_float32_mib": len(samples) * chart_bytes * 4 / 2**20,
    }


def main() -> None:
    prices = series()
    results = {}
    for days in (5, 20, 60):
        style = ChartStyle.of(days)
        ours, theirs = deepfin_rate(prices, style), mplfinance_rate(prices, style)
        results[f"{days}-day {style.height}x{style.width}"] = {
            "deepfin_images_per_s": ours,
            "mplfinance_images_per_s": theirs,
            "speedup": ours / theirs if theirs else None,
        }
    print(f"{'chart':18s} | {'deepfin (img/s)':>15s} | {'mplfinance (img/s)':>18s} | {'x':>7s}")
    print("-" * 68)
    for name, row in results.items():
        theirs = row["mplfinance_images_per_s"]
        shown = f"{theirs:18.1f}" if theirs else f"{'not installed':>18s}"
        speedup = f"{row['speedup']:7.0f}" if row["speedup"] else f"{'-':>7s}"
        print(f"{name:18s} | {row['deepfin_images_per_s']:15.0f} | {shown} | {speedup}")
    panel = panel_run()
    if panel is None:
        print(f"(no {PANEL}: the panel run is skipped)")
    else:
        print(
            f"\nS&P 500 panel, 20-day charts: {panel['charts']:.0f} charts of "
            f"{panel['tickers']:.0f} tickers drawn in batches of {GATHER} at "
            f"{panel['images_per_s']:.0f} img/s; peak memory {panel['peak_mib_after_drawing']:.0f} "
            f"MiB ({panel['peak_mib_after_reading']:.0f} MiB after reading the prices); all "
            f"charts held at once would take {panel['all_charts_as_uint8_mib']:.0f} MiB as uint8, "
            f"{panel['all_charts_as_float32_mib']:.0f} MiB as float32"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "chart_render.json"
    out.write_text(json.dumps({"days": DAYS, "results": results, "panel": panel}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
