"""A config.json's model sizes are checked against the weights' header before anything is built."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from deepfin import load_run
from deepfin.errors import RunFolderError
from deepfin.models import (
    MODELS,
    build_image_model,
    build_model,
    build_tabular_model,
    build_text_model,
)
from deepfin.runs.weights import parse_weights
from tests.runs.conftest import edit_config, rehash


def test_a_hidden_size_the_weights_do_not_have_is_refused_before_it_is_allocated(copy_of):
    run = copy_of("lstm")
    edit_config(run, model_config__hidden_size=40000)  # ~25 GB if it were built
    began = time.perf_counter()
    with pytest.raises(RunFolderError, match=r"tensor model\.lstm\.weight_ih_l0 has shape \[32, "):
        load_run(run)
    assert time.perf_counter() - began < 5


def test_a_huge_number_of_layers_is_refused_at_once(copy_of):
    run = copy_of("lstm")
    edit_config(run, model_config__num_layers=200000)  # minutes to build, even on "meta"
    began = time.perf_counter()
    with pytest.raises(RunFolderError, match=r"far more tensors than the \d+ under 'model\.'"):
        load_run(run)
    assert time.perf_counter() - began < 5


def test_a_few_more_layers_name_the_missing_tensor(copy_of):
    run = copy_of("lstm")
    edit_config(run, model_config__num_layers=2)
    with pytest.raises(RunFolderError, match=r"lacks tensor model\.lstm\.weight_ih_l1"):
        load_run(run)


def test_buffers_rebuilt_from_the_config_are_bounded_too(copy_of):
    """The transformer's positions are not stored: a huge lookback would only show when built."""
    run = copy_of("transformer")
    edit_config(run, model_config__lookback=10**9)  # 32 GB of positions, no weight changes
    with pytest.raises(RunFolderError, match=r"describes a model of \d+\.\d GiB"):
        load_run(run)


def test_the_linear_baseline_sizes_are_checked_as_well(copy_of):
    run = copy_of("linear")
    edit_config(run, linear_config__n_features=4000)
    with pytest.raises(RunFolderError, match=r"tensor linear\.linear\.weight has shape"):
        load_run(run)


def test_a_credit_network_is_checked_the_same_way(copy_of):
    run = copy_of("logistic")
    edit_config(run, model_config__n_features=10**6)
    with pytest.raises(RunFolderError, match=r"has shape .* but the model_config"):
        load_run(run)


def _header(data: bytes) -> tuple[int, dict]:
    length = int.from_bytes(data[:8], "little")
    return length, json.loads(data[8 : 8 + length])


def _broken_files(data: bytes) -> dict[str, bytes]:
    length, header = _header(data)
    dropped = dict(header)
    dropped.pop(next(name for name in header if name != "__metadata__"))
    body = json.dumps(dropped).encode()
    return {
        "empty": b"",
        "seven bytes": data[:7],
        "truncated header": data[: 8 + length // 2],
        "truncated tensors": data[:-4],
        "header length past the end": (len(data) + 1).to_bytes(8, "little") + data[8:],
        "header not JSON": length.to_bytes(8, "little") + b"\xff" * length + data[8 + length :],
        "header a list": (2).to_bytes(8, "little") + b"[]",
        "a tensor missing": len(body).to_bytes(8, "little") + body + data[8 + length :],
    }


BROKEN = (
    "empty",
    "seven bytes",
    "truncated header",
    "truncated tensors",
    "header length past the end",
    "header not JSON",
    "header a list",
    "a tensor missing",
)


@pytest.mark.parametrize("case", BROKEN)
def test_broken_weights_are_a_clean_error_even_with_their_hash_updated(copy_of, case):
    run = copy_of("lstm")
    path = run / "model.safetensors"
    path.write_bytes(_broken_files(path.read_bytes())[case])
    rehash(run)
    with pytest.raises(RunFolderError, match=r"model\.safetensors"):
        load_run(run)


def _small(name: str) -> torch.nn.Module:
    if MODELS[name].task == "forecast":
        return build_model(name, n_features=3, lookback=6, n_outputs=2)
    if MODELS[name].task == "text":
        vocabulary = getattr(MODELS[name].config, "pretrained_vocab_size", 3)
        outputs = 1 if name == "tfidf_ridge" else 4  # the ridge gives one score
        return build_text_model(name, n_features=vocabulary, n_classes=outputs)
    if MODELS[name].task == "image":
        return build_image_model(name, in_channels=1, height=32, width=15, n_classes=2)
    module = build_tabular_model(name, n_features=3)
    assert isinstance(module, torch.nn.Module)
    return module


# networks with weights: trees are saved in LightGBM's format, risk models hold a few numbers
WEIGHTED = [
    name
    for name, entry in MODELS.items()
    if entry.fit != "trees" and issubclass(entry.module, torch.nn.Module)
]


@pytest.mark.parametrize("name", WEIGHTED)
def test_every_registered_network_round_trips_through_the_checked_loader(name):
    torch.manual_seed(0)
    model = _small(name)
    for value in model.state_dict().values():
        value.copy_(torch.randn_like(value.float()).to(value.dtype))
    data = save({f"model.{k}": v.contiguous() for k, v in model.state_dict().items()})
    loaded = parse_weights(Path("model.safetensors"), data).module(
        "model", lambda: _small(name), described="test config"
    )
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
