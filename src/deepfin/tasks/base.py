"""What every task's estimator shares: parameters, the fitted check, and run-folder files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


class NotFittedError(RuntimeError):
    """An estimator was used before `fit`."""


class Estimator:
    """Base class: constructors only store; `fit` learns state whose names end in `_`."""

    _fitted_attribute = "model_"

    def check_is_fitted(self) -> None:
        """Raise `NotFittedError` unless `fit` (or `load`) has run."""
        if getattr(self, self._fitted_attribute, None) is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(train, val) "
                f"or {type(self).__name__}.load(run_dir) first"
            )


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
        raise FileNotFoundError(
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
        raise FileNotFoundError(f"{path} is missing; the run folder has no weights")
    start = len(prefix) + 1
    return {k[start:]: v for k, v in load_file(path).items() if k.startswith(prefix + ".")}
