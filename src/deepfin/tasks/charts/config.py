"""A chart run from a TOML file and overrides: the prices, the charts, the net, training."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.config import build_sections, read_toml
from deepfin.data.image_files import parse_size
from deepfin.data.images import Augmentation
from deepfin.errors import ConfigError
from deepfin.models import IMAGE_MODELS
from deepfin.training import TrainingConfig

STYLES = ("ohlc", "line")


@dataclass(frozen=True)
class ChartDataConfig:
    """Where the prices come from, how each chart is drawn, what it predicts and the split."""

    source: str = ""
    window: int = 20  # trading days in a chart (5, 20 and 60 get the paper's sizes)
    horizon: int = 20  # the label: does the close rise over the next `horizon` days?
    stride: int | None = None  # days between charts (None: the horizon, outcomes never overlap)
    style: str = "ohlc"  # or "line": the closes only, for data without open, high and low
    moving_average: bool = True
    volume: bool = True
    test_start: str | None = None  # first test day (else the last test_fraction of the days)
    test_fraction: float = 0.3
    val_fraction: float = 0.2  # the last share of the days before the test

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"unknown style {self.style!r}; choose one of {list(STYLES)}")
        for name in ("window", "horizon", "stride"):
            value = getattr(self, name)
            if value is None and name == "stride":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1; got {value!r}")
        if self.window < 2:
            raise ConfigError(f"a chart needs a window of at least 2 days; got {self.window}")
        if self.test_start is not None:
            try:
                dt.date.fromisoformat(self.test_start)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"test_start must be an ISO date such as 2016-08-01; got {self.test_start!r}"
                ) from None

    @property
    def days_between_charts(self) -> int:
        """The stride, or the horizon when none was given."""
        return self.stride if self.stride is not None else self.horizon


@dataclass(frozen=True)
class ChartConfig:
    """The net, how many seeds it averages, and the cost of trading its portfolios."""

    model: str = "chart_cnn"
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    ensemble: int = 1  # nets trained from seeds seed .. seed + ensemble - 1, probabilities averaged
    cost_bps: float = 10.0  # per unit of turnover of the decile portfolios

    def __post_init__(self) -> None:
        if self.model not in IMAGE_MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {list(IMAGE_MODELS)}")
        if isinstance(self.ensemble, bool) or not isinstance(self.ensemble, int):
            raise ConfigError(f"ensemble must be an integer >= 1; got {self.ensemble!r}")
        if not 1 <= self.ensemble <= 20:
            raise ConfigError(f"ensemble must be between 1 and 20 nets; got {self.ensemble}")
        if not 0 <= self.cost_bps < 1e4:
            raise ConfigError(f"cost_bps must be in [0, 10000); got {self.cost_bps}")


@dataclass(frozen=True)
class ImageConfig:
    """The net and the random changes made to its training images."""

    model: str = "image_cnn"
    model_params: dict[str, Any] = field(default_factory=dict)
    flip: bool = False  # mirror left-right (not for digits or text, whose mirror is another)
    shift: int = 0  # move by up to this many pixels

    def __post_init__(self) -> None:
        if self.model not in IMAGE_MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {list(IMAGE_MODELS)}")
        Augmentation(flip=self.flip, shift=self.shift)  # checks them


@dataclass(frozen=True)
class ImageDataConfig:
    """Where the labelled images come from, their size, and the stratified split."""

    source: str = ""  # a folder of class folders, an .npz of images and labels, or digits
    test_data: str | None = None  # test images of their own (else a stratified share)
    resize: str | None = None  # HxW: images of different sizes are refused unless resized
    val_fraction: float = 0.1
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        parse_size(self.resize)
        if not 0 <= self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ConfigError(
                f"need 0 <= val_fraction < 1 and 0 < test_fraction < 1; got "
                f"{self.val_fraction} and {self.test_fraction}"
            )
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ConfigError("val_fraction + test_fraction leave under 10% to train on")


# the paper's training: Adam at 1e-5 on batches of 128, early stopping after 2 epochs without a
# better validation loss; this smaller panel trains at a larger rate (tenfold, measured)
CHART_TRAINING: dict[str, Any] = {
    "batch_size": 128,
    "learning_rate": 1e-4,
    "patience": 2,
    "epochs": 30,
}


@dataclass(frozen=True)
class ChartRunConfig:
    """Everything one `deepfin chart train` run needs."""

    data: ChartDataConfig = field(default_factory=ChartDataConfig)
    chart: ChartConfig = field(default_factory=ChartConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(**CHART_TRAINING))
    runs_dir: str = "runs"


SECTIONS: dict[str, type] = {
    "data": ChartDataConfig,
    "chart": ChartConfig,
    "training": TrainingConfig,
}


def load_chart_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> ChartRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    source = str(path) if path else "overrides"
    raw = read_toml(path, overrides)
    sections = build_sections(raw, SECTIONS, source=source, defaults={"training": CHART_TRAINING})
    config = ChartRunConfig(**sections)
    if not config.data.source:
        raise ConfigError(f"no prices: give --data or source under [data] in {source}")
    return config


IMAGE_TRAINING: dict[str, Any] = {"batch_size": 64, "epochs": 60, "patience": 10}


@dataclass(frozen=True)
class ImageRunConfig:
    """Everything one `deepfin image train` run needs."""

    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(**IMAGE_TRAINING))
    runs_dir: str = "runs"


def load_image_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> ImageRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    source = str(path) if path else "overrides"
    raw = read_toml(path, overrides)
    sections = {"data": ImageDataConfig, "image": ImageConfig, "training": TrainingConfig}
    built = build_sections(raw, sections, source=source, defaults={"training": IMAGE_TRAINING})
    config = ImageRunConfig(**built)
    if not config.data.source:
        raise ConfigError(f"no images: give --data or source under [data] in {source}")
    return config
