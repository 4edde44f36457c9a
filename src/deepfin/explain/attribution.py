"""Feature attributions that add up: integrated gradients, grouping, reason codes, importance."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import polars as pl
import torch
from torch import nn


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    reference: torch.Tensor,
    *,
    steps: int = 32,
    rows_per_batch: int = 256,
) -> np.ndarray:
    """Attributions (N, F) of the model's output to each input; they sum to f(x) - f(reference)."""
    alphas, node_weights = (
        torch.tensor(values, dtype=inputs.dtype) for values in _path_nodes(steps)
    )
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(inputs), rows_per_batch):
        x = inputs[start : start + rows_per_batch]  # (B, F)
        delta = x - reference  # (B, F)
        path = reference + alphas[:, None, None] * delta  # (S, 1, 1) * (B, F) -> (S, B, F)
        path = path.reshape(-1, x.shape[1]).requires_grad_(True)  # (S*B, F)
        (gradient,) = torch.autograd.grad(model(path).sum(), path)
        gradient = gradient.reshape(steps, len(x), -1)  # (S*B, F) -> (S, B, F)
        mean_gradient = (node_weights[:, None, None] * gradient).sum(0)  # (B, F)
        chunks.append((delta * mean_gradient).detach())
    model.train(was_training)
    if not chunks:
        return np.zeros((0, inputs.shape[1]))
    return torch.cat(chunks).double().numpy()


@functools.cache
def _path_nodes(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (S,) on [0, 1] and their weights (summing to 1): the path integral
    of a smooth net is exact to many digits in 32 steps."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1) / 2, weights / 2


def group_columns(attributions: np.ndarray, sources: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Sum attributions of encoded columns (one-hot levels, missing flags) per input column."""
    names = list(dict.fromkeys(sources))
    index = np.array([names.index(source) for source in sources])
    grouped = np.zeros((attributions.shape[0], len(names)))
    np.add.at(grouped.T, index, attributions.T)  # grouped[:, j] += attributions[:, i]
    return grouped, names


def reason_codes(attributions: np.ndarray, names: Sequence[str], *, top_k: int = 3) -> pl.DataFrame:
    """Per row, the `top_k` columns raising and lowering the default log-odds most, with effects."""
    order = np.argsort(-attributions, axis=1, kind="stable")  # largest risk increase first
    columns: dict[str, list[object]] = {}
    for direction, ranked in (("increases", order), ("decreases", order[:, ::-1])):
        for rank in range(min(top_k, len(names))):
            position = ranked[:, rank]
            effect = attributions[np.arange(len(attributions)), position]
            keep = effect > 0 if direction == "increases" else effect < 0
            label = [names[p] if k else None for p, k in zip(position, keep, strict=True)]
            columns[f"{direction}_risk_{rank + 1}"] = label
            columns[f"{direction}_risk_{rank + 1}_log_odds"] = [
                float(e) if k else None for e, k in zip(effect, keep, strict=True)
            ]
    return pl.DataFrame(columns)


def global_importance(attributions: np.ndarray, names: Sequence[str]) -> list[dict[str, object]]:
    """Mean absolute attribution per column and its share of the total, most important first."""
    mean_abs = np.abs(attributions).mean(axis=0) if len(attributions) else np.zeros(len(names))
    total = float(mean_abs.sum()) or 1.0
    order = np.argsort(-mean_abs, kind="stable")
    return [
        {"feature": names[i], "mean_abs_log_odds": float(mean_abs[i]), "share": mean_abs[i] / total}
        for i in order
    ]


def token_attributions(
    model: nn.Module,
    token_ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    output: int,
    steps: int = 32,
) -> np.ndarray:
    """Integrated gradients (L,) of one text's output `output` to each of its tokens (1, L).

    The path runs from zero token embeddings to the text's own through the model's token
    embedding table (the nn.Embedding as wide as its vocabulary), replaced on the way by a
    forward hook; positions and the rest stay as they are. The attributions sum to
    f(text) - f(zero embeddings).
    """
    table = token_table(model)
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        embedded = table(token_ids)  # (1, L) -> (1, L, E)
    alphas = torch.tensor((nodes + 1) / 2, dtype=embedded.dtype)[:, None, None]  # (S, 1, 1)
    path = (alphas * embedded).requires_grad_(True)  # (S, L, E)
    handle = table.register_forward_hook(lambda module, inputs, out: path)
    try:
        outputs = model(token_ids.expand(steps, -1), mask.expand(steps, -1))  # (S, C)
        (gradient,) = torch.autograd.grad(outputs[:, output].sum(), path)
    finally:
        handle.remove()
        model.train(was_training)
    node_weights = torch.tensor(weights / 2, dtype=embedded.dtype)[:, None, None]
    mean_gradient = (node_weights * gradient).sum(0)  # (S, L, E) -> (L, E)
    return (embedded[0] * mean_gradient).sum(-1).detach().double().numpy()


def token_table(model: nn.Module) -> nn.Embedding:
    """The model's token embedding table: the nn.Embedding with one row per vocabulary entry."""
    vocabulary = getattr(getattr(model, "config", None), "n_features", None)
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.num_embeddings == vocabulary:
            return module
    raise TypeError(f"{type(model).__name__} has no token embedding of {vocabulary} rows")
