"""all-MiniLM-L6-v2 with a class head: frozen sentence embeddings, or the whole encoder tuned.

The encoder (6 layers, 384 wide, 22.7M parameters) maps a sentence to the L2-normalised mean
of its token states, exactly as sentence-transformers does; a linear head reads the classes
off that embedding. The pretrained weights come from `pretrained.minilm_files`, loaded by
`load_pretrained` (a module built otherwise holds random weights, as a saved run's skeleton).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.tabular.logistic import check_dropout
from deepfin.models.text.encoder import SentenceEmbedding
from deepfin.models.text.pretrained import MINILM, bert_state, minilm_files


@dataclass(frozen=True)
class MiniLMConfig:
    """The head's classes, and how the pretrained encoder is trained (or not)."""

    pretrained_vocab_size: ClassVar[int] = MINILM.vocab_size  # n_features must be this

    n_features: int  # the vocabulary: the pretrained tokenizer's 30,522 WordPiece tokens
    n_classes: int  # 1: a score
    fine_tune: bool = False  # False: the encoder stays as pretrained, only the head learns
    dropout: float = 0.1  # on the encoder's layers (when tuned) and the sentence embedding
    layer_decay: float = 1.0  # a layer learns at this times the rate of the layer above it

    def __post_init__(self) -> None:
        if self.n_features != MINILM.vocab_size:
            raise ConfigError(
                f"minilm: the vocabulary is the pretrained tokenizer's {MINILM.vocab_size} "
                f"tokens; got n_features={self.n_features}"
            )
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ConfigError(f"minilm: n_classes must be an integer; got {self.n_classes!r}")
        if self.n_classes < 1:
            raise ConfigError(
                f"minilm: n_classes must be at least 1 (a score); got {self.n_classes}"
            )
        if not isinstance(self.fine_tune, bool):
            raise ConfigError(f"minilm: fine_tune must be true or false; got {self.fine_tune!r}")
        check_dropout("minilm", self.dropout)
        decay = self.layer_decay
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay <= 1:
            raise ConfigError(f"minilm: layer_decay must be in (0, 1]; got {decay!r}")


class ScaledHead(nn.Module):
    """Logits (B, C) of unit-length embeddings (B, H), read at norm sqrt(H).

    At unit length a logit is at most the weights' norm, which a small fine-tuning rate grows
    only slowly; scaled, the coordinates are of order one. The scale is part of the head, so
    a head trained alone on stored embeddings predicts as the whole model does.
    """

    def __init__(self, hidden: int, n_outputs: int) -> None:
        super().__init__()
        self.scale = hidden**0.5
        self.linear = nn.Linear(hidden, n_outputs)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of embeddings (B, H)."""
        return self.linear(embedding * self.scale)


class MiniLMClassifier(nn.Module):
    """Token ids and masks (B, L) to class logits (B, C) through the MiniLM sentence embedding."""

    embedding: SentenceEmbedding

    def __init__(self, config: MiniLMConfig) -> None:
        super().__init__()
        self.config = config
        sizes = dataclasses.replace(MINILM, dropout=config.dropout)
        self.embedding = SentenceEmbedding(sizes, normalize=True)
        self.head = ScaledHead(MINILM.hidden, config.n_classes)
        self.embedding.requires_grad_(config.fine_tune)

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C) of token ids (B, L) and their mask (B, L)."""
        embedding = self.embedding(token_ids, mask)  # (B, L) -> (B, H), unit length
        return self.head(F.dropout(embedding, self.config.dropout, self.training))

    @staticmethod
    def pretrained_tokenizer() -> Path:
        """The encoder's own WordPiece tokenizer (tokenizer.json, SHA-256 checked)."""
        return minilm_files().tokenizer

    def load_pretrained(self) -> None:
        """Set the encoder to the published all-MiniLM-L6-v2 weights (SHA-256 checked)."""
        self.embedding.encoder.load_state_dict(bert_state(minilm_files().weights))

    def parameter_groups(self, learning_rate: float) -> list[dict[str, Any]]:
        """Optimiser groups: the head and top layer at `learning_rate`, each layer below at
        `layer_decay` times the one above, the embeddings below the lowest layer."""
        encoder = self.embedding.encoder
        decay, layers = self.config.layer_decay, len(encoder.layers)
        groups: list[dict[str, Any]] = [
            {"params": list(self.head.parameters()), "lr": learning_rate}
        ]
        for depth, layer in enumerate(reversed(encoder.layers)):
            groups.append({"params": list(layer.parameters()), "lr": learning_rate * decay**depth})
        below = [p for name, p in encoder.named_parameters() if not name.startswith("layers.")]
        groups.append({"params": below, "lr": learning_rate * decay**layers})
        trainable = [any(p.requires_grad for p in group["params"]) for group in groups]
        return [group for group, keep in zip(groups, trainable, strict=True) if keep]
