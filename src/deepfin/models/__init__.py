"""Models by name: one registry of every model, its task and how it is fitted; the builders."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.forecasting.baselines import NaiveConfig, NaiveForecaster
from deepfin.models.forecasting.cnn import CNNConfig, CNNForecaster
from deepfin.models.forecasting.gbdt import GBDTConfig, GBDTForecaster
from deepfin.models.forecasting.gru import GRUConfig, GRUForecaster
from deepfin.models.forecasting.hybrid import HybridConfig, HybridForecaster
from deepfin.models.forecasting.linear import LinearConfig, LinearForecaster
from deepfin.models.forecasting.lstm import LSTMConfig, LSTMForecaster
from deepfin.models.forecasting.rnn import RNNConfig, RNNForecaster
from deepfin.models.forecasting.transformer import TransformerConfig, TransformerForecaster
from deepfin.models.risk.ewma import EWMAConfig, EWMAVolatility
from deepfin.models.risk.garch import EGARCHConfig, GARCHConfig, GARCHVolatility, GJRGARCHConfig
from deepfin.models.risk.har import HARConfig, HARVolatility
from deepfin.models.tabular.boosting import LightGBMConfig, LightGBMScorer
from deepfin.models.tabular.ft_transformer import FTTransformerConfig, FTTransformerScorer
from deepfin.models.tabular.logistic import LogisticConfig, LogisticScorer
from deepfin.models.tabular.mlp import MLPConfig, MLPScorer
from deepfin.models.text.minilm import MiniLMClassifier, MiniLMConfig
from deepfin.models.text.text_hybrid import TextHybrid, TextHybridConfig
from deepfin.models.text.text_transformer import TextTransformer, TextTransformerConfig
from deepfin.models.text.tfidf_logistic import TfidfLogistic, TfidfLogisticConfig
from deepfin.models.text.tfidf_ridge import TfidfRidge, TfidfRidgeConfig
from deepfin.models.vision.chart_cnn import ChartCNN, ChartCNNConfig
from deepfin.models.vision.image_cnn import ImageCNN, ImageCNNConfig

# windows (B, T, F) -> (B, O); encoded rows (B, F) -> (B, 1); texts -> logits (B, C), from
# TF-IDF rows (B, F) or token ids and masks (B, L); a text model's n_features is its vocabulary;
# a risk model reads a series' returns and daily variances and forecasts the coming variance;
# images (B, channels, H, W) in [0, 1] -> logits (B, C)
TASKS = ("forecast", "tabular", "text", "risk", "image")
# gradient: trained by training.fit_model; closed_form: solved; trees: grown; fixed: no fitting;
# likelihood: maximum likelihood by the arch package
FITS = ("gradient", "closed_form", "trees", "fixed", "likelihood")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its config and module classes, the task it serves, how it is fitted."""

    config: type
    module: type
    task: str
    fit: str


# adding a model means one new file and one line here; every list of models derives from it
MODELS: dict[str, ModelEntry] = {
    "rnn": ModelEntry(RNNConfig, RNNForecaster, task="forecast", fit="gradient"),
    "lstm": ModelEntry(LSTMConfig, LSTMForecaster, task="forecast", fit="gradient"),
    "gru": ModelEntry(GRUConfig, GRUForecaster, task="forecast", fit="gradient"),
    "hybrid": ModelEntry(HybridConfig, HybridForecaster, task="forecast", fit="gradient"),
    "cnn": ModelEntry(CNNConfig, CNNForecaster, task="forecast", fit="gradient"),
    "transformer": ModelEntry(
        TransformerConfig, TransformerForecaster, task="forecast", fit="gradient"
    ),
    "naive": ModelEntry(NaiveConfig, NaiveForecaster, task="forecast", fit="fixed"),
    "linear": ModelEntry(LinearConfig, LinearForecaster, task="forecast", fit="closed_form"),
    # a module without weights: LightGBM grows its trees, saved in LightGBM's text format
    "gbdt": ModelEntry(GBDTConfig, GBDTForecaster, task="forecast", fit="trees"),
    "logistic": ModelEntry(LogisticConfig, LogisticScorer, task="tabular", fit="closed_form"),
    "mlp": ModelEntry(MLPConfig, MLPScorer, task="tabular", fit="gradient"),
    "ft_transformer": ModelEntry(
        FTTransformerConfig, FTTransformerScorer, task="tabular", fit="gradient"
    ),
    # not an nn.Module: grown by LightGBM, saved in its own text format
    "lightgbm": ModelEntry(LightGBMConfig, LightGBMScorer, task="tabular", fit="trees"),
    # weights solved by scikit-learn's L-BFGS, then held (and saved) as one linear layer
    "tfidf_logistic": ModelEntry(
        TfidfLogisticConfig, TfidfLogistic, task="text", fit="closed_form"
    ),
    # for sentiment scores: scikit-learn's ridge regression, held as one linear layer
    "tfidf_ridge": ModelEntry(TfidfRidgeConfig, TfidfRidge, task="text", fit="closed_form"),
    # the pretrained sentence encoder (its weights ship in a package) under a class head
    "minilm": ModelEntry(MiniLMConfig, MiniLMClassifier, task="text", fit="gradient"),
    # from scratch, over a WordPiece vocabulary learned from the training texts
    "text_transformer": ModelEntry(
        TextTransformerConfig, TextTransformer, task="text", fit="gradient"
    ),
    "text_hybrid": ModelEntry(TextHybridConfig, TextHybrid, task="text", fit="gradient"),
    # the risk desk's volatility models (numpy and arch, not nn.Modules)
    "har": ModelEntry(HARConfig, HARVolatility, task="risk", fit="closed_form"),
    "ewma": ModelEntry(EWMAConfig, EWMAVolatility, task="risk", fit="fixed"),
    "garch": ModelEntry(GARCHConfig, GARCHVolatility, task="risk", fit="likelihood"),
    "gjr_garch": ModelEntry(GJRGARCHConfig, GARCHVolatility, task="risk", fit="likelihood"),
    "egarch": ModelEntry(EGARCHConfig, GARCHVolatility, task="risk", fit="likelihood"),
    # price charts drawn by deepfin.data.charts (Jiang, Kelly and Xiu 2023)
    "chart_cnn": ModelEntry(ChartCNNConfig, ChartCNN, task="image", fit="gradient"),
    "image_cnn": ModelEntry(ImageCNNConfig, ImageCNN, task="image", fit="gradient"),
}


