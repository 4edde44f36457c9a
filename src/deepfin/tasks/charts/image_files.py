"""The run folder of an ImageClassifier, and a whole image run: read, split, fit, save."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from deepfin.data.image_files import LabelledImages, parse_size, read_images
from deepfin.errors import DataError, RunFolderError
from deepfin.models import DATA_SIZES, build_image_model, model_config
from deepfin.runs.files import CONFIG, RunFiles, open_run, read_weights, write_run
from deepfin.runs.folders import check_fresh_folder
from deepfin.tasks.charts.config import ImageConfig, ImageDataConfig
from deepfin.tasks.charts.images import ImageClassifier

log = logging.getLogger(__name__)
TASK = "image"
BASELINE = "baseline"


def save_image_classifier(classifier: ImageClassifier, run_dir: Path) -> Path:
    """Write the run folder: config, the net's and the pixel baseline's weights, classes."""
    classifier.check_is_fitted()
    assert classifier.model_ is not None and classifier.baseline_ is not None
    config = {
        **dataclasses.asdict(classifier.config),
        "training": dataclasses.asdict(classifier.training),
        "model_config": model_config(classifier.model_),
    }
    files = RunFiles(
        config=config,
        preprocess={"classes": classifier.classes_, "majority": classifier.majority_},
        history=classifier.history_,
        metrics=classifier.metrics_,
        predictions=classifier.predictions_,
    )
    files.tensors = {f"model.{k}": v for k, v in classifier.model_.state_dict().items()}
    files.tensors |= {f"{BASELINE}.{k}": v for k, v in classifier.baseline_.state_dict().items()}
    return write_run(run_dir, TASK, files)


def load_image_classifier(run_dir: Path | str) -> ImageClassifier:
    """Rebuild a fitted ImageClassifier from its run folder."""
    return open_run(Path(run_dir), TASK, _classifier)


def _classifier(run_dir: Path, files: RunFiles) -> ImageClassifier:
    saved = files.config
    classifier = ImageClassifier.from_settings(saved, ImageConfig)
    sizes = saved["model_config"]
    classes = [str(name) for name in files.preprocess["classes"]]
    if sizes["n_classes"] != len(classes):
        raise RunFolderError(
            f"{run_dir / CONFIG}: the net has {sizes['n_classes']} outputs for "
            f"{len(classes)} classes; re-run it"
        )
    params = {k: v for k, v in sizes.items() if k not in DATA_SIZES["image"]}
    image_sizes = {key: sizes[key] for key in DATA_SIZES["image"]}
    weights = read_weights(run_dir, files.hashes)
    described = f"model_config of {run_dir / CONFIG}"
    classifier.model_ = weights.module(
        "model",
        lambda: build_image_model(classifier.config.model, **image_sizes, params=params),
        described=described,
    )
    pixels = weights.shapes.get(f"{BASELINE}.weight")
    if pixels is None or len(pixels) != 2:
        raise RunFolderError(f"{weights.path} lacks the pixel baseline; re-run the training")
    baseline = weights.module(
        BASELINE, lambda: torch.nn.Linear(pixels[1], pixels[0]), described=described
    )
    assert isinstance(baseline, torch.nn.Linear)
    classifier.baseline_ = baseline
    classifier.classes_ = classes
    classifier.majority_ = int(files.preprocess["majority"])
    classifier.image_shape_ = (sizes["in_channels"], sizes["height"], sizes["width"])
    classifier.history_ = files.history
    classifier.metrics_ = files.metrics
    classifier.predictions_ = files.predictions
    return classifier


def split_images(
    images: LabelledImages, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[LabelledImages, LabelledImages | None, LabelledImages]:
    """Train, validation (None when 0) and test images, stratified by class with `seed`."""
    counts = Counter(images.labels.tolist())
    if len(counts) < 2:
        raise DataError(
            f"every image is of the class {images.labels[0]!r}; a classifier needs at least "
            "two classes (a folder per class)"
        )
    rare = sorted(name for name, count in counts.items() if count < 3)
    if rare:
        raise DataError(
            f"class(es) {', '.join(rare[:5])} have fewer than 3 images, too few to appear in "
            "train, validation and test: add images or drop those classes"
        )
    for name, fraction in (("test", test_fraction), ("validation", val_fraction)):
        held = math.ceil(fraction * len(images))
        if fraction and held < len(counts):
            raise DataError(
                f"a {name} share of {fraction:g} of {len(images)} images is {held}, fewer than "
                f"one per class ({len(counts)} classes): add images or raise the share"
            )
    positions = np.arange(len(images))
    rest, test = train_test_split(
        positions, test_size=test_fraction, stratify=images.labels, random_state=seed
    )
    if not val_fraction:
        return images.take(rest), None, images.take(test)
    share = val_fraction / (1 - test_fraction)
    train, val = train_test_split(
        rest, test_size=share, stratify=images.labels[rest], random_state=seed
    )
    return images.take(train), images.take(val), images.take(test)


def run_images(
    classifier: ImageClassifier, data: ImageDataConfig, *, run_dir: Path, seed: int
) -> dict[str, Any]:
    """Read and split the images, fit, evaluate on the test images and save the run folder."""
    check_fresh_folder(run_dir)
    resize = parse_size(data.resize)
    images = read_images(data.source, resize=resize)
    val: LabelledImages | None
    if data.test_data:
        test = read_images(data.test_data, resize=resize)
        # all of --data trains, but for the validation share
        train, _, val = split_images(
            images, val_fraction=0.0, test_fraction=data.val_fraction or 0.1, seed=seed
        )
        if not data.val_fraction:
            train, val = images, None
    else:
        train, val, test = split_images(
            images, val_fraction=data.val_fraction, test_fraction=data.test_fraction, seed=seed
        )
    classifier.fit(train, val)
    metrics = classifier.evaluate(test)
    metrics["split"] = {
        "train": len(train),
        "val": 0 if val is None else len(val),
        "test": len(test),
        "skipped": images.skipped + (test.skipped if data.test_data else 0),
        "seed": seed,
    }
    save_image_classifier(classifier, run_dir)
    return metrics
