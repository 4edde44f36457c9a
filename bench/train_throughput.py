"""Training throughput of deepfin's loop against the minimal PyTorch loop, on the same machine.

The reference task (the speed issue's): the built-in S&P 500 closes, lookback 30, next-day
log return, chronological 80/20 split with the scaler fitted on the first 80%, Adam 1e-3, MSE,
batch 32, 10 epochs; lstm/gru/rnn/hybrid get 50 hidden units. deepfin runs its whole loop:
validation every epoch, early-stopping bookkeeping, the progress bar and per-epoch checkpoints.

    python bench/train_throughput.py           # every table (part of `make bench`)
    python bench/train_throughput.py --quick   # lstm, reference task, one repetition

Each measurement runs in a fresh process (its own thread count and peak RSS); windows per
second are the median of 3 repetitions. deepfin's lstm and the minimal loop take turns, one
process each, so a change in machine load hits both; the other models run 3 epochs (their
windows per second are the same in every epoch) to keep `make bench` near 15 minutes.
Identical runs on a shared 2-core machine differ by up to 2x, so deepfin is compared only
with the reference loop measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PEER = ROOT.parent / "shared" / "bench" / "peer_torch.py"
MODELS = ("rnn", "lstm", "gru", "hybrid", "cnn", "transformer")
RECURRENT = ("rnn", "lstm", "gru", "hybrid")
THREADS = (1, 2)
LOOKBACK, HIDDEN, EPOCHS, LEARNING_RATE = 30, 50, 10, 1e-3
OTHER_EPOCHS = 3
PANEL_TICKERS, PANEL_DAYS = 500, 2500  # the reference loop's panel size
PANEL_WINDOWS = 16_000  # training windows per panel repetition: 500 steps at batch 32
PANEL_VAL_WINDOWS = 4_000
# the reference loop's DataLoader mode is the textbook loop, unfold its fastest; on the panel
# only the faster one runs, to keep `make bench` near 15 minutes
PEER_MODES = {"sp500": ("dataloader", "unfold"), "panel": ("unfold",)}
# Published figures for this task on a 2-core machine (from the speed issue), windows/s.
PUBLISHED = {"Keras": (2_500, 3_500), "Darts": (5_000, 8_000), "NeuralForecast": (5_000, 5_000)}
TARGET_RATIOS = {"Keras": 4.0, "Darts": 3.0}


BOUND = """
What bounds it: an LSTM window costs 3 x 2 x 4H x (F + H) x T = 1.84 MFLOP forward and
backward (H=50, F=1, T=30), so the matmul peak bounds a core as the line above says.
deepfin's fused kernels (src/deepfin/models/kernels/csrc/recurrent.cpp) do per step one product
[x_t, h_t-1] [W_ih, W_hh]^T with the weights packed once per call and a register-blocked
kernel, one vectorised pass over the gates, and the weight gradients of all 30 steps as one
product; the rows of a batch run their recurrence on separate threads. What remains at batch
32 is Python and autograd around each step of the loop (about 100 small ops per batch: head,
loss, backward graph, clipping, Adam), which costs as much as the arithmetic; the
'torch kernels' row is the same loop on nn.LSTM (oneDNN) for comparison.
"""


# ------------------------------------------------------------------ one measurement (worker)
def measure_deepfin(
    model_name: str, threads: int, batch_size: int, data: str, repetitions: int, bf16: bool
) -> dict[str, Any]:
    """Train `model_name` `repetitions` times on the reference data; windows/s of each fit."""
    import torch

    from deepfin.data.panel import load_panel
    from deepfin.data.samples import load_sample
    from deepfin.data.windows import WindowDataset
    from deepfin.models import build_model, hyperparameters
    from deepfin.training import TrainingConfig, fit_model

    torch.set_num_threads(threads)
    if data == "sp500":
        source: Any = load_sample("sp500")
        # the lstm runs the reference task's 10 epochs; the other models 3, to keep `make bench`
        # near 15 minutes: windows per second are the same in every epoch
        epochs = EPOCHS if model_name == "lstm" else OTHER_EPOCHS
    else:
        from synthetic import panel_path

        source, epochs = panel_path(PANEL_TICKERS, PANEL_DAYS), 1
    panel = load_panel(
        source,
        features=("log_return",),
        lookback=LOOKBACK,
        horizon=1,
        val_fraction=0.0,
        test_fraction=0.2,
        embargo=1,
    )
    train, val = panel.train, panel.test  # the 20% part is what early stopping watches
    if data == "panel":  # a fixed random subset: every repetition trains on the same windows
        generator = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(train), generator=generator)[:PANEL_WINDOWS].sort().values
        train = WindowDataset(train.features, train.targets, train.ends[pick], lookback=LOOKBACK)
        pick = torch.randperm(len(val), generator=generator)[:PANEL_VAL_WINDOWS].sort().values
        val = WindowDataset(val.features, val.targets, val.ends[pick], lookback=LOOKBACK)
    params = {"hidden_size": HIDDEN} if "hidden_size" in hyperparameters(model_name) else {}
    config = TrainingConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE,
        patience=epochs,  # watched every epoch, but never cuts a timed run short
        device="cpu",
        progress=True,  # drawn into this worker's captured output, as a user would see it
        bf16=bf16,
    )
    # torch imports its compiler stack when the first optimiser is built (about 2 s, once per
    # process); the reference loop builds its optimiser before its clock starts, and so do we
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    rates = []
    for repetition in range(repetitions):
        torch.manual_seed(repetition)
        model = build_model(model_name, n_features=1, lookback=LOOKBACK, n_outputs=1, params=params)
        with tempfile.TemporaryDirectory() as checkpoints:
            began = time.perf_counter()
            history = fit_model(
                model,
                train,
                val,
                loss_fn=torch.nn.functional.mse_loss,
                config=config,
                checkpoint_dir=Path(checkpoints),
            )
            seconds = time.perf_counter() - began
        rates.append(len(train) * len(history.epochs) / seconds)
    runner = "deepfin bf16 autocast" if bf16 else "deepfin"
    if os.environ.get("DEEPFIN_FUSED_RNN") == "0":
        runner = "deepfin, torch kernels"
    return {
        "runner": runner,
        "model": model_name,
        "train_windows": len(train),
        "epochs": epochs,
        "windows_per_s_runs": [round(rate, 1) for rate in rates],
        "flops_per_window": flops_per_window(model_name, params),
    }


def flops_per_window(model_name: str, params: dict[str, Any]) -> float:
    """Forward plus backward FLOPs of one window: counted by torch, plus LSTMs by formula."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from deepfin.models import build_model

    model = build_model(model_name, n_features=1, lookback=LOOKBACK, n_outputs=1, params=params)
    batch = 32
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(batch, LOOKBACK, 1)).pow(2).mean().backward()
    counted = counter.get_total_flops() / batch
    # fused recurrent kernels (deepfin's or oneDNN's) are invisible to the counter: 2 FLOPs per
    # multiply-add of the gates' products per step, and the backward pass costs twice the forward
    for module in model.modules():
        if isinstance(module, nn.LSTM | nn.GRU):
            for layer in range(module.num_layers):
                inputs = module.input_size if layer == 0 else module.hidden_size
                gates = (4 if isinstance(module, nn.LSTM) else 3) * module.hidden_size
                counted += 3 * 2 * gates * (inputs + module.hidden_size) * LOOKBACK
    return counted