def model_names(task: str, *, fit: str | None = None) -> tuple[str, ...]:
    """The registered models of `task` (and of one way of fitting), in registry order."""
    return tuple(
        name
        for name, entry in MODELS.items()
        if entry.task == task and (fit is None or entry.fit == fit)
    )


FORECAST_MODELS = model_names("forecast")
NEURAL_MODELS = model_names("forecast", fit="gradient")
TABULAR_MODELS = model_names("tabular")
TEXT_MODELS = model_names("text")
IMAGE_MODELS = model_names("image")

# inferred from the data by the caller, so never accepted as hyperparameters
DATA_SIZES: dict[str, tuple[str, ...]] = {
    "forecast": ("n_features", "lookback", "n_outputs"),
    "tabular": ("n_features",),
    "text": ("n_features", "n_classes"),
    "risk": (),
    "image": ("in_channels", "height", "width", "n_classes"),
}


__all__ = [
    "DATA_SIZES",
    "FORECAST_MODELS",
    "IMAGE_MODELS",
    "MODELS",
    "NEURAL_MODELS",
    "TABULAR_MODELS",
    "TEXT_MODELS",
    "ModelEntry",
    "build_image_model",
    "build_model",
    "build_risk_model",
    "build_tabular_model",
    "build_text_model",
    "hyperparameters",
    "model_config",
    "model_names",
]


def hyperparameters(name: str) -> dict[str, Any]:
    """Default hyperparameters of the model `name` (the config fields after the data sizes)."""
    entry = _lookup(name, task=None)
    return {
        field.name: field.default
        for field in dataclasses.fields(entry.config)
        if field.name not in DATA_SIZES[entry.task]
    }


def build_model(
    name: str,
    *,
    n_features: int,
    lookback: int,
    n_outputs: int,
    params: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build the model `name` for windows (B, lookback, n_features) -> forecasts (B, n_outputs)."""
    entry = _lookup(name, task="forecast")
    config = entry.config(
        n_features=n_features,
        lookback=lookback,
        n_outputs=n_outputs,
        **checked_params(name, params),
    )
    module: nn.Module = entry.module(config)
    return module


def build_tabular_model(
    name: str, *, n_features: int, params: Mapping[str, Any] | None = None
) -> nn.Module | LightGBMScorer:
    """Build the credit scorer `name` for encoded applicants (B, n_features) -> log-odds (B, 1)."""
    entry = _lookup(name, task="tabular")
    model: nn.Module | LightGBMScorer = entry.module(
        entry.config(n_features=n_features, **checked_params(name, params))
    )
    return model


def build_text_model(
    name: str, *, n_features: int, n_classes: int, params: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build the text classifier `name` for text features (B, n_features) -> logits (B, C)."""
    entry = _lookup(name, task="text")
    module: nn.Module = entry.module(
        entry.config(n_features=n_features, n_classes=n_classes, **checked_params(name, params))
    )
    return module


def build_image_model(
    name: str,
    *,
    in_channels: int,
    height: int,
    width: int,
    n_classes: int,
    params: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build the image classifier `name` for images (B, in_channels, height, width) -> (B, C)."""
    entry = _lookup(name, task="image")
    module: nn.Module = entry.module(
        entry.config(
            in_channels=in_channels,
            height=height,
            width=width,
            n_classes=n_classes,
            **checked_params(name, params),
        )
    )
    return module


def build_risk_model(
    name: str, *, params: Mapping[str, Any] | None = None
) -> HARVolatility | EWMAVolatility | GARCHVolatility:
    """Build the volatility model `name` (fit on a series prefix, forecast at origins)."""
    entry = _lookup(name, task="risk")
    model: HARVolatility | EWMAVolatility | GARCHVolatility = entry.module(
        entry.config(**checked_params(name, params))
    )
    return model


def model_config(model: nn.Module) -> dict[str, Any]:
    """The model's config as a JSON-serialisable dict, data sizes included."""
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(
            f"{type(model).__name__} has no dataclass `config`; build it with build_model"
        )
    return dataclasses.asdict(config)


def _lookup(name: str, *, task: str | None) -> ModelEntry:
    """Registry entry for `name`, or a ValueError listing the valid names of `task`."""
    entry = MODELS.get(name)
    if entry is None or (task is not None and entry.task != task):
        choices = model_names(task) if task else tuple(MODELS)
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(choices)}")
    return entry


def checked_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The hyperparameters given, refused by name when they are data sizes or unknown."""
    params = dict(params or {})
    valid = sorted(hyperparameters(name))
    sizes = sorted(set(params) & set(DATA_SIZES[MODELS[name].task]))
    if sizes:
        verb = "comes" if len(sizes) == 1 else "come"
        raise ConfigError(
            f"{name}: {', '.join(sizes)} {verb} from the data, not from params; "
            "pass them as keyword arguments; "
            f"valid keys are: {', '.join(valid) or 'none'}"
        )
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid keys are: {', '.join(valid) or 'none (this model takes no hyperparameters)'}"
        )
    return params
