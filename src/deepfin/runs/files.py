"""The run-folder format: file names, the header every config.json starts with, atomic writes.

A run folder is plain files: JSON, CSV, Parquet and safetensors. Nothing is pickled, and
loading a run executes no code from it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from safetensors.torch import load_file, save_file

from deepfin import __version__
from deepfin.errors import RunFolderError
from deepfin.training.config import History

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PREPROCESS = "preprocess.json"
HISTORY = "history.csv"
TRAINING = "training.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
RUN = "run.json"
REPORT = "report.html"


def run_header(task: str) -> dict[str, Any]:
    """What every config.json begins with: the task that wrote it and the format's version."""
    return {"task": task, "format_version": FORMAT_VERSION, "deepfin_version": __version__}


def read_config(run_dir: Path, task: str) -> dict[str, Any]:
    """A run folder's config.json, checked to be written by `task`."""
    saved = read_json(run_dir / CONFIG)
    found = saved.get("task") if isinstance(saved, dict) else None
    if found != task:
        raise RunFolderError(f"{run_dir} holds a '{found}' run, not a {task} run")
    return dict(saved)


def read_task(run_dir: Path) -> str:
    """The task that wrote a run folder, from its config.json."""
    config = read_json(Path(run_dir) / CONFIG)
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(task, str):
        raise RunFolderError(
            f"{Path(run_dir) / CONFIG} names no task; is {run_dir} a deepfin run folder?"
        )
    return task


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats by None so the JSON is standard (no NaN / Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically: a crash never leaves half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(_json_safe(payload), indent=2, default=str) + "\n")
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    """Read a JSON file of a run folder, saying which file is missing if it is."""
    if not path.exists():
        raise RunFolderError(
            f"{path} is missing; is {path.parent} a deepfin run folder (written by save)?"
        )
    return json.loads(path.read_text())


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write safetensors atomically."""
    partial = path.with_name(path.name + ".partial")
    save_file({name: value.detach().cpu().clone() for name, value in tensors.items()}, partial)
    os.replace(partial, path)


def read_tensors(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix.` in a safetensors file, prefix removed; runs no code."""
    if not path.exists():
        raise RunFolderError(f"{path} is missing; the run folder has no weights")
    start = len(prefix) + 1
    return {k[start:]: v for k, v in load_file(path).items() if k.startswith(prefix + ".")}


def write_history(run_dir: Path, history: History) -> None:
    """Losses per epoch (history.csv) and how training ended (training.json)."""
    summary = {key: value for key, value in asdict(history).items() if key != "epochs"}
    write_json(run_dir / TRAINING, summary)
    pl.DataFrame(
        history.epochs or None, schema=["epoch", "train_loss", "val_loss", "seconds"]
    ).write_csv(run_dir / HISTORY)


def read_history(run_dir: Path) -> History | None:
    """The training history of a run folder, or None when it has none."""
    if not (run_dir / HISTORY).exists() or not (run_dir / TRAINING).exists():
        return None
    return History(
        epochs=pl.read_csv(run_dir / HISTORY, glob=False).to_dicts(),
        **read_json(run_dir / TRAINING),
    )


def write_results(run_dir: Path, metrics: Any, predictions: pl.DataFrame | None) -> None:
    """An evaluation's metrics.json and predictions.parquet, when there was one."""
    if metrics is not None and predictions is not None:
        write_json(run_dir / METRICS, metrics)
        predictions.write_parquet(run_dir / PREDICTIONS)


@dataclass
class RunFiles:
    """What every fitted estimator's run folder holds, whatever the task."""

    config: dict[str, Any]  # the constructor parameters and the models' sizes
    preprocess: dict[str, Any]  # what was learned besides the weights: scalers, encoders
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # "name.key": weights
    history: History = field(default_factory=History)
    metrics: Any = None  # the evaluation's, if there was one
    predictions: pl.DataFrame | None = None


def write_run(run_dir: Path, task: str, files: RunFiles) -> Path:
    """Write a run folder of `task`, each file atomically; returns the folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG, {**run_header(task), **files.config})
    if files.tensors:
        write_tensors(run_dir / WEIGHTS, files.tensors)
    write_json(run_dir / PREPROCESS, files.preprocess)
    write_history(run_dir, files.history)
    write_results(run_dir, files.metrics, files.predictions)
    return run_dir


def read_run(run_dir: Path, task: str) -> RunFiles:
    """A run folder of `task` as written by `write_run`; the weights are read by `read_tensors`."""
    run_dir = Path(run_dir)
    return RunFiles(
        config=read_config(run_dir, task),
        preprocess=read_json(run_dir / PREPROCESS),
        history=read_history(run_dir) or History(),
        metrics=read_json(run_dir / METRICS) if (run_dir / METRICS).exists() else None,
        predictions=(
            pl.read_parquet(run_dir / PREDICTIONS, glob=False)
            if (run_dir / PREDICTIONS).exists()
            else None
        ),
    )
