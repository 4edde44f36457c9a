"""A transformer encoder trained from scratch on the task's texts, mean-pooled, with a head.

The encoder of `encoder.py` (learned token and position embeddings, scaled dot-product
self-attention layers) at a size a few thousand labelled texts can train; its vocabulary is
the WordPiece tokenizer learned from the training texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.text.encoder import EncoderSizes, SentenceEmbedding

MAX_POSITIONS = 512


@dataclass(frozen=True)
class TextTransformerConfig:
    """Vocabulary, classes and the encoder's size."""

    n_features: int  # the vocabulary of the tokenizer learned from the training texts
    n_classes: int  # 1: a score
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ConfigError(
                f"text_transformer: n_classes must be an integer; got {self.n_classes!r}"
            )
        if self.n_classes < 1:
            raise ConfigError(
                f"text_transformer: n_classes must be >= 1 (1: a score); got {self.n_classes}"
            )
        self.sizes.check("text_transformer")

    @property
    def sizes(self) -> EncoderSizes:
        """The encoder's shape."""
        return EncoderSizes(
            vocab_size=self.n_features,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            intermediate=self.intermediate,
            max_positions=MAX_POSITIONS,
            dropout=self.dropout,
            norm_eps=1e-5,
        )


class TextTransformer(nn.Module):
    """Token ids and masks (B, L) to class logits (B, C): encoder, mean of the tokens, head."""

    def __init__(self, config: TextTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = SentenceEmbedding(config.sizes, normalize=False)
        self.head = nn.Linear(config.hidden, config.n_classes)

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C) of token ids (B, L) and their mask (B, L)."""
        pooled = self.embedding(token_ids, mask)  # (B, L) -> (B, H)
        return self.head(F.dropout(pooled, self.config.dropout, self.training))
