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
from deepfin.errors import RunFolderError
from deepfin.models import build_text_model, model_config
from deepfin.runs.files import PREPROCESS, RunFiles, open_run, read_weights, write_run
from deepfin.runs.folders import check_fresh_folder
from deepfin.tasks.text.config import TextConfig, TextDataConfig
from deepfin.tasks.text.estimator import TextClassifier

log = logging.getLogger(__name__)
TASK = "text"


def save_classifier(classifier: TextClassifier, run_dir: Path) -> Path:
    """Write the run folder: config, vocabulary, weights; texts only as masked in predictions."""
    classifier.check_is_fitted()
    assert classifier.model_ is not None and classifier.features_ is not None
    tfidf, idf = classifier.features_.to_state()
    files = RunFiles(
        config={
            **dataclasses.asdict(classifier.config),
            "model_config": model_config(classifier.model_),
        },
        preprocess={
            "classes": classifier.classes_,
            "majority": classifier.majority_,
            "tfidf": tfidf,
            "masked": classifier.masked_,
        },
        metrics=classifier.metrics_,
        predictions=classifier.predictions_,
    )
    files.tensors = {f"model.{k}": v for k, v in classifier.model_.state_dict().items()}
    files.tensors["tfidf.idf"] = torch.from_numpy(idf)
    return write_run(run_dir, TASK, files)


def load_classifier(run_dir: Path | str) -> TextClassifier:
    """Rebuild a fitted TextClassifier from its run folder."""
    return open_run(Path(run_dir), TASK, _classifier)


def _classifier(run_dir: Path, files: RunFiles) -> TextClassifier:
    saved = files.config
    fields = {field.name for field in dataclasses.fields(TextConfig)}
    classifier = TextClassifier(**{k: v for k, v in saved.items() if k in fields})
    sizes = saved["model_config"]
    weights = read_weights(run_dir, files.hashes)
    described = f"model_config of {run_dir / 'config.json'}"
    params = {k: v for k, v in sizes.items() if k not in ("n_features", "n_classes")}

    def build() -> torch.nn.Module:
        return build_text_model(
            classifier.config.model,
            n_features=sizes["n_features"],
            n_classes=sizes["n_classes"],
            params=params,
        )

    classifier.model_ = weights.module("model", build, described=described)
    preprocess = files.preprocess
    idf = weights.tensors().get("tfidf.idf")
    if idf is None:
        raise RunFolderError(f"{weights.path} lacks the TF-IDF weights; re-run the training")
    classifier.features_ = TfidfFeatures.from_state(preprocess["tfidf"], idf.numpy())
    classifier.classes_ = [str(name) for name in preprocess["classes"]]
    classifier.majority_ = int(preprocess["majority"])
    classifier.masked_ = dict(preprocess.get("masked", {}))
    widths = {
        "classes": len(classifier.classes_),
        "the model's outputs": sizes["n_classes"],
    }
    if len(set(widths.values())) > 1 or classifier.features_.n_features != sizes["n_features"]:
        raise RunFolderError(
            f"{run_dir / PREPROCESS} does not fit its model ({widths}, vocabulary "
            f"{classifier.features_.n_features} vs {sizes['n_features']} inputs); re-run it"
        )
    classifier.metrics_ = files.metrics
    classifier.predictions_ = files.predictions
    return classifier


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
    classifier.fit(split.train)
    metrics = classifier.evaluate(split.test)
    sizes = {"train": split.train.height, "test": split.test.height}
    if split.val is not None:
        sizes["val"] = split.val.height
    metrics |= {"split": {**sizes, "duplicates_removed": split.duplicates_removed, "seed": seed}}
    save_classifier(classifier, run_dir)
    return metrics