def measure_matmul(threads: int) -> dict[str, Any]:
    """Float32 matrix-multiply FLOP/s of this machine on `threads` threads (the roofline)."""
    import torch

    torch.set_num_threads(threads)
    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - began) / 4)
    return {"runner": "matmul", "flops_per_s": 2 * size**3 / best}


def worker(args: argparse.Namespace) -> None:
    if args.worker == "matmul":
        result = measure_matmul(args.threads)
    else:
        result = measure_deepfin(
            args.model, args.threads, args.batch_size, args.data, args.reps, args.bf16
        )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------- orchestration
def run_process(
    command: list[str], threads: int, extra_env: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """Run a measurement in a fresh process pinned to `threads`; its RESULT line, or None."""
    env = os.environ | {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env |= extra_env or {}
    env["PYTHONPATH"] = str(ROOT / "bench") + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"^RESULT (.*)$", done.stdout, flags=re.MULTILINE)
    if done.returncode != 0 or match is None:
        print(f"  failed: {' '.join(command[1:])}\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def deepfin_run(
    model: str,
    threads: int,
    batch_size: int,
    data: str,
    reps: int,
    *,
    bf16: bool = False,
    torch_kernels: bool = False,
) -> dict[str, Any] | None:
    """One worker process that trains `model` `reps` times; windows/s of each fit."""
    command = [sys.executable, __file__, "--worker", "deepfin", "--model", model]
    command += ["--threads", str(threads), "--batch-size", str(batch_size)]
    command += ["--data", data, "--reps", str(reps)] + (["--bf16"] if bf16 else [])
    # nn.LSTM/nn.GRU instead of deepfin's fused kernels: the same loop, torch's recurrence
    return run_process(command, threads, {"DEEPFIN_FUSED_RNN": "0"} if torch_kernels else None)


def peer_run(threads: int, data: str, mode: str) -> dict[str, Any] | None:
    """One run of the minimal hand-written loop of ../shared/bench, in a fresh process."""
    if not PEER.exists():
        return None
    command = [sys.executable, str(PEER), "--mode", mode, "--threads", str(threads)]
    if data == "panel":
        command += ["--data", "panel", "--panel-series", str(PANEL_TICKERS)]
        command += ["--panel-windows", str(PANEL_WINDOWS)]
    result = run_process(command, threads)
    if result is None:
        return None
    return {
        "runner": f"minimal loop ({mode})",
        "model": "lstm",
        "train_windows": result["n_train_windows"],
        "epochs": result["epochs"],
        "windows_per_s_runs": [result["windows_per_s"]],
        "peak_rss_mb": result["peak_rss_mb_self"],
    }


def merge(
    results: list[dict[str, Any] | None], threads: int, batch_size: int, data: str
) -> list[dict[str, Any]]:
    """One record per runner from its processes: the median over every run, the peak RSS."""
    done = [result for result in results if result is not None]
    if not done:
        return []
    rates = [rate for result in done for rate in result["windows_per_s_runs"]]
    return [
        done[0]
        | {
            "threads": threads,
            "batch_size": batch_size,
            "data": data,
            "windows_per_s": statistics.median(rates),
            "windows_per_s_runs": rates,
            "peak_rss_mb": max(result["peak_rss_mb"] for result in done),
        }
    ]


def head_to_head(threads: int, data: str, reps: int, kernels: bool) -> list[dict[str, Any]]:
    """deepfin lstm and the minimal loop, run after run in turn: a change of load hits both."""
    runs: dict[str, list[dict[str, Any] | None]] = {}
    for _ in range(reps):
        for mode in PEER_MODES[data]:
            runs.setdefault(mode, []).append(peer_run(threads, data, mode))
        runs.setdefault("deepfin", []).append(deepfin_run("lstm", threads, 32, data, 1))
        if kernels and data == "sp500":  # the same loop on torch's nn.LSTM
            torch_run = deepfin_run("lstm", threads, 32, data, 1, torch_kernels=True)
            runs.setdefault("torch kernels", []).append(torch_run)
    return [record for results in runs.values() for record in merge(results, threads, 32, data)]


def table(title: str, records: list[dict[str, Any]], matmul: dict[int, float]) -> None:
    """Print one table: a row per runner, model and thread count."""
    print(f"\n{title}")
    header = (
        f"{'runner':26s} {'model':12s} {'thr':>3s} {'batch':>5s} {'epochs':>6s} {'windows/s':>10s} "
        f"{'runs (min-max)':>17s} {'RSS MB':>7s} {'GFLOP/s':>8s} {'% matmul':>8s}"
    )
    print(header)
    print("-" * len(header))
    for record in records:
        runs = record["windows_per_s_runs"]
        flops = record.get("flops_per_window")
        gflops = record["windows_per_s"] * flops / 1e9 if flops else None
        share = f"{100 * gflops * 1e9 / matmul[record['threads']]:7.1f}%" if gflops else ""
        print(
            f"{record['runner']:26s} {record['model']:12s} {record['threads']:3d} "
            f"{record['batch_size']:5d} {record['epochs']:6d} {record['windows_per_s']:10,.0f} "
            f"{f'{min(runs):,.0f}-{max(runs):,.0f}':>17s} {record['peak_rss_mb']:7.0f} "
            f"{f'{gflops:8.2f}' if gflops else '':>8s} {share:>8s}"
        )


def ratios(records: list[dict[str, Any]], data: str) -> list[dict[str, Any]]:
    """deepfin lstm over the faster minimal loop, per thread count, for one data set."""
    rows = []
    for threads in THREADS:
        ours = [
            r
            for r in records
            if r["runner"] == "deepfin"
            and r["model"] == "lstm"
            and r["batch_size"] == 32
            and r["data"] == data
            and r["threads"] == threads
        ]
        peers = [
            r
            for r in records
            if r["runner"].startswith("minimal") and r["data"] == data and r["threads"] == threads
        ]
        if ours and peers:
            best = max(peers, key=lambda r: r["windows_per_s"])
            rows.append(
                {
                    "data": data,
                    "threads": threads,
                    "deepfin_windows_per_s": ours[0]["windows_per_s"],
                    "reference": best["runner"],
                    "reference_windows_per_s": best["windows_per_s"],
                    "ratio": ours[0]["windows_per_s"] / best["windows_per_s"],
                }
            )
    return rows


def measure_all(quick: bool, reps: int) -> tuple[dict[int, float], list[dict[str, Any]]]:
    """The machine's matmul peak per thread count, and every throughput record."""
    began = time.perf_counter()
    threads_used = (1,) if quick else THREADS
    matmul = {}
    for threads in threads_used:
        result = run_process([sys.executable, __file__, "--worker", "matmul"], threads)
        matmul[threads] = result["flops_per_s"] if result else float("nan")
    peaks = ", ".join(f"{t} thread(s) {f / 1e9:.0f} GFLOP/s" for t, f in matmul.items())
    print(f"float32 matmul peak (2048^3 products): {peaks}", flush=True)
    plans = [("sp500", 32, ("lstm",) if quick else MODELS)]
    if not quick:
        plans += [("sp500", 256, MODELS), ("panel", 32, MODELS)]
    records: list[dict[str, Any]] = []
    for data, batch_size, models in plans:
        for threads in threads_used:
            if batch_size == 32:  # the reference loop has batch 32 only
                records += head_to_head(threads, data, reps, kernels=not quick)
            for model in models:
                if not (batch_size == 32 and model == "lstm"):  # measured head to head
                    result = deepfin_run(model, threads, batch_size, data, reps)
                    records += merge([result], threads, batch_size, data)
            if data == "sp500" and threads == 1 and not quick:  # opt-in, for bf16 CPUs
                result = deepfin_run("lstm", threads, batch_size, data, reps, bf16=True)
                records += merge([result], threads, batch_size, data)
            elapsed = time.perf_counter() - began
            print(
                f"  {data}, batch {batch_size}, {threads} thread(s): done at {elapsed:.0f} s",
                flush=True,
            )
    return matmul, records


def report(matmul: dict[int, float], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Print the tables, the ratios to the minimal loop and to the published figures."""
    titles = {
        ("sp500", 32): "Reference task: S&P 500, lookback 30, batch 32 (lstm and the minimal "
        "loop 10 epochs, run in turn; other models 3)",
        ("sp500", 256): "Bigger batches: the same task at batch 256",
        ("panel", 32): f"Panel: {PANEL_TICKERS} tickers x {PANEL_DAYS} days, "
        f"{PANEL_WINDOWS:,} training windows drawn from all of it, batch 32, one epoch",
    }
    for (data, batch_size), title in titles.items():
        chosen = [r for r in records if r["data"] == data and r["batch_size"] == batch_size]
        if chosen:
            table(title, chosen, matmul)
    summary = ratios(records, "sp500") + ratios(records, "panel")
    print("\ndeepfin lstm / the faster minimal loop, same run (>= 1.0: at least as fast)")
    for row in summary:
        print(
            f"  {row['data']:6s} {row['threads']} thread(s): {row['deepfin_windows_per_s']:,.0f} "
            f"vs {row['reference_windows_per_s']:,.0f} ({row['reference']}) = {row['ratio']:.2f}x"
        )
    reference = [
        r["windows_per_s"]
        for r in records
        if r["runner"] == "deepfin" and r["model"] == "lstm" and r["data"] == "sp500"
        if r["batch_size"] == 32
    ]
    if reference:
        rate = max(reference)
        print(f"\ndeepfin lstm ({rate:,.0f}/s, best thread count) against the published figures:")
        for name, (low, high) in PUBLISHED.items():
            target = TARGET_RATIOS.get(name)
            goal = f" (goal >= {target:.0f}x)" if target else ""
            print(f"  {name:15s} {low:,}-{high:,}/s: {rate / high:.1f}x-{rate / low:.1f}x{goal}")
    lstm_flops = 3 * 2 * 4 * HIDDEN * (1 + HIDDEN) * LOOKBACK
    print(
        f"\nmatmul peak / LSTM FLOPs per window: {matmul[1] / lstm_flops:,.0f} windows/s per core"
    )
    print(BOUND)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="lstm, reference task, 1 repetition")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    parser.add_argument("--worker", choices=["deepfin", "matmul"], help=argparse.SUPPRESS)
    parser.add_argument("--model", default="lstm", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--data", default="sp500", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    began = time.perf_counter()
    matmul, records = measure_all(args.quick, 1 if args.quick else args.reps)
    summary = report(matmul, records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=1))
    summary_path = args.out.with_name(args.out.stem + "_summary.json")
    summary_path.write_text(json.dumps({"matmul_flops_per_s": matmul, "ratios": summary}, indent=1))
    print(f"wrote {args.out} and {summary_path.name} ({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
