"""The long- and short-memory hybrid over a text: an LSTM reads every token, a GRU the last few.

The forecasting hybrid's two paths, over token embeddings instead of days: the LSTM's final
state summarises the whole text, the GRU's the closing tokens (where a headline's verdict or a
message's request often sits); a linear layer fuses the two into class logits. Padding is
skipped (packed sequences), so a batch's padding changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from deepfin.errors import ConfigError
from deepfin.models.tabular.logistic import check_dropout, check_positive_ints


@dataclass(frozen=True)
class TextHybridConfig:
    """Vocabulary, classes, widths and how many closing tokens the short path reads."""

    n_features: int  # the vocabulary of the tokenizer learned from the training texts
    n_classes: int  # 1: a score
    embedding_size: int = 128
    hidden_size: int = 128  # per path
    short_tokens: int = 16
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_positive_ints(
            "text_hybrid",
            n_features=self.n_features,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            short_tokens=self.short_tokens,
        )
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ConfigError(f"text_hybrid: n_classes must be an integer; got {self.n_classes!r}")
        if self.n_classes < 1:
            raise ConfigError(
                f"text_hybrid: n_classes must be >= 1 (1: a score); got {self.n_classes}"
            )
        check_dropout("text_hybrid", self.dropout)


class TextHybrid(nn.Module):
    """Token ids and masks (B, L) to class logits (B, C) through a long and a short path."""

    def __init__(self, config: TextHybridConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.n_features, config.embedding_size)
        self.long = nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True)
        self.short = nn.GRU(config.embedding_size, config.hidden_size, batch_first=True)
        self.head = nn.Linear(2 * config.hidden_size, config.n_classes)

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C) of token ids (B, L) and their mask (B, L)."""
        dropout = self.config.dropout if self.training else 0.0
        x = F.dropout(self.tokens(token_ids), dropout)  # (B, L) -> (B, L, E)
        lengths = mask.sum(1).clamp(min=1)  # (B,)
        _, (long_state, _) = self.long(_packed(x, lengths))
        # the last `short_tokens` real tokens, moved to the front of each row: (B, S, E)
        width = min(self.config.short_tokens, x.shape[1])
        first = (lengths - width).clamp(min=0)  # (B,)
        positions = first[:, None] + torch.arange(width, device=x.device)  # (B, S)
        positions = positions.clamp(max=x.shape[1] - 1)
        closing = torch.gather(x, 1, positions[:, :, None].expand(-1, -1, x.shape[2]))
        _, short_state = self.short(_packed(closing, lengths.clamp(max=width)))
        fused = torch.cat([long_state[-1], short_state[-1]], dim=1)  # (B, 2H)
        return self.head(F.dropout(fused, dropout))


def _packed(x: torch.Tensor, lengths: torch.Tensor) -> nn.utils.rnn.PackedSequence:
    """Rows (B, L, E) as a packed sequence of their first `lengths` steps."""
    return pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
