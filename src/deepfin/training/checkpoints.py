"""Training checkpoints: safetensors weights and a JSON state, each written atomically.

Both go through `runs.atomic` (never through a symlink). The state, written second, records
the weights' sha256, so resuming refuses weights changed or swapped since; checkpoints of
earlier versions (no sha256) still resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from deepfin.errors import RunFolderError
from deepfin.runs.atomic import read_bytes, sha256, write_file, write_text
from deepfin.runs.weights import parse_weights

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
    digest = write_file(
        directory / CHECKPOINT_WEIGHTS,
        lambda path: save_file(tensors, str(path), metadata={"epoch": str(epoch)}),
    )
    write_text(directory / CHECKPOINT_STATE, json.dumps({**state_json, "weights_sha256": digest}))


def load_checkpoint(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor], int]:
    """Restore the model and optimiser; the history, best weights and the next epoch."""
    state_path, weights_path = directory / CHECKPOINT_STATE, directory / CHECKPOINT_WEIGHTS
    try:
        state_json = json.loads(read_bytes(state_path))
    except ValueError:
        raise RunFolderError(
            f"{state_path} is not valid JSON; delete {directory} and train from scratch"
        ) from None
    device = next(model.parameters()).device
    data = read_bytes(weights_path)
    weights = parse_weights(weights_path, data)
    weights_epoch = weights.metadata.get("epoch", "-1")
    if weights_epoch != str(state_json.get("epoch")):
        # the run stopped between the two writes: the weights are one epoch ahead
        raise RunFolderError(
            f"checkpoint in {directory} is inconsistent (weights of epoch {weights_epoch}, "
            f"state of epoch {state_json.get('epoch')}); delete it and train from scratch"
        )
    if state_json.get("weights_sha256", sha256(data)) != sha256(data):
        raise RunFolderError(
            f"{weights_path} was changed after the checkpoint was written (sha256 differs); "
            f"delete {directory} and train from scratch"
        )
    tensors = {name: value.to(device) for name, value in weights.tensors().items()}
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as error:
        raise RunFolderError(
            f"the checkpoint in {directory} is of another model ({str(error).splitlines()[0]}); "
            "resume with the settings the run was started with, or delete it"
        ) from None
    best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    optimizer_state: dict[str, Any] = {"state": {}, "param_groups": state_json["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            value = value.cpu() if name == "step" else value  # Adam keeps `step` on the CPU
            optimizer_state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(optimizer_state)
    return state_json["history"], best_state, int(state_json["epoch"]) + 1
