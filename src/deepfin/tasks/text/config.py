"""A text run from a TOML file and overrides: the texts, the split, the classifier, training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.config import build_sections, read_toml
from deepfin.errors import ConfigError
from deepfin.models import TEXT_MODELS
from deepfin.training import TrainingConfig


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

    def __post_init__(self) -> None:
        if self.model not in TEXT_MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {list(TEXT_MODELS)}")
        for name in ("ngram_max", "min_df"):
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


def load_text_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> TextRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    source = str(path) if path else "overrides"
    config = TextRunConfig(**build_sections(read_toml(path, overrides), SECTIONS, source=source))
    if not config.data.source:
        raise ConfigError(f"no texts: give --data or source under [data] in {source}")
    return config
