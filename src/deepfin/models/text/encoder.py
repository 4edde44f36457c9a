"""A BERT-style text encoder: token and position embeddings, post-norm self-attention layers.

The layout of BERT (Devlin et al. 2019) and of the sentence encoders built on it, so that
pretrained weights load into it name by name (`pretrained.bert_state`); the from-scratch text
transformer is the same encoder at smaller sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.tabular.logistic import check_dropout, check_positive_ints


@dataclass(frozen=True)
class EncoderSizes:
    """The shape of an encoder: vocabulary, width, depth, heads, feed-forward width."""

    vocab_size: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    dropout: float = 0.1
    norm_eps: float = 1e-12

    def check(self, model: str) -> None:
        """Raise ConfigError unless the sizes make an encoder."""
        check_positive_ints(
            model,
            vocab_size=self.vocab_size,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            intermediate=self.intermediate,
            max_positions=self.max_positions,
        )
        check_dropout(model, self.dropout)
        if self.hidden % self.heads:
            raise ConfigError(
                f"{model}: hidden={self.hidden} must be divisible by heads={self.heads}"
            )


class EncoderLayer(nn.Module):
    """x = norm(x + attention(x)); x = norm(x + feed_forward(x)), as BERT does."""

    def __init__(self, sizes: EncoderSizes) -> None:
        super().__init__()
        self.heads = sizes.heads
        self.dropout = sizes.dropout
        self.qkv = nn.Linear(sizes.hidden, 3 * sizes.hidden)  # query, key, value in one matmul
        self.attention_out = nn.Linear(sizes.hidden, sizes.hidden)
        self.attention_norm = nn.LayerNorm(sizes.hidden, eps=sizes.norm_eps)
        self.feed_in = nn.Linear(sizes.hidden, sizes.intermediate)
        self.feed_out = nn.Linear(sizes.intermediate, sizes.hidden)
        self.feed_norm = nn.LayerNorm(sizes.hidden, eps=sizes.norm_eps)

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        """Map token states (B, L, H) to new states (B, L, H); `attend` (B, 1, 1, L) is True on
        the tokens (not padding) every token may attend to; None: every token."""
        batch, length, hidden = x.shape
        dropout = self.dropout if self.training else 0.0
        qkv = self.qkv(x).view(batch, length, 3, self.heads, hidden // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, L, H / heads)
        mixed = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attend, dropout_p=dropout
        )
        mixed = mixed.transpose(1, 2).reshape(batch, length, hidden)  # -> (B, L, H)
        x = self.attention_norm(x + F.dropout(self.attention_out(mixed), dropout, self.training))
        feed = self.feed_out(F.gelu(self.feed_in(x)))
        return self.feed_norm(x + F.dropout(feed, dropout, self.training))


class TextEncoder(nn.Module):
    """Token ids (B, L) and their mask (B, L) to token states (B, L, H)."""

    def __init__(self, sizes: EncoderSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.tokens = nn.Embedding(sizes.vocab_size, sizes.hidden)
        self.positions = nn.Embedding(sizes.max_positions, sizes.hidden)
        self.embedding_norm = nn.LayerNorm(sizes.hidden, eps=sizes.norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(sizes) for _ in range(sizes.layers))
        self.apply(_init_bert)

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token states (B, L, H) of token ids (B, L); `mask` (B, L) is True on real tokens."""
        length = token_ids.shape[1]
        if length > self.sizes.max_positions:
            raise ValueError(
                f"{length} tokens exceed the encoder's {self.sizes.max_positions} positions"
            )
        positions = torch.arange(length, device=token_ids.device)
        x = self.tokens(token_ids) + self.positions(positions)  # (B, L, H) + (L, H)
        x = F.dropout(self.embedding_norm(x), self.sizes.dropout, self.training)
        # (B, L) -> (B, 1, 1, L): the keys each query may attend to; with no padding at all
        # (a single text, or texts of one length) no mask, so attention takes its fused kernel
        attend = None if bool(mask.all()) else mask[:, None, None, :].bool()
        for layer in self.layers:
            x = layer(x, attend)
        return x


class SentenceEmbedding(nn.Module):
    """Token ids and mask (B, L) to one vector per text (B, H): the mean of its token states,
    scaled to unit length when `normalize` (as cosine-similarity sentence encoders are)."""

    encoder: TextEncoder

    def __init__(self, sizes: EncoderSizes, *, normalize: bool) -> None:
        super().__init__()
        self.encoder = TextEncoder(sizes)
        self.normalize = normalize

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings (B, H) of token ids (B, L) and their mask (B, L)."""
        pooled = mean_pool(self.encoder(token_ids, mask), mask)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' states (B, L, H) -> (B, H): a sentence embedding."""
    weights = mask.unsqueeze(-1).to(states.dtype)  # (B, L) -> (B, L, 1)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _init_bert(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit layer norms."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
