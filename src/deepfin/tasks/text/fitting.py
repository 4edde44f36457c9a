"""Training a token model in the one training loop, and its logits for any texts.

A model whose encoder is frozen (pretrained sentence embeddings and a head) has every text
embedded once; only the head then trains, on the embeddings. A tuned or from-scratch model
trains end to end on token rows, each batch cut to its longest text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepfin.data.batches import TensorRows
from deepfin.data.text.tokens import TextTokenizer, TokenIds, TokenRows
from deepfin.errors import ConfigError
from deepfin.training import History, TrainingConfig, fit_model, select_device
from deepfin.training.evaluation import LossFunction, outputs_and_targets

log = logging.getLogger(__name__)


def cross_entropy(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (B, C) against class codes (B,) (floats in evaluation)."""
    return F.cross_entropy(logits, codes.long())


def score_loss(outputs: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Mean squared error of predicted scores (B, 1) against the scores (B,)."""
    return F.mse_loss(outputs[:, 0], scores.float())


def frozen_embedding(model: nn.Module) -> nn.Module | None:
    """The model's sentence `embedding` when it is fixed (only its `head` learns), else None."""
    embedding = getattr(model, "embedding", None)
    if not isinstance(embedding, nn.Module) or not isinstance(
        getattr(model, "head", None), nn.Module
    ):
        return None
    return None if any(p.requires_grad for p in embedding.parameters()) else embedding


def start_weights(model: nn.Module, start: nn.Module, described: object) -> None:
    """Set every weight of `model` outside its `head` to `start`'s (a network of the same
    shape, trained for other labels); the head keeps its fresh initial weights."""
    theirs = {k: v for k, v in start.state_dict().items() if not k.startswith("head.")}
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    unlike = sorted(
        key
        for key in ours.keys() | theirs.keys()
        if key not in ours or key not in theirs or ours[key].shape != theirs[key].shape
    )
    if unlike:
        raise ConfigError(
            f"start_from {described} holds a network of other sizes ({', '.join(unlike[:3])} "
            "differ); give the same model parameters as that run, or start afresh"
        )
    model.load_state_dict(theirs, strict=False)


def fit_token_model(
    model: nn.Module,
    train: TokenIds,
    train_codes: np.ndarray,
    val: tuple[TokenIds, np.ndarray] | None,
    *,
    training: TrainingConfig,
    loss_fn: LossFunction = cross_entropy,
) -> History:
    """Train `model` (token ids and masks -> logits or a score) in place; `val` chooses the
    kept epoch."""
    targets = torch.from_numpy(train_codes)
    score = None if val is None else validation_score(val[1], loss_fn)
    embedding = frozen_embedding(model)
    if embedding is not None:
        device = select_device(training.device)
        rows = TensorRows(by_length(embedding, train, device), targets)
        val_rows = None
        if val is not None:
            val_rows = TensorRows(by_length(embedding, val[0], device), torch.from_numpy(val[1]))
        head: nn.Module = model.head  # type: ignore[assignment]
        return fit_model(head, rows, val_rows, loss_fn=loss_fn, config=training, val_score=score)
    val_tokens = None if val is None else TokenRows(val[0], torch.from_numpy(val[1]))
    return fit_model(
        model,
        TokenRows(train, targets),
        val_tokens,
        loss_fn=loss_fn,
        config=training,
        val_score=score,
    )


def validation_score(
    targets: np.ndarray, loss_fn: LossFunction
) -> Callable[[torch.Tensor], float] | None:
    """What chooses the kept epoch of a class model: validation accuracy (a fine-tuned
    encoder grows overconfident, so its validation loss rises while it still gets more texts
    right), the loss breaking ties; a score model keeps its lowest validation loss."""
    if loss_fn is not cross_entropy:
        return None
    codes = torch.from_numpy(targets)

    def score(outputs: torch.Tensor) -> float:
        accuracy = float((outputs.argmax(1) == codes).double().mean())
        return accuracy - 1e-6 * float(cross_entropy(outputs, codes))

    return score


def by_length(
    model: nn.Module, tokens: TokenIds, device: torch.device | None = None
) -> torch.Tensor:
    """The model's outputs (N, O) for token rows, in batches of texts sorted by length (little
    padding), returned in the rows' own order."""
    if device is not None:
        model.to(device)
    rows = TokenRows(tokens, torch.zeros(len(tokens.ids)))
    order = rows.by_length()
    outputs, _ = outputs_and_targets(model, rows, order)
    unsorted = torch.empty_like(outputs)
    unsorted[order] = outputs
    return unsorted


def encode(tokenizer: TextTokenizer, texts: list[str], *, max_tokens: int) -> TokenIds:
    """Token ids of `texts`, with a warning naming how many were cut to `max_tokens`."""
    tokens = tokenizer.encode(texts, max_tokens=max_tokens)
    if tokens.truncated:
        log.warning(
            "%d of %d text(s) are longer than %d tokens and were cut to that length; raise "
            "max_tokens (at most the encoder's positions) to read more of them",
            tokens.truncated,
            len(texts),
            max_tokens,
        )
    return tokens
