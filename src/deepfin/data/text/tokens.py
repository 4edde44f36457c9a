"""Texts as token ids with masks: a WordPiece tokenizer (the `tokenizers` package), pretrained
or trained on the training texts only, and the token rows the training loop batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from deepfin.errors import DataError, RunFolderError

log = logging.getLogger(__name__)
PAD, UNKNOWN, START, END = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIAL = [PAD, UNKNOWN, START, END, "[MASK]"]


@dataclass(frozen=True)
class TokenIds:
    """Token ids (N, L) int64 padded with the pad id, the mask (N, L) of real tokens, and how
    many texts were cut to fit the length limit."""

    ids: torch.Tensor
    mask: torch.Tensor
    truncated: int


class TextTokenizer:
    """Lower-cased WordPiece tokens between [CLS] and [SEP], cut at a length limit."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        missing = [token for token in (PAD, START, END) if tokenizer.token_to_id(token) is None]
        if missing:
            raise RunFolderError(f"the tokenizer lacks the special tokens {missing}")
        tokenizer.no_padding()  # padded here, to each batch's longest text
        self.tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: Path) -> TextTokenizer:
        """The tokenizer saved at `path` (a tokenizer.json)."""
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # tokenizers raises its own Exception for a bad file
            raise RunFolderError(f"{path} is not a readable tokenizer.json ({error})") from error

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        """The tokenizer whose tokenizer.json is `text`."""
        try:
            return cls(Tokenizer.from_str(text))
        except Exception as error:  # tokenizers raises its own Exception for a bad file
            raise RunFolderError(f"the run's tokenizer.json is not readable ({error})") from error

    @classmethod
    def train(cls, texts: list[str], *, vocab_size: int, min_frequency: int = 2) -> TextTokenizer:
        """A WordPiece vocabulary of at most `vocab_size` tokens learned from `texts` alone."""
        tokenizer = Tokenizer(WordPiece(unk_token=UNKNOWN))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=SPECIAL,
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        start, end = tokenizer.token_to_id(START), tokenizer.token_to_id(END)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{START} $A {END}", special_tokens=[(START, start), (END, end)]
        )
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        """Tokens the tokenizer knows, special ones included."""
        return int(self.tokenizer.get_vocab_size())

    def to_json(self) -> str:
        """The tokenizer as the text of a tokenizer.json."""
        return str(self.tokenizer.to_str())

    def encode(self, texts: list[str], *, max_tokens: int) -> TokenIds:
        """Token ids and masks of `texts`, each cut to `max_tokens` tokens ([CLS], [SEP] kept)."""
        if max_tokens < 3:
            raise DataError(f"max_tokens={max_tokens} leaves no room for a word; use >= 3")
        self.tokenizer.enable_truncation(max_tokens)
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(encoding.ids) for encoding in encodings], dtype=np.int64)
        width = int(lengths.max()) if len(lengths) else 1
        ids = np.full((len(texts), width), self.tokenizer.token_to_id(PAD), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : lengths[row]] = encoding.ids
        mask = np.arange(width)[None, :] < lengths[:, None]  # (1, L) < (N, 1) -> (N, L)
        truncated = sum(1 for encoding in encodings if encoding.overflowing)
        return TokenIds(torch.from_numpy(ids), torch.from_numpy(mask), truncated)


class TokenRows:
    """Token ids and masks (N, L) with targets (N,): each batch is cut to its longest text."""

    def __init__(self, tokens: TokenIds, targets: torch.Tensor) -> None:
        if len(tokens.ids) != len(targets):
            raise ValueError(f"{len(tokens.ids)} texts but {len(targets)} targets; align them")
        self.tokens = tokens
        self.targets = targets
        self.lengths = tokens.mask.sum(1)

    def __len__(self) -> int:
        return len(self.targets)

    def batch(
        self, positions: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """((ids, mask) (B, L'), targets (B,)) at `positions`, L' the batch's longest text."""
        width = int(self.lengths[positions].max()) if len(positions) else 1
        ids = self.tokens.ids[positions, :width]
        return (ids, self.tokens.mask[positions, :width]), self.targets[positions]

    def batch_positions(self, batch_size: int) -> list[torch.Tensor]:
        """An epoch's batches of texts of similar length (little padding), in random order.

        Shuffled texts are taken 50 batches at a time, sorted by length within that pool and
        cut into batches; the batches are then shuffled (with torch's seeded generator)."""
        order = torch.randperm(len(self))
        pool = batch_size * 50
        batches: list[torch.Tensor] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(chunk.split(batch_size))
        return [batches[i] for i in torch.randperm(len(batches)).tolist()]

    def by_length(self) -> torch.Tensor:
        """Positions from the shortest text to the longest: batches with little padding."""
        return torch.argsort(self.lengths, stable=True)

    def to(self, device: torch.device) -> TokenRows:
        """The same rows on `device`."""
        tokens = TokenIds(
            self.tokens.ids.to(device), self.tokens.mask.to(device), self.tokens.truncated
        )
        return TokenRows(tokens, self.targets.to(device))
