"""TF-IDF features of texts, fitted on the training texts only; saved as JSON and an array.

scikit-learn's TfidfVectorizer does the counting; its learned state (the vocabulary and the
inverse document frequencies) is all a run folder keeps, as JSON and safetensors: loading one
executes no code from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from deepfin.errors import DataError, RunFolderError


@dataclass
class TfidfFeatures:
    """Sublinear TF-IDF of word n-grams (1..ngram_max) seen in at least `min_df` texts."""

    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 50_000
    vocabulary_: dict[str, int] = field(default_factory=dict)
    idf_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=(1, self.ngram_max),
            min_df=self.min_df if vocabulary is None else 1,
            max_features=self.max_features if vocabulary is None else None,
            sublinear_tf=True,
            strip_accents="unicode",
            dtype=np.float32,
            vocabulary=vocabulary,
        )

    def fit(self, texts: list[str]) -> TfidfFeatures:
        """Learn the vocabulary and the IDF weights of `texts`."""
        vectorizer = self._vectorizer()
        try:
            vectorizer.fit(texts)
        except ValueError as error:  # scikit-learn: "empty vocabulary", "no terms remain"
            raise DataError(
                f"the {len(texts)} training texts hold no word seen in {self.min_df} or more "
                f"of them ({error}); give more texts or a lower min_df"
            ) from error
        self.vocabulary_ = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        self.idf_ = vectorizer.idf_.astype(np.float64)
        return self

    @property
    def n_features(self) -> int:
        """Columns of the features: the vocabulary's size."""
        return len(self.vocabulary_)

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """Rows of L2-normalised TF-IDF, (texts, vocabulary) float32."""
        if not self.vocabulary_:
            raise DataError("these TF-IDF features are not fitted; call fit(texts) first")
        vectorizer = self._vectorizer(self.vocabulary_)
        vectorizer.idf_ = self.idf_
        return sparse.csr_matrix(vectorizer.transform(texts), dtype=np.float32)

    def to_state(self) -> tuple[dict[str, Any], np.ndarray]:
        """Settings and vocabulary (JSON), and the IDF weights (an array for safetensors)."""
        settings = {"ngram_max": self.ngram_max, "min_df": self.min_df}
        settings["max_features"] = self.max_features
        return {"settings": settings, "vocabulary": self.vocabulary_}, self.idf_

    @classmethod
    def from_state(cls, state: dict[str, Any], idf: np.ndarray) -> TfidfFeatures:
        """The features `to_state` described; a vocabulary that does not fit its IDF fails."""
        vocabulary = state.get("vocabulary")
        if not isinstance(vocabulary, dict) or sorted(vocabulary.values()) != list(range(len(idf))):
            raise RunFolderError(
                f"the TF-IDF vocabulary does not index its {len(idf)} IDF weights one to one; "
                "the run folder was altered: train it again"
            )
        features = cls(**state.get("settings", {}))
        features.vocabulary_, features.idf_ = vocabulary, np.asarray(idf, dtype=np.float64)
        return features


def sparse_tensor(x: sparse.csr_matrix) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse COO tensor of the same values (float32)."""
    coo = x.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    tensor = torch.sparse_coo_tensor(indices, values, size=x.shape, check_invariants=True)
    return tensor.coalesce()
