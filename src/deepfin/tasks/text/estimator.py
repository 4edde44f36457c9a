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
from deepfin.data.text.splits import is_scores
from deepfin.data.text.tfidf import TfidfFeatures, sparse_tensor
from deepfin.data.text.tokens import TextTokenizer, TokenIds
from deepfin.errors import DataError
from deepfin.metrics.multiclass import class_rows
from deepfin.models import MODELS, build_text_model, hyperparameters
from deepfin.tasks.base import Estimator
from deepfin.tasks.text.config import TFIDF_MODELS, TextConfig, training_defaults
from deepfin.tasks.text.evaluation import labelled, score_rows, softmax
from deepfin.tasks.text.fitting import (
    by_length,
    cross_entropy,
    encode,
    fit_token_model,
    score_loss,
    start_weights,
)
from deepfin.training import History, TrainingConfig

log = logging.getLogger(__name__)

MAJORITY, MEAN = "majority", "mean"


class TextClassifier(Estimator):
    """Labels texts: the most probable class, its probability and the runners-up; or, for
    labels that are fractional numbers (sentiment scores), a score."""

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
        start_from: str | None = None,
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
            start_from=start_from,
        )
        self.training = training or TrainingConfig(**training_defaults(model, fine_tune=fine_tune))
        self.model_: nn.Module | None = None
        self.baseline_: nn.Module | None = None  # the TF-IDF baseline, when it is not the model
        self.features_: TfidfFeatures | None = None
        self.tokenizer_: TextTokenizer | None = None  # token models only
        self.history_: History = History()
        self.truncated_: dict[str, int] = {}
        self.classes_: list[str] = []
        self.majority_: int = 0
        self.scores_: bool = False  # learned: fractional-number labels make a regression
        self.mean_: float = 0.0  # the training texts' mean score
        self.masked_: dict[str, int] = {}
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {**dataclasses.asdict(self.config), "training": dataclasses.asdict(self.training)}

    def _texts(self, source: TextSource | pl.DataFrame) -> pl.DataFrame:
        """`text` (masked unless switched off) and `label` (class names as text; scores as
        numbers) of a source."""
        frame = read_texts(source)
        if "label" in frame.columns and not is_scores(frame["label"]):
            whole = frame.schema["label"].is_float()  # 0.0, 1.0, 2.0: classes after all
            label = pl.col("label").cast(pl.Int64) if whole else pl.col("label")
            frame = frame.with_columns(label.cast(pl.String))
        if not self.config.mask_personal_data:
            return frame
        masked, counts = mask_texts(frame["text"].to_list())
        for kind, count in counts.items():
            self.masked_[kind] = self.masked_.get(kind, 0) + count
        return frame.with_columns(pl.Series("text", masked))

    def fit(self, train: TextSource, val: TextSource | None = None) -> TextClassifier:
        """Learn the vocabulary, the TF-IDF baseline and the model from labelled training texts
        (classes, or scores when the labels are fractional numbers); for a trained network,
        `val` chooses the epoch kept."""
        self.masked_, self.truncated_ = {}, {}
        start = None  # checked before anything is fitted
        if self.config.start_from is not None:
            from deepfin.tasks.text.files import start_run

            start = start_run(self.config.start_from, self.config.model)
        frame = self._labelled(train, "training")
        self.scores_ = is_scores(frame["label"])
        targets = self._learn_targets(frame["label"])
        texts = frame["text"].to_list()
        self.features_ = TfidfFeatures(ngram_max=self.config.ngram_max, min_df=self.config.min_df)
        outputs = 1 if self.scores_ else len(self.classes_)
        tfidf = self.baseline_name
        baseline = build_text_model(
            tfidf,
            n_features=self.features_.fit(texts).n_features,
            n_classes=outputs,
            params=self.config.model_params if self.config.model == tfidf else None,
        )
        baseline.fit_closed_form(self.features_.transform(texts), targets)  # type: ignore[operator]
        if self.config.model in TFIDF_MODELS:  # the task's own TF-IDF model
            self.model_, self.baseline_, self.tokenizer_ = baseline.eval(), None, None
            return self
        self.baseline_ = baseline.eval()
        self.tokenizer_ = start[0] if start is not None else self._tokenizer(texts)
        tokens = self._encode(texts, "train")
        torch.manual_seed(self.training.seed)
        params = dict(self.config.model_params)
        if "fine_tune" in hyperparameters(self.config.model):
            params["fine_tune"] = self.config.fine_tune
        model = build_text_model(
            self.config.model,
            n_features=self.tokenizer_.vocab_size,
            n_classes=outputs,
            params=params,
        )
        load_pretrained = getattr(model, "load_pretrained", None)
        if start is not None:
            start_weights(model, start[1], self.config.start_from)
        elif callable(load_pretrained):  # else the network starts from random weights
            load_pretrained()
        held_out = None
        if val is not None:
            val_frame = self._labelled(val, "validation")
            val_targets = self._targets(val_frame["label"])
            held_out = (self._encode(val_frame["text"].to_list(), "val"), val_targets)
        else:
            log.warning("no validation texts: the network trains every epoch; the last is kept")
        loss = score_loss if self.scores_ else cross_entropy
        self.history_ = fit_token_model(
            model, tokens, targets, held_out, training=self.training, loss_fn=loss
        )
        self.model_ = model.eval()
        return self

    @property
    def baseline_name(self) -> str:
        """The TF-IDF model every other is judged against: logistic for classes, ridge for
        scores."""
        return TFIDF_MODELS[1] if self.scores_ else TFIDF_MODELS[0]

    @property
    def model_name(self) -> str:
        """The fitted model's name (a TF-IDF model asked for is the task's own)."""
        return self.baseline_name if self.config.model in TFIDF_MODELS else self.config.model

    def _learn_targets(self, labels: pl.Series) -> np.ndarray:
        """Classes (or the mean score) of the training labels, and the labels as targets."""
        if self.scores_:
            self.classes_, self.mean_ = [], float(labels.mean())  # type: ignore[arg-type]
            return self._targets(labels)
        counts = Counter(labels.to_list())
        if len(counts) < 2:
            raise DataError(
                f"every training text has the label {labels[0]!r}; a classifier needs "
                "at least two classes"
            )
        self.classes_ = sorted(counts)
        self.majority_ = self.classes_.index(counts.most_common(1)[0][0])
        return self._targets(labels)

    def _targets(self, labels: pl.Series) -> np.ndarray:
        """Scores as float32, or class names as codes (unknown names refused)."""
        if self.scores_:
            if not is_scores(labels) and not labels.dtype.is_numeric():
                raise DataError("these texts are labelled with classes; the model learned scores")
            return labels.cast(pl.Float32).to_numpy().copy()  # writable, for torch
        return self._codes(labels)

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

    def outputs(self, texts: list[str], *, role: str = "predict") -> np.ndarray:
        """The model's raw outputs (texts, classes) (logits; one score column for scores) of
        already masked texts."""
        self.check_is_fitted()
        assert self.model_ is not None
        if self.tokenizer_ is None:
            return self._tfidf_outputs(self.model_, texts)
        return by_length(self.model_, self._encode(texts, role)).double().numpy()

    def _tfidf_outputs(self, model: nn.Module, texts: list[str]) -> np.ndarray:
        assert self.features_ is not None
        with torch.no_grad():
            return model(sparse_tensor(self.features_.transform(texts))).double().numpy()

    def predict_proba(self, texts: list[str], *, role: str = "predict") -> np.ndarray:
        """Class probabilities (texts, classes) of already masked texts."""
        if self.scores_:
            raise DataError("this model scores texts; it has no class probabilities")
        return softmax(self.outputs(texts, role=role))

    def predict(self, source: TextSource) -> pl.DataFrame:
        """Per text: the label, its probability and the top-3 labels with theirs (or the
        predicted score)."""
        frame = self._texts(source)
        return labelled(
            frame, self.outputs(frame["text"].to_list()), self.classes_, scores=self.scores_
        )

    def evaluate(self, test: TextSource) -> dict[str, Any]:
        """Metrics of the model, the TF-IDF baseline and the majority class (the training
        mean, for scores) on labelled test texts, each tested against the row below it."""
        frame = self._labelled(test, "test")
        targets = self._targets(frame["label"])
        texts = frame["text"].to_list()
        outputs = {self.model_name: self.outputs(texts, role="test")}
        if self.baseline_ is not None:
            outputs[self.baseline_name] = self._tfidf_outputs(self.baseline_, texts)
        if self.scores_:
            predicted = {name: out[:, 0] for name, out in outputs.items()}
            rows = score_rows(
                targets.astype(np.float64), predicted | {MEAN: np.full(len(targets), self.mean_)}
            )
        else:
            majority = np.zeros((len(targets), len(self.classes_)))
            majority[:, self.majority_] = 1.0
            probabilities = {name: softmax(out) for name, out in outputs.items()}
            rows = class_rows(targets, probabilities | {MAJORITY: majority}, self.classes_)
        self.metrics_ = {
            "task": "scores" if self.scores_ else "classes",
            "models": rows,
            "classes": self.classes_,
            "masked": dict(self.masked_),
            "truncated": dict(self.truncated_),
        }
        self.predictions_ = labelled(
            frame, outputs[self.model_name], self.classes_, scores=self.scores_
        )
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
