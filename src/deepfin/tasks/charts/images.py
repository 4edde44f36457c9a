"""ImageClassifier: the class of any labelled image, from a small CNN, beside a logistic
regression on the (pooled) pixels and the majority class."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from deepfin.data.image_files import LabelledImages
from deepfin.data.images import Augmentation, ImageArrays
from deepfin.errors import DataError
from deepfin.metrics.multiclass import class_rows
from deepfin.models import build_image_model
from deepfin.tasks.base import Estimator
from deepfin.tasks.charts.config import IMAGE_TRAINING, ImageConfig
from deepfin.tasks.charts.estimator import cross_entropy
from deepfin.training import History, TrainingConfig, fit_model
from deepfin.training.evaluation import predict_batches

log = logging.getLogger(__name__)
POOLED = 16  # the logistic baseline reads the pixels averaged down to at most 16x16
PIXELS, MAJORITY = "pixel_logistic", "majority"


def pooled_pixels(images: np.ndarray) -> np.ndarray:
    """(N, C * h * w) pixels in [0, 1], averaged down to at most 16x16 per channel."""
    tensor = torch.from_numpy(images).float() / 255.0
    height, width = tensor.shape[2:]
    size = (min(height, POOLED), min(width, POOLED))
    return F.adaptive_avg_pool2d(tensor, size).flatten(1).double().numpy()


class ImageClassifier(Estimator):
    """Labels images; the probabilities of every class."""

    def __init__(
        self,
        *,
        model: str = "image_cnn",
        model_params: dict[str, Any] | None = None,
        flip: bool = False,
        shift: int = 0,
        training: TrainingConfig | None = None,
    ) -> None:
        self.config = ImageConfig(
            model=model, model_params=dict(model_params or {}), flip=flip, shift=shift
        )
        self.training = training or TrainingConfig(**IMAGE_TRAINING)
        self.model_: nn.Module | None = None
        self.baseline_: nn.Linear | None = None  # the pixel logistic regression, as a layer
        self.classes_: list[str] = []
        self.majority_: int = 0
        self.image_shape_: tuple[int, ...] = ()  # (channels, height, width) the net reads
        self.history_: History = History()
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {**dataclasses.asdict(self.config), "training": dataclasses.asdict(self.training)}

    def fit(self, train: LabelledImages, val: LabelledImages | None = None) -> ImageClassifier:
        """Learn the classes, the pixel baseline and the net; `val` chooses the kept epoch."""
        counts = Counter(train.labels.tolist())
        if len(counts) < 2:
            raise DataError(
                f"every training image is of the class {train.labels[0]!r}; a classifier needs "
                "at least two classes (a folder per class)"
            )
        self.classes_ = sorted(counts)
        self.majority_ = self.classes_.index(counts.most_common(1)[0][0])
        codes = self.codes(train.labels)
        pixels = pooled_pixels(train.images)
        logistic = LogisticRegression(max_iter=2000).fit(pixels, codes)
        self.baseline_ = _as_layer(logistic, len(self.classes_))
        channels, height, width = train.images.shape[1:]
        self.image_shape_ = (channels, height, width)
        torch.manual_seed(self.training.seed)
        net = build_image_model(
            self.config.model,
            in_channels=channels,
            height=height,
            width=width,
            n_classes=len(self.classes_),
            params=self.config.model_params,
        )
        augmentation = Augmentation(flip=self.config.flip, shift=self.config.shift)
        held_out = None
        if val is not None:
            self._check_shape(val)
            held_out = ImageArrays(
                torch.from_numpy(val.images), torch.from_numpy(self.codes(val.labels))
            )
        else:
            log.warning("no validation images: the net trains every epoch; the last is kept")
        self.history_ = fit_model(
            net,
            ImageArrays(torch.from_numpy(train.images), torch.from_numpy(codes), augmentation),
            held_out,
            loss_fn=cross_entropy,
            config=self.training,
        )
        self.model_ = net.eval()
        return self

    def codes(self, labels: np.ndarray) -> np.ndarray:
        """Class names as codes (unknown names refused)."""
        position = {name: i for i, name in enumerate(self.classes_)}
        unknown = sorted(set(labels.tolist()) - set(position))
        if unknown:
            raise DataError(
                f"{len(unknown)} class(es) never seen in training ({', '.join(unknown[:10])}); "
                "drop those images or train on them"
            )
        return np.array([position[label] for label in labels], dtype=np.int64)

    def _check_shape(self, images: LabelledImages) -> None:
        expected = self.image_shape_
        if images.images.shape[1:] != expected:
            raise DataError(
                f"these images are {'x'.join(map(str, images.images.shape[1:]))} (channels x "
                f"height x width); the net reads {'x'.join(map(str, expected))}: --resize them"
            )

    def predict_proba(self, images: LabelledImages) -> np.ndarray:
        """Class probabilities (N, C)."""
        self.check_is_fitted()
        assert self.model_ is not None
        self._check_shape(images)
        rows = ImageArrays(torch.from_numpy(images.images), torch.zeros(len(images)))
        logits = predict_batches(self.model_.cpu(), rows)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, images: LabelledImages) -> pl.DataFrame:
        """Per image: the predicted class and its probability (and the true label, if any)."""
        probabilities = self.predict_proba(images)
        best = probabilities.argmax(axis=1)
        return pl.DataFrame(
            {
                "label": images.labels,
                "predicted": np.asarray(self.classes_)[best],
                "probability": probabilities[np.arange(len(best)), best],
            }
        )

    def evaluate(self, test: LabelledImages) -> dict[str, Any]:
        """Accuracy, F1, calibration of the net, the pixel logistic regression and the
        majority class on the test images, each with McNemar's test against the next."""
        codes = self.codes(test.labels)
        assert self.baseline_ is not None
        with torch.no_grad():
            pixel_logits = self.baseline_(torch.from_numpy(pooled_pixels(test.images)).float())
        majority = np.zeros((len(codes), len(self.classes_)))
        majority[:, self.majority_] = 1.0
        probabilities = {
            self.config.model: self.predict_proba(test),
            PIXELS: torch.softmax(pixel_logits.double(), dim=1).numpy(),
            MAJORITY: majority,
        }
        self.metrics_ = {
            "models": class_rows(codes, probabilities, self.classes_),
            "classes": self.classes_,
            "image_shape": list(self.image_shape_),
        }
        self.predictions_ = self.predict(test)
        return self.metrics_

    def save(self, run_dir: Path | str) -> Path:
        """Write config, weights, classes and (if evaluated) metrics and predictions."""
        from deepfin.tasks.charts.image_files import save_image_classifier

        return save_image_classifier(self, Path(run_dir))

    @classmethod
    def load(cls, run_dir: Path | str) -> ImageClassifier:
        """Rebuild a fitted ImageClassifier from a run folder; executes no code from it."""
        from deepfin.tasks.charts.image_files import load_image_classifier

        return load_image_classifier(run_dir)


def _as_layer(model: LogisticRegression, classes: int) -> nn.Linear:
    """scikit-learn's fitted logistic regression as a linear layer of logits (two classes:
    the one logit becomes a pair whose softmax is the same probability)."""
    coef, intercept = model.coef_, model.intercept_
    if classes == 2:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.r_[-intercept / 2, intercept / 2]
    layer = nn.Linear(coef.shape[1], classes)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(coef))
        layer.bias.copy_(torch.from_numpy(intercept))
    return layer.eval()
