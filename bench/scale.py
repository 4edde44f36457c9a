"""Scale: a 5,000 x 5,000-day OHLCV panel (25 M rows) from Parquet to training batches.

Each stage of the panel pipeline (reading with validation and features, split, scaling, window
indexing) is timed (wall and CPU seconds) with its peak resident memory, then 200 lstm batches
are drawn from the whole panel. The same runs for 500 tickers show how time and memory grow.
Then `deepfin forecast` itself runs on a 2,000 x 2,500-day panel under /usr/bin/time -v.

    python bench/scale.py            # 500 and 5,000 tickers (part of `make bench`)
    python bench/scale.py --quick    # 500 tickers only

Goals (from the speed issue): peak memory within 3x the float32 feature array (windows are
never materialised) and the pipeline before training under 30 s on 2 cores. The panels are
generated once and cached under bench/results/.

Last, the 157 Alpha158 factors are timed on the S&P 500 five-year panel (505 tickers; a
generated panel of its shape where ../shared/data is absent): goal under 10 s on 2 cores.

    python bench/scale.py --factors-only   # that timing alone, into the same JSON
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from synthetic import RESULTS, panel_path

N_DAYS = 5_000
SIZES = (500, 5_000)
STAGES = ("read + features", "split", "scaling", "window indexing")
TRAIN_BATCHES, BATCH_SIZE, LOOKBACK = 200, 32, 30
MEMORY_GOAL, SECONDS_GOAL = 3.0, 30.0
CLI_PANEL = (2_000, 2_500)  # tickers x days of the `deepfin forecast` memory check
SP500 = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_5yr" / "all_stocks_5yr.csv.gz"
)
FACTOR_PANEL = (505, 1_259)  # tickers x days of that panel, for the generated stand-in
FACTOR_SECONDS_GOAL, FACTOR_REPEATS = 10.0, 3


class StageMeter:
    """Wall and CPU seconds and peak resident memory of each named stage, over many calls."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.peak_mb: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def __call__(self, stage: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        _reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - wall
        self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - cpu
        self.peak_mb[stage] = max(self.peak_mb.get(stage, 0.0), _memory_mb("VmHWM"))
        return result


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux")


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so each stage gets its own
    # peak; where that is not allowed the peaks are cumulative (never lower than the truth)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(n_tickers: int) -> dict[str, Any]:
    """Run the pipeline on the n_tickers panel, then train 200 batches; all measurements."""
    import torch

    from deepfin.data.chunks import collect_rows
    from deepfin.data.panel import TEST, TRAIN, VAL, Panel, split_parts
    from deepfin.data.windows import WindowDataset
    from deepfin.models import build_model
    from deepfin.training import TrainingConfig, fit_model

    path = panel_path(n_tickers, N_DAYS)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch's one-off lazy imports
    baseline_mb = _memory_mb("VmRSS")
    meter = StageMeter()
    features = ("log_return", "volatility_20", "rsi_14", "volume_z_20")  # the defaults
    # reading, validating and featurizing go chunk by chunk together: one stage
    rows = meter("read + features", collect_rows, path, features=features, horizon=1)
    part = meter("split", split_parts, rows, val_fraction=0.15, test_fraction=0.15, embargo=1)
    inside = rows.target_in(part)

    def scale() -> tuple:
        train = part == TRAIN
        scalers = rows.fit_scalers(train, train & inside, kind="standard", per_ticker=False)
        rows.scale(*scalers)
        return scalers

    scalers = meter("scaling", scale)
    labelled, known = rows.labelled & inside, rows.known & inside
    ends = {
        name: meter("window indexing", rows.window_ends, mask & (part == name), lookback=LOOKBACK)
        for name, mask in ((TRAIN, labelled), (VAL, labelled), (TEST, known))
    }
    panel = Panel(rows, part, ends, scalers[0], scalers[1], LOOKBACK)
    feature_mb = panel.features.numel() * panel.features.element_size() / 2**20

    # 200 batches drawn at random from every window of the panel: the cost per batch must not
    # depend on how many rows lie behind the window view
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    pick = torch.randint(len(panel.train), (TRAIN_BATCHES * BATCH_SIZE,), generator=generator)
    train = WindowDataset(panel.features, panel.targets, panel.train.ends[pick], lookback=LOOKBACK)
    model = build_model("lstm", n_features=len(features), lookback=LOOKBACK, n_outputs=1, params={})
    config = TrainingConfig(epochs=1, batch_size=BATCH_SIZE, progress=False, device="cpu")
    _reset_peak()
    began = time.perf_counter()
    fit_model(model, train, None, loss_fn=torch.nn.functional.mse_loss, config=config)
    batch_ms = 1000 * (time.perf_counter() - began) / TRAIN_BATCHES
    return {
        "tickers": n_tickers,
        "days": N_DAYS,
        "rows": int(panel.features.shape[0]),
        "train_windows": len(panel.train),
        "feature_array_mb": feature_mb,
        "baseline_rss_mb": baseline_mb,
        "stage_seconds": meter.wall,
        "stage_cpu_seconds": meter.cpu,
        "stage_peak_rss_mb": meter.peak_mb,
        "pipeline_seconds": sum(meter.wall.values()),
        "pipeline_cpu_seconds": sum(meter.cpu.values()),
        "train_batch_ms": batch_ms,
        "train_peak_rss_mb": _memory_mb("VmHWM"),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    """Stages by panel size: seconds (wall / CPU) and peak RSS, then the goals and growth."""
    sizes = "".join(f" | {r['tickers']:>6,} tickers: s (cpu s), peak MB" for r in results)
    print(f"\n{'stage':17s}{sizes}")
    print("-" * (17 + 40 * len(results)))
    for stage in STAGES:
        cells = "".join(
            f" | {r['stage_seconds'][stage]:12.2f} ({r['stage_cpu_seconds'][stage]:6.2f})"
            f" {r['stage_peak_rss_mb'][stage]:9,.0f}"
            for r in results
        )
        print(f"{stage:17s}{cells}")
    rows = {
        "pipeline total": lambda r: (
            f"{r['pipeline_seconds']:12.2f} ({r['pipeline_cpu_seconds']:6.2f})"
            f" {max(r['stage_peak_rss_mb'].values()):9,.0f}"
        ),
        "200 lstm batches": lambda r: (
            f"{r['train_batch_ms']:9.2f} ms/batch {r['train_peak_rss_mb']:10,.0f}"
        ),
    }
    for label, cell in rows.items():
        print(f"{label:17s}" + "".join(f" | {cell(r)}" for r in results))
    print()
    for r in results:
        peak = max(max(r["stage_peak_rss_mb"].values()), r["train_peak_rss_mb"])
        above = (peak - r["baseline_rss_mb"]) / r["feature_array_mb"]
        print(
            f"{r['tickers']:,} tickers, {r['rows']:,} rows: float32 feature array "
            f"{r['feature_array_mb']:,.0f} MB; peak RSS {peak:,.0f} MB, of which "
            f"{peak - r['baseline_rss_mb']:,.0f} MB above the {r['baseline_rss_mb']:,.0f} MB of "
            f"python + torch + polars = {above:.2f}x the array (goal <= {MEMORY_GOAL:.0f}x; "
            f"{peak / r['feature_array_mb']:.2f}x counting the interpreter); pipeline "
            f"{r['pipeline_seconds']:.1f} s wall, {r['pipeline_cpu_seconds']:.1f} s CPU "
            f"(goal < {SECONDS_GOAL:.0f} s)"
        )
    if len(results) == 2:
        small, large = results
        factor = large["rows"] / small["rows"]
        grow_time = large["pipeline_seconds"] / small["pipeline_seconds"]
        grow_memory = (max(large["stage_peak_rss_mb"].values()) - large["baseline_rss_mb"]) / (
            max(small["stage_peak_rss_mb"].values()) - small["baseline_rss_mb"]
        )
        grow_batch = large["train_batch_ms"] / small["train_batch_ms"]
        print(
            f"\n{factor:.0f}x the rows: pipeline time x{grow_time:.1f}, memory above the "
            f"interpreter x{grow_memory:.1f}, time per training batch x{grow_batch:.2f} "
            "(flat: batches are gathered from the window view, never from copies)"
        )


def measure_cli(n_tickers: int, n_days: int, model: str) -> dict[str, Any]:
    """Peak RSS of `deepfin forecast` (one epoch) by /usr/bin/time -v, and of the same command
    on a 20-ticker panel: the interpreter, torch, polars and the run's fixed costs."""
    deepfin = Path(sys.executable).parent / "deepfin"
    peaks: dict[int, float] = {}
    for tickers in (20, n_tickers):
        path = panel_path(tickers, n_days)
        with tempfile.TemporaryDirectory() as run_dir:
            command = [
                "/usr/bin/time", "-v", str(deepfin), "forecast", "--data", str(path),
                "--model", model, "--epochs", "1", "--batch-size", "256", "--no-progress",
                "--no-report", "--run-dir", run_dir,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            sys.exit(f"deepfin forecast on {path.name} failed:\n{done.stderr[-3000:]}")
        peaks[tickers] = int(found.group(1)) / 1024
    rows = int(pq.ParquetFile(panel_path(n_tickers, n_days)).metadata.num_rows)
    feature_mb = rows * 4 * 4 / 2**20  # the four default features, float32
    return {
        "tickers": n_tickers,
        "days": n_days,
        "model": model,
        "rows": rows,
        "feature_array_mb": feature_mb,
        "peak_rss_mb": peaks[n_tickers],
        "baseline_rss_mb": peaks[20],
        "ratio": (peaks[n_tickers] - peaks[20]) / feature_mb,
    }


def print_cli(result: dict[str, Any]) -> None:
    """The CLI's peak memory against the goal."""
    above = result["peak_rss_mb"] - result["baseline_rss_mb"]
    print(
        f"\ndeepfin forecast --model {result['model']} --epochs 1 on {result['tickers']:,} x "
        f"{result['days']:,} days ({result['rows']:,} rows), by /usr/bin/time -v: peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB; the same command on 20 tickers "
        f"{result['baseline_rss_mb']:,.0f} MB; {above:,.0f} MB above it = "
        f"{result['ratio']:.2f}x the {result['feature_array_mb']:,.0f} MB float32 feature array "
        f"(goal <= {MEMORY_GOAL:.0f}x)"
    )


def measure_factors() -> dict[str, Any]:
    """Wall and CPU seconds to compute every alpha158 factor on the 505-ticker panel."""
    from deepfin.data.factors import expand_factor_sets
    from deepfin.data.features import add_features
    from deepfin.data.io import read_prices

    path = SP500 if SP500.exists() else panel_path(*FACTOR_PANEL)
    frame = read_prices(path)  # reading and validating are the pipeline's stage, not timed here
    features = expand_factor_sets(("alpha158",))
    add_features(frame.head(5_000), features)  # polars' thread pool and numpy's first calls
    walls, cpus = [], []
    for _ in range(FACTOR_REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        add_features(frame, features)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "source": path.name,
        "tickers": frame["ticker"].n_unique(),
        "rows": frame.height,
        "factors": len(features),
        "seconds": min(walls),
        "cpu_seconds": cpus[walls.index(min(walls))],
        "all_seconds": walls,
    }


def print_factors(result: dict[str, Any]) -> None:
    """The factor timing as one table row, against its goal."""
    print(f"\n{'factors':17s} | {result['tickers']:>6,} tickers: s (cpu s), rows")
    print("-" * 57)
    print(
        f"{'alpha158 (' + str(result['factors']) + ')':17s} | {result['seconds']:12.2f} "
        f"({result['cpu_seconds']:6.2f}) {result['rows']:9,}"
    )
    print(
        f"\n{result['factors']} Alpha158 factors on {result['source']} "
        f"({result['tickers']} tickers, {result['rows']:,} rows): {result['seconds']:.2f} s "
        f"wall, best of {FACTOR_REPEATS} ({', '.join(f'{s:.2f}' for s in result['all_seconds'])}"
        f"), {result['cpu_seconds']:.2f} s CPU (goal < {FACTOR_SECONDS_GOAL:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 tickers only")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument("--factors-only", action="store_true", help="the factor timing alone")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(measure(args.worker)), flush=True)
        return
    if args.factors_only:  # into the JSON of the last full run, the other results kept
        factors = measure_factors()
        print_factors(factors)
        saved = json.loads(args.out.read_text()) if args.out.exists() else {}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(saved | {"factors": factors}, indent=1))
        print(f"\nwrote {args.out}")
        return
    results = []
    for n_tickers in SIZES[:1] if args.quick else SIZES:
        panel_path(n_tickers, N_DAYS)  # generate (once) outside the measured process
        # a fresh process per size: its memory peaks are its own
        env = os.environ | {"PYTHONPATH": str(Path(__file__).parent)}
        command = [sys.executable, __file__, "--worker", str(n_tickers)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.exit(f"the {n_tickers}-ticker run failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(lines[-1][len("RESULT ") :]))
        print(f"{n_tickers:,} tickers measured", flush=True)
    print_table(results)
    # the CLI end to end: the quick run fits the linear baseline only, the full one an lstm
    cli = measure_cli(*CLI_PANEL, "linear" if args.quick else "lstm")
    print_cli(cli)
    factors = measure_factors()
    print_factors(factors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"pipeline": results, "cli": cli, "factors": factors}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
