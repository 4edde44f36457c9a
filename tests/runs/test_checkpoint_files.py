"""A checkpoint's state records its weights' sha256; resuming refuses weights changed since."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from deepfin.errors import RunFolderError
from deepfin.training.checkpoints import (
    CHECKPOINT_STATE,
    CHECKPOINT_WEIGHTS,
    load_checkpoint,
    save_checkpoint,
)


def _saved(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    best = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path, model, optimizer, best, {"epochs": []}, epoch=2)
    return model


def _fresh():
    model = nn.Linear(3, 1)
    return model, torch.optim.Adam(model.parameters())


def test_a_checkpoint_resumes_with_the_weights_it_recorded(tmp_path):
    saved = _saved(tmp_path)
    state = json.loads((tmp_path / CHECKPOINT_STATE).read_text())
    assert len(state["weights_sha256"]) == 64
    model, optimizer = _fresh()
    _, best, next_epoch = load_checkpoint(tmp_path, model, optimizer)
    assert next_epoch == 3 and torch.equal(model.weight, saved.weight)
    assert torch.equal(best["weight"], saved.weight)


def test_weights_changed_after_the_checkpoint_are_refused(tmp_path):
    _saved(tmp_path)
    path = tmp_path / CHECKPOINT_WEIGHTS
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40  # a weight's last byte: still a valid file of the same epoch
    path.write_bytes(bytes(data))
    with pytest.raises(RunFolderError, match="changed after the checkpoint was written"):
        load_checkpoint(tmp_path, *_fresh())


def test_a_checkpoint_of_an_earlier_version_still_resumes(tmp_path):
    _saved(tmp_path)
    state = json.loads((tmp_path / CHECKPOINT_STATE).read_text())
    del state["weights_sha256"]
    (tmp_path / CHECKPOINT_STATE).write_text(json.dumps(state))
    assert load_checkpoint(tmp_path, *_fresh())[2] == 3


def test_a_truncated_checkpoint_or_another_model_is_a_clean_error(tmp_path):
    _saved(tmp_path)
    model = nn.Linear(5, 1)  # resumed with other settings
    with pytest.raises(RunFolderError, match="is of another model"):
        load_checkpoint(tmp_path, model, torch.optim.Adam(model.parameters()))
    (tmp_path / CHECKPOINT_WEIGHTS).write_bytes(b"")
    with pytest.raises(RunFolderError, match="not a valid safetensors file"):
        load_checkpoint(tmp_path, *_fresh())
    (tmp_path / CHECKPOINT_STATE).write_text('{"epoch": ')
    with pytest.raises(RunFolderError, match="not valid JSON"):
        load_checkpoint(tmp_path, *_fresh())
