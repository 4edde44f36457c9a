"""A text run from a TOML file and overrides: the texts, the split, the classifier, training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.config import build_sections, read_toml
from deepfin.errors import ConfigError
from deepfin.models import TEXT_MODELS, hyperparameters
from deepfin.models.text.text_transformer import MAX_POSITIONS
from deepfin.training import TrainingConfig

TFIDF_MODELS = ("tfidf_logistic", "tfidf_ridge")  # the baselines: for classes, for scores


@dataclass(frozen=True)
class TextDataConfig:
    """Where the texts come from, which columns hold text and label, and how they are split."""

    source: str = ""
    test_data: str | None = None  # the user's own test texts; else a stratified share
    text_col: str | None = None  # None: recognised by name (text, sentence, ...)
    label_col: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1


@dataclass(frozen=True)
class TextConfig:
    """The classifier and the text preparation every model shares."""

    model: str = "tfidf_logistic"
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    mask_personal_data: bool = True  # e-mails, IBANs, cards, phones, long numbers: placeholders
    ngram_max: int = 2  # TF-IDF word n-grams 1..ngram_max
    min_df: int = 2  # TF-IDF terms seen in at least this many training texts
    fine_tune: bool = False  # a pretrained encoder (minilm) learns too, not just its head
    max_tokens: int = 256  # longer texts are cut (and counted) for token models
    vocab_size: int = 8000  # WordPiece tokens learned from the training texts (not pretrained)
    start_from: str | None = None  # a text run of the same model: its tokenizer and weights
    # (all but the head, which starts afresh for this run's labels) are where training starts

    def __post_init__(self) -> None:
        if self.model not in TEXT_MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {list(TEXT_MODELS)}")
        if not isinstance(self.fine_tune, bool):
            raise ConfigError(f"fine_tune must be true or false; got {self.fine_tune!r}")
        if self.fine_tune and "fine_tune" not in hyperparameters(self.model):
            pretrained = [name for name in TEXT_MODELS if "fine_tune" in hyperparameters(name)]
            raise ConfigError(
                f"{self.model} has no pretrained encoder to fine-tune; fine_tune applies to "
                f"{', '.join(pretrained)}"
            )
        if isinstance(self.max_tokens, int) and self.max_tokens > MAX_POSITIONS:
            raise ConfigError(
                f"max_tokens={self.max_tokens} is more than the {MAX_POSITIONS} positions of "
                f"the encoders; use at most {MAX_POSITIONS}"
            )
        if self.start_from is not None and self.model in TFIDF_MODELS:
            raise ConfigError(
                f"{self.model} is fitted in closed form; start_from applies to the networks "
                f"({', '.join(name for name in TEXT_MODELS if name not in TFIDF_MODELS)})"
            )
        if "fine_tune" in self.model_params:
            raise ConfigError("give fine_tune as its own setting (--fine-tune), not in params")
        for name in ("ngram_max", "min_df", "max_tokens", "vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1; got {value!r}")


@dataclass(frozen=True)
class TextRunConfig:
    """Everything one `deepfin text train` run needs."""

    data: TextDataConfig = field(default_factory=TextDataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    runs_dir: str = "runs"


SECTIONS: dict[str, type] = {"data": TextDataConfig, "text": TextConfig, "training": TrainingConfig}

# fine-tuning a pretrained encoder: a small rate, warmed up then decayed, for a few epochs
# (Devlin et al. 2019 tune in 2e-5..5e-5; a 6-layer MiniLM takes the top of that range)
FINE_TUNING = {
    "learning_rate": 5e-5,
    "epochs": 5,
    "batch_size": 32,
    "warmup_fraction": 0.1,
    "lr_schedule": "linear",
    "patience": 3,
    "optimizer": "adamw",
    "weight_decay": 0.01,
}


# a linear head on fixed embeddings: more epochs (each takes a moment), more patience
FROZEN_HEAD = {"epochs": 100, "patience": 10}


def training_defaults(model: str, *, fine_tune: bool) -> dict[str, Any]:
    """The training settings a text model starts from (the user's own override them)."""
    if "fine_tune" not in hyperparameters(model):  # nothing pretrained
        return {}
    return dict(FINE_TUNING) if fine_tune else dict(FROZEN_HEAD)


def load_text_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> TextRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    source = str(path) if path else "overrides"
    raw = read_toml(path, overrides)
    text = raw.get("text", {})
    defaults = {}
    if isinstance(text, dict) and text.get("model", TextConfig.model) in TEXT_MODELS:
        model = text.get("model", TextConfig.model)
        defaults["training"] = training_defaults(model, fine_tune=text.get("fine_tune") is True)
    config = TextRunConfig(**build_sections(raw, SECTIONS, source=source, defaults=defaults))
    if not config.data.source:
        raise ConfigError(f"no texts: give --data or source under [data] in {source}")
    return config
