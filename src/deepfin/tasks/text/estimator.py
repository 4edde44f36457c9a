"""TextClassifier: the label of a text (sentiment, intent), beside TF-IDF and majority baselines."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from deepfin.data.text.privacy import mask_texts
from deepfin.data.text.reading import TextSource, read_texts
from deepfin.data.text.tfidf import TfidfFeatures, sparse_tensor
from deepfin.errors import DataError
from deepfin.metrics.multiclass import classification_metrics, mcnemar_test
from deepfin.models import build_text_model
from deepfin.tasks.base import Estimator
from deepfin.tasks.text.config import TextConfig

log = logging.getLogger(__name__)

BASELINE, MAJORITY = "tfidf_logistic", "majority"
TOP_K = 3


class TextClassifier(Estimator):
    """Labels texts: the most probable class, its probability and the runners-up."""

    def __init__(
        self,
        *,
        model: str = "tfidf_logistic",
        model_params: dict[str, Any] | None = None,
        mask_personal_data: bool = True,
        ngram_max: int = 2,
        min_df: int = 2,
    ) -> None:
        self.config = TextConfig(
            model=model,
            model_params=dict(model_params or {}),
            mask_personal_data=mask_personal_data,
            ngram_max=ngram_max,
            min_df=min_df,
        )
        self.model_: nn.Module | None = None
        self.features_: TfidfFeatures | None = None
        self.classes_: list[str] = []
        self.majority_: int = 0
        self.masked_: dict[str, int] = {}
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None

    def _texts(self, source: TextSource | pl.DataFrame) -> pl.DataFrame:
        """`text` (masked unless switched off) and `label` (as text) of a source."""
        frame = read_texts(source)
        if "label" in frame.columns:
            if frame.schema["label"].is_float():
                raise DataError(
                    "the labels are fractional numbers (scores); TextClassifier learns classes: "
                    "give a column of class names or whole numbers"
                )
            frame = frame.with_columns(pl.col("label").cast(pl.String))
        if not self.config.mask_personal_data:
            return frame
        masked, counts = mask_texts(frame["text"].to_list())
        for kind, count in counts.items():
            self.masked_[kind] = self.masked_.get(kind, 0) + count
        return frame.with_columns(pl.Series("text", masked))

    def fit(self, train: TextSource) -> TextClassifier:
        """Learn the TF-IDF vocabulary and the classifier from labelled training texts."""
        self.masked_ = {}
        frame = self._texts(train)
        if "label" not in frame.columns:
            raise DataError("the training texts have no label column; name it (--label-col)")
        counts = Counter(frame["label"].to_list())
        if len(counts) < 2:
            raise DataError(f"every training text has the label {frame['label'][0]!r}")
        self.classes_ = sorted(counts)
        self.majority_ = self.classes_.index(counts.most_common(1)[0][0])
        self.features_ = TfidfFeatures(ngram_max=self.config.ngram_max, min_df=self.config.min_df)
        x = self.features_.fit(frame["text"].to_list()).transform(frame["text"].to_list())
        model = build_text_model(
            self.config.model,
            n_features=self.features_.n_features,
            n_classes=len(self.classes_),
            params=self.config.model_params,
        )
        model.fit_closed_form(x, self._codes(frame["label"]))  # type: ignore[operator]
        self.model_ = model.eval()
        return self

    def _codes(self, labels: pl.Series) -> np.ndarray:
        position = {name: i for i, name in enumerate(self.classes_)}
        unknown = sorted(set(labels) - set(position))
        if unknown:
            raise DataError(
                f"{len(unknown)} label(s) never seen in training ({', '.join(unknown[:10])}); "
                "the classifier cannot score them: drop those texts or train on them"
            )
        return np.array([position[label] for label in labels], dtype=np.int64)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (texts, classes) of already masked texts."""
        self.check_is_fitted()
        assert self.model_ is not None and self.features_ is not None
        with torch.no_grad():
            logits = self.model_(sparse_tensor(self.features_.transform(texts)))
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, source: TextSource) -> pl.DataFrame:
        """Per text: the label, its probability, and the top-3 labels with theirs."""
        frame = self._texts(source)
        probabilities = self.predict_proba(frame["text"].to_list())
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
        classes = np.array(self.classes_)
        out = frame.select("text").with_columns(
            pl.Series("predicted", classes[order[:, 0]]),
            pl.Series("probability", probabilities[np.arange(len(order)), order[:, 0]]),
            pl.Series("top_labels", [list(row) for row in classes[order]]),
            pl.Series(
                "top_probabilities",
                [list(row) for row in np.take_along_axis(probabilities, order, axis=1)],
            ),
        )
        return out.with_columns(frame["label"]) if "label" in frame.columns else out

    def evaluate(self, test: TextSource) -> dict[str, Any]:
        """Metrics of the model and the majority class on labelled test texts, with McNemar."""
        frame = self._texts(test)
        if "label" not in frame.columns:
            raise DataError("the test texts have no label column; name it (--label-col)")
        labels = self._codes(frame["label"])
        probabilities = self.predict_proba(frame["text"].to_list())
        majority = np.full_like(probabilities, 0.0)
        majority[:, self.majority_] = 1.0
        rows = {
            self.config.model: classification_metrics(labels, probabilities, self.classes_),
            MAJORITY: classification_metrics(labels, majority, self.classes_),
        }
        correct = {
            name: p.argmax(axis=1) == labels
            for name, p in ((self.config.model, probabilities), (MAJORITY, majority))
        }
        # each row against the TF-IDF baseline; the baseline itself against the majority class
        reference = BASELINE if self.config.model != BASELINE else MAJORITY
        _, p_value = mcnemar_test(correct[self.config.model], correct[reference])
        rows[self.config.model][f"mcnemar_p_vs_{reference}"] = p_value
        self.metrics_ = {"models": rows, "classes": self.classes_, "masked": dict(self.masked_)}
        self.predictions_ = self.predict(frame)
        return self.metrics_

    def save(self, run_dir: Path | str) -> Path:
        """Write config, vocabulary, weights and (if evaluated) metrics and predictions."""
        from deepfin.tasks.text.files import save_classifier

        return save_classifier(self, Path(run_dir))

    @classmethod
    def load(cls, run_dir: Path | str) -> TextClassifier:
        """Rebuild a fitted TextClassifier from a run folder; executes no code from it."""
        from deepfin.tasks.text.files import load_classifier

        return load_classifier(run_dir)
