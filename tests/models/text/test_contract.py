"""The contract every trained text model keeps: shapes, gradients, learning, padding, seeds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepfin.models import MODELS, build_text_model, hyperparameters, model_names

TOKEN_MODELS = model_names("text", fit="gradient")
BATCH, LENGTH, N_CLASSES = 6, 9, 3


def make(name: str, seed: int = 0, **params: object) -> nn.Module:
    torch.manual_seed(seed)
    vocabulary = getattr(MODELS[name].config, "pretrained_vocab_size", 50)
    if "fine_tune" in hyperparameters(name):
        params.setdefault("fine_tune", True)  # the whole encoder is under contract
    return build_text_model(name, n_features=vocabulary, n_classes=N_CLASSES, params=params)


def tokens(seed: int = 0, vocabulary: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids (B, L) with a mask of rows of different lengths (each >= 2)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocabulary, (BATCH, LENGTH), generator=generator)
    lengths = torch.tensor([9, 2, 5, 7, 3, 9])
    mask = torch.arange(LENGTH)[None, :] < lengths[:, None]
    return ids.masked_fill(~mask, 0), mask


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_logits_have_one_row_per_text_and_padding_changes_nothing(name: str) -> None:
    model = make(name).eval()
    ids, mask = tokens()
    logits = model(ids, mask)
    assert logits.shape == (BATCH, N_CLASSES) and logits.dtype == torch.float32
    padded_ids = torch.cat([ids, torch.zeros(BATCH, 4, dtype=ids.dtype)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(BATCH, 4, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(padded_ids, padded_mask), logits, atol=1e-5, rtol=1e-5)
    alone = model(ids[1:2, :2], mask[1:2, :2])  # a text in a batch of its own
    torch.testing.assert_close(alone, logits[1:2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_gradients_reach_every_parameter(name: str) -> None:
    model = make(name)
    ids, mask = tokens()
    model(ids, mask).pow(2).mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}.{param_name} got no gradient"


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_overfits_one_small_batch_and_a_seed_fixes_the_weights(name: str) -> None:
    model = make(name, dropout=0.0)
    steps = 100
    if hasattr(model, "load_pretrained"):  # 22.7M weights: from the published ones, sooner
        model.load_pretrained()
        steps = 25
    ids, mask = tokens()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(ids, mask), labels)
        loss.backward()
        optimizer.step()
    assert (model(ids, mask).argmax(1) == labels).all()
    for (key, left), right in zip(
        make(name, seed=1).state_dict().items(), make(name, seed=1).state_dict().values(),
        strict=True,
    ):  # fmt: skip
        assert torch.equal(left, right), key
