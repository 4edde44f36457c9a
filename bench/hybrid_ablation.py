"""Hybrid ablation: long path, short path, both, and plain lstm and gru, on a planted signal.

The signal of tests/models/test_hybrid.py: one feature x, iid N(0, 1); the target after row t
is a level, the sum of the last 100 rows over 10, plus a difference of the newest two rows,
0.8 x_t - 0.6 x_(t-1), plus N(0, 0.5^2) noise. Both components have unit variance, so a model
that knows only one of them has a test RMSE of about sqrt(1.25) / 0.5 = 2.24 noise stds, and
one that knows both reaches 1.0. Windows of 100 rows, a chronological 60/20/20 split with a
lookback's gap between periods; Adam 3e-3, batch 64, up to 30 epochs, patience 5, one thread.

    python bench/hybrid_ablation.py                  # 5 seeds, the hybrid's default steps
    python bench/hybrid_ablation.py --seeds 2 --short-days 10 --long-step 10

The hybrid gets hidden 16 per path with both paths; each one-path variant, and the plain lstm
and gru over all 100 daily steps, get the hidden size that gives the same parameter count
(within a few percent). Prints a table of test RMSE / noise std (mean +- std over seeds) and
seconds per epoch, and writes JSON to bench/results/hybrid_ablation.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from deepfin.data.windows import WindowDataset
from deepfin.models import build_model
from deepfin.models.forecasting.hybrid import HybridConfig, path_hidden_size
from deepfin.training import TrainingConfig, fit_model, predict_batches

RESULTS = Path(__file__).resolve().parent / "results"
LOOKBACK, LEVEL_ROWS, NOISE, N_ROWS, HIDDEN = 100, 100, 0.5, 4000, 16
# name, registered model, hybrid paths (None: a plain net over the whole window)
VARIANTS = (
    ("hybrid long", "hybrid", "long"),
    ("hybrid short", "hybrid", "short"),
    ("hybrid both", "hybrid", "both"),
    ("lstm", "lstm", None),
    ("gru", "gru", None),
)


def planted(n_rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features (N, 1), targets (N, 1) and the level and difference components (2, N)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_rows, generator=generator)
    sums = torch.cat([torch.zeros(1), x.cumsum(0)])
    level = torch.full((n_rows,), float("nan"))  # undefined before a full window
    level[LEVEL_ROWS - 1 :] = (sums[LEVEL_ROWS:] - sums[:-LEVEL_ROWS]) / LEVEL_ROWS**0.5
    recent = torch.cat([torch.zeros(1), 0.8 * x[1:] - 0.6 * x[:-1]])
    target = level + recent + NOISE * torch.randn(n_rows, generator=generator)
    return x.unsqueeze(1), target.unsqueeze(1), torch.stack([level, recent])


def model_params(model: str, paths: str | None, steps: dict[str, int | None]) -> dict[str, Any]:
    """Hyperparameters of a variant: the hybrid's, or a plain net at the hybrid's size."""
    if model == "hybrid":
        return {"hidden_size": HIDDEN, "paths": paths, **steps}
    # a plain lstm (gru) has the parameters of the hybrid's long (short) path alone
    alone = "long" if model == "lstm" else "short"
    config = HybridConfig(n_features=1, lookback=LOOKBACK, n_outputs=1, hidden_size=HIDDEN)
    return {"hidden_size": path_hidden_size(dataclasses.replace(config, paths=alone))}


def run(model: str, paths: str | None, seed: int, steps: dict[str, int | None]) -> dict[str, Any]:
    """Train one variant on one seed's series; its test RMSE and seconds per epoch."""
    features, targets, components = planted(N_ROWS, seed)
    ends = torch.arange(LOOKBACK - 1, N_ROWS)
    cut_val, cut_test = int(0.6 * len(ends)), int(0.8 * len(ends))
    periods = [ends[:cut_val], ends[cut_val + LOOKBACK : cut_test], ends[cut_test + LOOKBACK :]]
    train, val, test = (WindowDataset(features, targets, e, lookback=LOOKBACK) for e in periods)
    torch.manual_seed(seed)
    params = model_params(model, paths, steps)
    net = build_model(model, n_features=1, lookback=LOOKBACK, n_outputs=1, params=params)
    training = TrainingConfig(
        epochs=30, batch_size=64, learning_rate=3e-3, patience=5, seed=seed, progress=False
    )
    history = fit_model(net, train, val, loss_fn=torch.nn.functional.mse_loss, config=training)
    forecast = predict_batches(net, test)[:, 0]  # (B, 1) -> (B,)
    actual = targets[test.ends, 0]
    level, difference = components[:, test.ends]  # (2, B) -> 2 x (B,)

    def rmse(errors: torch.Tensor) -> float:
        return float(errors.pow(2).mean().sqrt()) / NOISE

    return {
        "seed": seed,
        "params": params,
        "parameters": sum(p.numel() for p in net.parameters()),
        # units per path: a one-path hybrid takes more than its hidden_size, to match both
        "hidden": path_hidden_size(net.config) if model == "hybrid" else params["hidden_size"],
        "rmse_over_noise": rmse(forecast - actual),
        "oracle_level_only": rmse(level - actual),
        "oracle_difference_only": rmse(difference - actual),
        "epochs": len(history.epochs),
        "seconds_per_epoch": statistics.mean(row["seconds"] for row in history.epochs),
    }


def spread(values: list[float], digits: int) -> str:
    """Mean +- standard deviation over seeds."""
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {deviation:.{digits}f}"


def print_table(results: dict[str, list[dict[str, Any]]]) -> None:
    """One row per variant: size, test RMSE / noise std and seconds per epoch over seeds."""
    print(f"\n{'variant':18s} | params | hidden | RMSE / noise std | epochs | s / epoch")
    print("-" * 76)
    for name, runs in results.items():
        print(
            f"{name:18s} | {runs[0]['parameters']:6,} | {runs[0]['hidden']:6} | "
            f"{spread([r['rmse_over_noise'] for r in runs], 2):>16s} | "
            f"{statistics.mean(r['epochs'] for r in runs):6.1f} | "
            f"{spread([r['seconds_per_epoch'] for r in runs], 3)}"
        )
    runs = next(iter(results.values()))
    oracles = {"knows the level": "oracle_level_only", "knows the diff.": "oracle_difference_only"}
    for label, key in oracles.items():
        print(f"{label:18s} |        |        | {spread([r[key] for r in runs], 2):>16s}")
    print(f"{'noise floor':18s} |        |        | {'1.00':>16s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--short-days", type=int, help="the hybrid's; default its own (20)")
    parser.add_argument("--long-step", type=int, help="the hybrid's; default its own (5)")
    parser.add_argument("--out", type=Path, default=RESULTS / "hybrid_ablation.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # nets this small: more threads only add hand-offs
    steps = {"short_days": args.short_days, "long_step": args.long_step}
    results: dict[str, list[dict[str, Any]]] = {}
    for name, model, paths in VARIANTS:
        results[name] = []
        for seed in range(args.seeds):
            results[name].append(run(model, paths, seed, steps))
            last = results[name][-1]
            print(f"{name} seed {seed}: {last['rmse_over_noise']:.2f} noise stds", flush=True)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"lookback": LOOKBACK, "rows": N_ROWS, "noise": NOISE, "hidden": HIDDEN, **steps}
    args.out.write_text(json.dumps({"setup": setup, "results": results}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
