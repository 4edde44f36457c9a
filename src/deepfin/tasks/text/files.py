"""The run folder of a TextClassifier, and a whole text run: read, split, fit, evaluate, save."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from deepfin.data.text.reading import read_texts
from deepfin.data.text.splits import split_texts
from deepfin.data.text.tfidf import TfidfFeatures
from deepfin.data.text.tokens import TextTokenizer
from deepfin.errors import ConfigError, RunFolderError
from deepfin.models import DATA_SIZES, build_text_model, model_config
from deepfin.runs.files import (
    CONFIG,
    PREPROCESS,
    RunFiles,
    open_run,
    read_weights,
    required_artifact,
    write_run,
)
from deepfin.runs.folders import check_fresh_folder
from deepfin.runs.weights import Weights
from deepfin.tasks.text.config import TFIDF_MODELS, TextConfig, TextDataConfig
from deepfin.tasks.text.estimator import TextClassifier

log = logging.getLogger(__name__)
TASK = "text"
TOKENIZER = "tokenizer.json"


def save_classifier(classifier: TextClassifier, run_dir: Path) -> Path:
    """Write the run folder: config, vocabulary, weights; texts only as masked in predictions."""
    classifier.check_is_fitted()
    assert classifier.model_ is not None and classifier.features_ is not None
    tfidf, idf = classifier.features_.to_state()
    config = {
        **dataclasses.asdict(classifier.config),
        "training": dataclasses.asdict(classifier.training),
        "model_config": model_config(classifier.model_),
    }
    if classifier.baseline_ is not None:
        config["baseline_config"] = model_config(classifier.baseline_)
    files = RunFiles(
        config=config,
        preprocess={
            "classes": classifier.classes_,
            "majority": classifier.majority_,
            "scores": classifier.scores_,
            "mean": classifier.mean_,
            "tfidf": tfidf,
            "masked": classifier.masked_,
        },
        history=classifier.history_,
        metrics=classifier.metrics_,
        predictions=classifier.predictions_,
    )
    files.tensors = {f"model.{k}": v for k, v in classifier.model_.state_dict().items()}
    if classifier.baseline_ is not None:
        files.tensors |= {f"baseline.{k}": v for k, v in classifier.baseline_.state_dict().items()}
    files.tensors["tfidf.idf"] = torch.from_numpy(idf)
    if classifier.tokenizer_ is not None:
        files.texts[TOKENIZER] = classifier.tokenizer_.to_json()
    return write_run(run_dir, TASK, files)


def load_classifier(run_dir: Path | str) -> TextClassifier:
    """Rebuild a fitted TextClassifier from its run folder."""
    return open_run(Path(run_dir), TASK, _classifier)


def _classifier(run_dir: Path, files: RunFiles) -> TextClassifier:
    saved = files.config
    classifier = TextClassifier.from_settings(saved, TextConfig)
    sizes = saved["model_config"]
    weights = read_weights(run_dir, files.hashes)
    preprocess = files.preprocess
    classifier.scores_ = bool(preprocess.get("scores", False))
    classifier.mean_ = float(preprocess.get("mean", 0.0))
    classifier.model_ = _module(weights, "model", classifier.model_name, sizes, run_dir)
    if "baseline_config" in saved:
        classifier.baseline_ = _module(
            weights, "baseline", classifier.baseline_name, saved["baseline_config"], run_dir
        )
    if classifier.config.model not in TFIDF_MODELS:
        tokenizer = required_artifact(run_dir, TOKENIZER, files.hashes).decode("utf-8")
        classifier.tokenizer_ = TextTokenizer.from_json(tokenizer)
    classifier.history_ = files.history
    idf = weights.tensors().get("tfidf.idf")
    if idf is None:
        raise RunFolderError(f"{weights.path} lacks the TF-IDF weights; re-run the training")
    classifier.features_ = TfidfFeatures.from_state(preprocess["tfidf"], idf.numpy())
    classifier.classes_ = [str(name) for name in preprocess["classes"]]
    classifier.majority_ = int(preprocess["majority"])
    classifier.masked_ = dict(preprocess.get("masked", {}))
    widths = {
        "classes": 1 if classifier.scores_ else len(classifier.classes_),
        "the model's outputs": sizes["n_classes"],
    }
    baseline = classifier.baseline_ or classifier.model_
    inputs = model_config(baseline)["n_features"]
    if len(set(widths.values())) > 1 or classifier.features_.n_features != inputs:
        raise RunFolderError(
            f"{run_dir / PREPROCESS} does not fit its model ({widths}, vocabulary "
            f"{classifier.features_.n_features} vs {inputs} inputs); re-run it"
        )
    classifier.metrics_ = files.metrics
    classifier.predictions_ = files.predictions
    return classifier


def start_run(path: str, model: str) -> tuple[TextTokenizer, torch.nn.Module]:
    """The tokenizer and network of the run at `path` (`start_from`), checked to be `model`'s."""
    try:
        start = load_classifier(path)
    except RunFolderError as error:
        raise RunFolderError(f"start_from: {error}") from error
    if start.config.model != model:
        raise ConfigError(
            f"start_from {path} holds a {start.config.model} run; this one trains {model}: "
            f"start from a {model} run"
        )
    assert start.model_ is not None and start.tokenizer_ is not None  # a network's run
    return start.tokenizer_, start.model_


def _module(
    weights: Weights, prefix: str, name: str, sizes: dict[str, Any], run_dir: Path
) -> torch.nn.Module:
    """The model `name` of `sizes` holding the weights under `prefix.`."""
    params = {k: v for k, v in sizes.items() if k not in DATA_SIZES["text"]}

    def build() -> torch.nn.Module:
        return build_text_model(
            name, n_features=sizes["n_features"], n_classes=sizes["n_classes"], params=params
        )

    described = f"{prefix}_config of {run_dir / CONFIG}"
    return weights.module(prefix, build, described=described)


def run_text(
    classifier: TextClassifier, data: TextDataConfig, *, run_dir: Path, seed: int
) -> dict[str, Any]:
    """Read and split the texts, fit, evaluate on the test texts and save the run folder."""
    check_fresh_folder(run_dir)
    options = {"text_col": data.text_col, "label_col": data.label_col}
    texts = read_texts(data.source, **options)
    test = read_texts(data.test_data, **options) if data.test_data else None
    split = split_texts(
        texts,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=seed,
        test=test,
    )
    classifier.fit(split.train, split.val)
    metrics = classifier.evaluate(split.test)
    sizes = {"train": split.train.height, "test": split.test.height}
    if split.val is not None:
        sizes["val"] = split.val.height
    metrics |= {"split": {**sizes, "duplicates_removed": split.duplicates_removed, "seed": seed}}
    save_classifier(classifier, run_dir)
    return metrics
