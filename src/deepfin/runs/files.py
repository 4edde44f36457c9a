"""The run-folder format: file names, the header every config.json starts with, atomic writes.

A run folder is plain files: JSON, CSV, Parquet and safetensors. Nothing is pickled, and
loading a run executes no code from it. Every file is written through `runs.atomic` (never
through a symlink) and read the same way.

config.json is written last and records the sha256 of every other file the run wrote
(`"files"`), so a file changed, truncated or swapped afterwards is refused when the run is
opened. config.json itself is not hashed: it is the manifest's home, the one file a user may
read and annotate, and every value in it that matters is checked when the run is opened (the
task, each config dataclass's validation, the model's sizes against the weights' shapes). A
folder written before the hashes were recorded (no `"files"`) opens unchecked.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import torch
from safetensors.torch import save as save_tensors

from deepfin import __version__
from deepfin.errors import RunFolderError
from deepfin.runs.atomic import read_bytes, sha256, write_bytes, write_file
from deepfin.runs.lock import run_lock
from deepfin.runs.weights import Weights, parse_weights
from deepfin.training.config import History

T = TypeVar("T")

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
FILES = "files"  # config.json's record of the other files: name -> sha256


def run_header(task: str) -> dict[str, Any]:
    """What every config.json begins with: the task that wrote it and the format's version."""
    return {
        "task": task,
        "format_version": FORMAT_VERSION,
        "deepfin_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def read_config(run_dir: Path, task: str) -> dict[str, Any]:
    """A run folder's config.json, checked to be written by `task`."""
    saved = read_json(run_dir / CONFIG)
    if not isinstance(saved, dict):
        raise RunFolderError(
            f"{run_dir / CONFIG} holds a JSON {type(saved).__name__}, not the settings of a run; "
            "re-run or restore it"
        )
    found = saved.get("task")
    if found != task:
        raise RunFolderError(
            f"{run_dir / CONFIG} says it holds a {found!r} run, not a {task} run; "
            f"open it with the command of its task"
        )
    version = saved.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise RunFolderError(
            f"{run_dir / CONFIG} is of run-folder format {version!r}; this deepfin reads formats "
            f"1 to {FORMAT_VERSION}: open it with the deepfin that wrote it, or upgrade"
        )
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


def write_json(path: Path, payload: Any) -> str:
    """Write JSON atomically (never through a link); its sha256."""
    return write_bytes(
        path, (json.dumps(_json_safe(payload), indent=2, default=str) + "\n").encode()
    )


def read_json(path: Path) -> Any:
    """Read a JSON file of a run folder, saying which file is missing if it is."""
    missing = f"{path} is missing; is {path.parent} a deepfin run folder (written by save)?"
    return _parse_json(path, read_bytes(path, missing=missing))


def write_frame(path: Path, frame: pl.DataFrame) -> str:
    """Write a table as Parquet (a .parquet name) or CSV, atomically; its sha256."""
    if Path(path).suffix.lower() == ".parquet":
        return write_file(path, frame.write_parquet)
    return write_file(path, frame.write_csv)


def read_frame(path: Path, data: bytes | None = None) -> pl.DataFrame:
    """A Parquet or CSV table of a run folder (never through a link)."""
    data = read_bytes(path) if data is None else data
    try:
        if Path(path).suffix.lower() == ".parquet":
            return pl.read_parquet(io.BytesIO(data))
        return pl.read_csv(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as error:
        raise RunFolderError(
            f"{path} does not read as a table ({error}); re-run or restore it"
        ) from None


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write safetensors atomically; its sha256."""
    return write_bytes(
        path, save_tensors({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})
    )


def read_artifact(run_dir: Path, name: str, hashes: dict[str, str] | None) -> bytes | None:
    """A file of the run, checked against the sha256 config.json recorded; None if not written.

    With a record, a file it does not list was not written by this run (None); without one (a
    folder of an earlier version) a missing file is None.
    """
    path = Path(run_dir) / name
    if hashes is not None and name not in hashes:
        return None
    if hashes is None and not path.exists() and not path.is_symlink():
        return None
    data = read_bytes(path, missing=f"{path} is missing; config.json says the run wrote it")
    if hashes is not None and sha256(data) != hashes[name]:
        raise RunFolderError(
            f"{path} was changed after the run was written (sha256 differs); re-run or restore it"
        )
    return data


def required_artifact(run_dir: Path, name: str, hashes: dict[str, str] | None) -> bytes:
    """A file the run cannot open without, checked as `read_artifact` does."""
    data = read_artifact(run_dir, name, hashes)
    path = Path(run_dir) / name
    if data is None and path.exists():
        raise RunFolderError(
            f"{path} is not among the files {CONFIG} records, so this run did not write it; "
            "re-run or restore the run folder"
        )
    if data is None:
        raise RunFolderError(f"{path} is missing; re-run or restore the run folder")
    return data


def read_weights(run_dir: Path, hashes: dict[str, str] | None) -> Weights:
    """The run's model.safetensors, checked and its header parsed; nothing built yet."""
    return parse_weights(Path(run_dir) / WEIGHTS, required_artifact(run_dir, WEIGHTS, hashes))


def _parse_json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise RunFolderError(
            f"{path} is not valid JSON (truncated or edited?); re-run or restore it"
        ) from None


def write_history(run_dir: Path, history: History) -> dict[str, str]:
    """Losses per epoch (history.csv) and how training ended (training.json); their sha256."""
    summary = {key: value for key, value in asdict(history).items() if key != "epochs"}
    columns = ["epoch", "train_loss", "val_loss", "seconds"]
    columns += ["val_score"] if any("val_score" in row for row in history.epochs) else []
    epochs = pl.DataFrame(history.epochs or None, schema=columns)
    return {
        TRAINING: write_json(run_dir / TRAINING, summary),
        HISTORY: write_frame(run_dir / HISTORY, epochs),
    }


def read_history(run_dir: Path, hashes: dict[str, str] | None = None) -> History | None:
    """The training history of a run folder, or None when it has none."""
    epochs = read_artifact(run_dir, HISTORY, hashes)
    summary = read_artifact(run_dir, TRAINING, hashes)
    if epochs is None or summary is None:
        return None
    return History(
        epochs=read_frame(run_dir / HISTORY, epochs).to_dicts(),
        **_parse_json(run_dir / TRAINING, summary),
    )


def write_results(run_dir: Path, metrics: Any, predictions: pl.DataFrame | None) -> dict[str, str]:
    """An evaluation's metrics.json and predictions.parquet, when there was one; their sha256."""
    if metrics is None or predictions is None:
        return {}
    return {
        METRICS: write_json(run_dir / METRICS, metrics),
        PREDICTIONS: write_frame(run_dir / PREDICTIONS, predictions),
    }


@dataclass
class RunFiles:
    """What every fitted estimator's run folder holds, whatever the task."""

    config: dict[str, Any]  # the constructor parameters and the models' sizes
    preprocess: dict[str, Any]  # what was learned besides the weights: scalers, encoders
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # "name.key": weights
    history: History = field(default_factory=History)
    metrics: Any = None  # the evaluation's, if there was one
    predictions: pl.DataFrame | None = None
    texts: dict[str, str] = field(default_factory=dict)  # other files by name (model.lgb.txt)
    hashes: dict[str, str] | None = None  # read: config.json's record; None in older folders


def write_run(run_dir: Path, task: str, files: RunFiles) -> Path:
    """Write a run folder of `task`, each file atomically, config.json last; returns the folder.

    config.json, written last, records every other file's sha256: a folder is a run once it
    has one, and a crash before that leaves none (or the previous run's, whose hashes then
    refuse the half-replaced files).
    """
    with run_lock(run_dir):
        hashes: dict[str, str] = {}
        if files.tensors:
            hashes[WEIGHTS] = write_tensors(run_dir / WEIGHTS, files.tensors)
        for name, text in files.texts.items():
            hashes[name] = write_bytes(run_dir / name, text.encode("utf-8"))
        hashes[PREPROCESS] = write_json(run_dir / PREPROCESS, files.preprocess)
        hashes |= write_history(run_dir, files.history)
        hashes |= write_results(run_dir, files.metrics, files.predictions)
        write_json(run_dir / CONFIG, {**run_header(task), **files.config, FILES: hashes})
    return run_dir


def read_run(run_dir: Path, task: str) -> RunFiles:
    """A run folder of `task` as written by `write_run`, each file checked against its sha256.

    The weights and other files are read by `read_weights` and `required_artifact`.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir, task)
    hashes = config.pop(FILES, None)
    if hashes is not None and not (
        isinstance(hashes, dict) and all(isinstance(v, str) for v in hashes.values())
    ):
        raise RunFolderError(f"{run_dir / CONFIG}: '{FILES}' is not a map of file names to sha256")
    metrics = read_artifact(run_dir, METRICS, hashes)
    predictions = read_artifact(run_dir, PREDICTIONS, hashes)
    return RunFiles(
        config=config,
        preprocess=_parse_json(
            run_dir / PREPROCESS, required_artifact(run_dir, PREPROCESS, hashes)
        ),
        history=read_history(run_dir, hashes) or History(),
        metrics=None if metrics is None else _parse_json(run_dir / METRICS, metrics),
        predictions=None if predictions is None else read_frame(run_dir / PREDICTIONS, predictions),
        hashes=hashes,
    )


def open_run(run_dir: Path, task: str, build: Callable[[Path, RunFiles], T]) -> T:
    """`build(run_dir, files)` on a run folder of `task`; a missing or mistyped entry of its
    JSON files is a RunFolderError, not a KeyError deep inside the loader."""
    files = read_run(run_dir, task)
    try:
        return build(Path(run_dir), files)
    except (KeyError, TypeError) as error:
        raise RunFolderError(
            f"the run folder {run_dir} lacks or mangles an entry of its JSON files "
            f"({type(error).__name__}: {error}); re-run or restore it"
        ) from error
