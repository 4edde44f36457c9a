"""Training checkpoints: safetensors weights and a JSON state, each written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINT_WEIGHTS = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"


def save_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    best_state: dict[str, torch.Tensor],
    history: dict[str, Any],
    epoch: int,
) -> None:
    """Write weights, best weights, optimiser moments and history; each file atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.contiguous().cpu() for k, v in model.state_dict().items()}
    tensors |= {f"best.{k}": v.contiguous().cpu() for k, v in best_state.items()}
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state["state"].items():
        for name, value in state.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value).contiguous().cpu()
    state_json = {
        "epoch": epoch,
        "history": history,
        "param_groups": optimizer_state["param_groups"],
    }
    partial = directory / (CHECKPOINT_WEIGHTS + ".partial")
    save_file(tensors, str(partial), metadata={"epoch": str(epoch)})
    os.replace(partial, directory / CHECKPOINT_WEIGHTS)
    partial_json = directory / (CHECKPOINT_STATE + ".partial")
    partial_json.write_text(json.dumps(state_json))
    os.replace(partial_json, directory / CHECKPOINT_STATE)


def load_checkpoint(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor], int]:
    """Restore the model and optimiser; the history, best weights and the next epoch."""
    state_json = json.loads((directory / CHECKPOINT_STATE).read_text())
    device = next(model.parameters()).device
    weights_path = directory / CHECKPOINT_WEIGHTS
    with safe_open(str(weights_path), framework="pt") as handle:
        weights_epoch = int((handle.metadata() or {}).get("epoch", -1))
    if weights_epoch != state_json["epoch"]:
        # the run stopped between the two writes: the weights are one epoch ahead
        raise RuntimeError(
            f"checkpoint in {directory} is inconsistent (weights of epoch {weights_epoch}, "
            f"state of epoch {state_json['epoch']}); delete it and train from scratch"
        )
    tensors = load_file(str(weights_path), device=str(device))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    optimizer_state: dict[str, Any] = {"state": {}, "param_groups": state_json["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            value = value.cpu() if name == "step" else value  # Adam keeps `step` on the CPU
            optimizer_state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(optimizer_state)
    return state_json["history"], best_state, int(state_json["epoch"]) + 1
