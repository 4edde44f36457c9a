"""TextClassifier: the label of a text (sentiment, intent), beside TF-IDF and majority baselines."""

from __future__ import annotations

import dataclasses
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
from deepfin.data.text.tokens import TextTokenizer, TokenIds
from deepfin.errors import DataError
from deepfin.metrics.multiclass import classification_metrics, mcnemar_test
from deepfin.models import MODELS, build_text_model, hyperparameters
from deepfin.tasks.base import Estimator
from deepfin.tasks.text.config import TextConfig, training_defaults
from deepfin.tasks.text.fitting import by_length, encode, fit_token_model
from deepfin.training import History, TrainingConfig

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
        fine_tune: bool = False,
        max_tokens: int = 256,
        vocab_size: int = 8000,
        training: TrainingConfig | None = None,
    ) -> None:
        self.config = TextConfig(
            model=model,
            model_params=dict(model_params or {}),
            mask_personal_data=mask_personal_data,
            ngram_max=ngram_max,
            min_df=min_df,
            fine_tune=fine_tune,
            max_tokens=max_tokens,
            vocab_size=vocab_size,
        )
        self.training = training or TrainingConfig(**training_defaults(model, fine_tune=fine_tune))
        self.model_: nn.Module | None = None
        self.baseline_: nn.Module | None = None  # tfidf_logistic, when it is not the model
        self.features_: TfidfFeatures | None = None
        self.tokenizer_: TextTokenizer | None = None  # token models only
        self.history_: History = History()
        self.truncated_: dict[str, int] = {}
        self.classes_: list[str] = []
        self.majority_: int = 0
        self.masked_: dict[str, int] = {}
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {**dataclasses.asdict(self.config), "training": dataclasses.asdict(self.training)}

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

    def fit(self, train: TextSource, val: TextSource | None = None) -> TextClassifier:
        """Learn the vocabulary, the TF-IDF baseline and the classifier from labelled training
        texts; for a trained network, `val` chooses the epoch kept."""
        self.masked_, self.truncated_ = {}, {}
        frame = self._labelled(train, "training")
        counts = Counter(frame["label"].to_list())
        if len(counts) < 2:
            raise DataError(
                f"every training text has the label {frame['label'][0]!r}; a classifier needs "
                "at least two classes"
            )
        self.classes_ = sorted(counts)
        self.majority_ = self.classes_.index(counts.most_common(1)[0][0])
        texts, codes = frame["text"].to_list(), self._codes(frame["label"])
        self.features_ = TfidfFeatures(ngram_max=self.config.ngram_max, min_df=self.config.min_df)
        baseline = build_text_model(
            BASELINE,
            n_features=self.features_.fit(texts).n_features,
            n_classes=len(self.classes_),
            params=self.config.model_params if self.config.model == BASELINE else None,
        )
        baseline.fit_closed_form(self.features_.transform(texts), codes)  # type: ignore[operator]
        if self.config.model == BASELINE:
            self.model_, self.baseline_ = baseline.eval(), None
            return self
        self.baseline_ = baseline.eval()
        self.tokenizer_ = self._tokenizer(texts)
        tokens = self._encode(texts, "train")
        torch.manual_seed(self.training.seed)
        params = dict(self.config.model_params)
        if "fine_tune" in hyperparameters(self.config.model):
            params["fine_tune"] = self.config.fine_tune
        model = build_text_model(
            self.config.model,
            n_features=self.tokenizer_.vocab_size,
            n_classes=len(self.classes_),
            params=params,
        )
        load_pretrained = getattr(model, "load_pretrained", None)
        if callable(load_pretrained):  # else the network starts from random weights
            load_pretrained()
        held_out = None
        if val is not None:
            val_frame = self._labelled(val, "validation")
            val_texts = val_frame["text"].to_list()
            held_out = (self._encode(val_texts, "val"), self._codes(val_frame["label"]))
        else:
            log.warning("no validation texts: the network trains every epoch; the last is kept")
        self.history_ = fit_token_model(model, tokens, codes, held_out, training=self.training)
        self.model_ = model.eval()
        return self

    def _labelled(self, source: TextSource, role: str) -> pl.DataFrame:
        frame = self._texts(source)
        if "label" not in frame.columns:
            raise DataError(f"the {role} texts have no label column; name it (--label-col)")
        return frame

    def _tokenizer(self, texts: list[str]) -> TextTokenizer:
        """The model's pretrained tokenizer, or WordPiece learned from the training texts."""
        pretrained = getattr(MODELS[self.config.model].module, "pretrained_tokenizer", None)
        if pretrained is not None:
            return TextTokenizer.from_file(pretrained())
        return TextTokenizer.train(texts, vocab_size=self.config.vocab_size)

    def _encode(self, texts: list[str], role: str) -> TokenIds:
        assert self.tokenizer_ is not None
        tokens = encode(self.tokenizer_, texts, max_tokens=self.config.max_tokens)
        self.truncated_[role] = tokens.truncated
        return tokens

    def _codes(self, labels: pl.Series) -> np.ndarray:
        position = {name: i for i, name in enumerate(self.classes_)}
        unknown = sorted(set(labels) - set(position))
        if unknown:
            raise DataError(
                f"{len(unknown)} label(s) never seen in training ({', '.join(unknown[:10])}); "
                "the classifier cannot score them: drop those texts or train on them"
            )
        return np.array([position[label] for label in labels], dtype=np.int64)

    def predict_proba(self, texts: list[str], *, role: str = "predict") -> np.ndarray:
        """Class probabilities (texts, classes) of already masked texts."""
        self.check_is_fitted()
        assert self.model_ is not None
        if self.tokenizer_ is None:
            return self._baseline_proba(self.model_, texts)
        logits = by_length(self.model_, self._encode(texts, role))
        return torch.softmax(logits.double(), dim=1).numpy()

    def _baseline_proba(self, model: nn.Module, texts: list[str]) -> np.ndarray:
        assert self.features_ is not None
        with torch.no_grad():
            logits = model(sparse_tensor(self.features_.transform(texts)))
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, source: TextSource) -> pl.DataFrame:
        """Per text: the label, its probability, and the top-3 labels with theirs."""
        frame = self._texts(source)
        return self._labels(frame, self.predict_proba(frame["text"].to_list()))

    def _labels(self, frame: pl.DataFrame, probabilities: np.ndarray) -> pl.DataFrame:
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
        """Metrics of the model, the TF-IDF baseline and the majority class on labelled test
        texts, each with McNemar's test against the one below it."""
        frame = self._labelled(test, "test")
        labels = self._codes(frame["label"])
        texts = frame["text"].to_list()
        probabilities = {self.config.model: self.predict_proba(texts, role="test")}
        if self.baseline_ is not None:
            probabilities[BASELINE] = self._baseline_proba(self.baseline_, texts)
        majority = np.zeros((len(labels), len(self.classes_)))
        majority[:, self.majority_] = 1.0
        probabilities[MAJORITY] = majority
        rows = {
            name: classification_metrics(labels, p, self.classes_)
            for name, p in probabilities.items()
        }
        correct = {name: p.argmax(axis=1) == labels for name, p in probabilities.items()}
        # the model against the TF-IDF baseline; the baseline against the majority class
        for name, reference in ((self.config.model, BASELINE), (BASELINE, MAJORITY)):
            if name != reference and name in correct:
                _, p_value = mcnemar_test(correct[name], correct[reference])
                rows[name][f"mcnemar_p_vs_{reference}"] = p_value
        self.metrics_ = {
            "models": rows,
            "classes": self.classes_,
            "masked": dict(self.masked_),
            "truncated": dict(self.truncated_),
        }
        self.predictions_ = self._labels(frame, probabilities[self.config.model])
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
