"""FAQ answers: the answers whose questions are nearest a message, or no confident answer.

The questions of a FAQ table are embedded once by the pretrained sentence encoder (unit
vectors, so a dot product is the cosine similarity); an answer may be asked for in several
ways (rows with the same answer), and is as near a message as its nearest question. A message
gets its top-k answers. Below a
similarity threshold there is no confident answer: the threshold is the lowest at which at
least `target_precision` of held-out messages (each with the FAQ question that answers it, or
none) would get a right answer, so a customer is answered only where answers are mostly right.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from deepfin.data.files import frame_from
from deepfin.data.text.privacy import mask_texts
from deepfin.data.text.reading import TextSource, read_text_file, read_texts
from deepfin.data.text.tokens import TextTokenizer
from deepfin.errors import DataError
from deepfin.models.text.minilm import MiniLMClassifier, MiniLMConfig
from deepfin.models.text.pretrained import MAX_TOKENS, MINILM
from deepfin.tasks.base import Estimator
from deepfin.tasks.text.fitting import by_length, encode

log = logging.getLogger(__name__)
QUESTION_NAMES, ANSWER_NAMES = ("question", "q", "faq", "title"), ("answer", "a", "response")
DEFAULT_SIMILARITY = 0.5  # used, with a warning, when no held-out messages calibrate it


@dataclass(frozen=True)
class Calibration:
    """How the threshold was chosen: on how many held-out messages, with what result."""

    messages: int
    threshold: float
    precision: float  # right answers among the messages answered at the threshold
    coverage: float  # share of the answerable messages answered (rightly or not)


class FaqIndex(Estimator):
    """Answers messages from a FAQ table of questions and answers."""

    _fitted_attribute = "embeddings_"

    def __init__(
        self, *, target_precision: float = 0.9, min_similarity: float | None = None
    ) -> None:
        if not 0 < target_precision <= 1:
            raise DataError(f"target_precision must be in (0, 1]; got {target_precision}")
        self.target_precision = target_precision
        self.min_similarity = min_similarity
        self.embeddings_: torch.Tensor | None = None
        self.faq_: pl.DataFrame | None = None
        self.calibration_: Calibration | None = None
        self.threshold_: float = DEFAULT_SIMILARITY
        self.answers_: list[str] = []  # each answer once; several questions may ask for it
        self.rows_: list[np.ndarray] = []  # per answer, the rows of its questions

    def fit(self, faq: TextSource, held_out: TextSource | None = None) -> FaqIndex:
        """Embed the FAQ's questions; choose the threshold on `held_out` (message, question)."""
        self.faq_ = read_faq(faq)
        encoder = MiniLMClassifier(MiniLMConfig(n_features=MINILM.vocab_size, n_classes=2))
        encoder.load_pretrained()
        self._embedding = encoder.embedding.eval()
        self._tokenizer = TextTokenizer.from_file(MiniLMClassifier.pretrained_tokenizer())
        self.answers_ = list(dict.fromkeys(self.faq_["answer"].to_list()))
        owner = {answer: i for i, answer in enumerate(self.answers_)}
        owners = np.array([owner[answer] for answer in self.faq_["answer"]])
        self.rows_ = [np.flatnonzero(owners == i) for i in range(len(self.answers_))]
        self.embeddings_ = self._embed(self.faq_["question"].to_list())
        if self.min_similarity is not None:
            self.threshold_ = self.min_similarity
        elif held_out is not None:
            self.calibration_ = self._calibrate(held_out)
            self.threshold_ = self.calibration_.threshold
        else:
            log.warning(
                "no held-out messages to choose the similarity threshold on: using %.2f; give "
                "messages with the FAQ question that answers each (--held-out) to calibrate it",
                DEFAULT_SIMILARITY,
            )
        return self

    def _embed(self, texts: list[str]) -> torch.Tensor:
        masked, _ = mask_texts(texts)
        return by_length(self._embedding, encode(self._tokenizer, masked, max_tokens=MAX_TOKENS))

    def similarities(self, messages: list[str]) -> np.ndarray:
        """Cosine similarity (messages, FAQ questions) of each message to each question."""
        self.check_is_fitted()
        assert self.embeddings_ is not None
        return (self._embed(messages) @ self.embeddings_.T).numpy()

    def _by_answer(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per message and answer the similarity of the answer's nearest question, and that
        question's row: an answer asked in several ways is as near as its nearest way."""
        best = np.empty((len(similarity), len(self.answers_)))
        nearest = np.empty_like(best, dtype=np.int64)
        for answer, rows in enumerate(self.rows_):
            best[:, answer] = similarity[:, rows].max(axis=1)
            nearest[:, answer] = rows[similarity[:, rows].argmax(axis=1)]
        return best, nearest

    def answer(self, messages: list[str], *, top_k: int = 3) -> pl.DataFrame:
        """Per message its top-k answers: rank, the nearest question asking for it, the answer,
        their similarity, and whether it clears the threshold (confident)."""
        if top_k < 1:
            raise DataError(f"top_k must be at least 1; got {top_k}")
        assert self.faq_ is not None
        best, nearest = self._by_answer(self.similarities(messages))
        k = min(top_k, best.shape[1])
        order = np.argsort(-best, axis=1, kind="stable")[:, :k]  # (messages, k)
        rows = [
            {
                "message": message,
                "rank": rank + 1,
                "question": self.faq_["question"][int(nearest[row, answer])],
                "answer": self.answers_[int(answer)],
                "similarity": float(best[row, answer]),
                "confident": bool(best[row, answer] >= self.threshold_),
            }
            for row, message in enumerate(messages)
            for rank, answer in enumerate(order[row])
        ]
        return pl.DataFrame(rows)

    def _calibrate(self, held_out: TextSource) -> Calibration:
        assert self.faq_ is not None
        table = frame_from(held_out, what="held-out messages", read=read_text_file, files="CSV")
        if "question" not in table.columns:
            raise DataError(
                f"the held-out messages have no question column among {table.columns}: give "
                "each message the FAQ question that answers it (empty where none does)"
            )
        table = table.with_columns(pl.col("question").cast(pl.String).fill_null(""))
        frame = read_texts(table.rename({"question": "faq_question"}), label_col="faq_question")
        answer_of = dict(zip(self.faq_["question"], self.faq_["answer"], strict=True))
        position = {answer: i for i, answer in enumerate(self.answers_)}
        expected = [
            position[answer_of[q]] if q in answer_of else -1 for q in frame["label"].to_list()
        ]
        unknown = sum(1 for q in frame["label"] if q and q not in answer_of)
        if unknown:
            raise DataError(
                f"{unknown} held-out message(s) name a question that is not in the FAQ; give "
                "its exact text, or leave it empty for a message the FAQ cannot answer"
            )
        best, _ = self._by_answer(self.similarities(frame["text"].to_list()))
        return choose_threshold(
            best.max(axis=1),
            best.argmax(axis=1) == np.array(expected),
            answerable=np.array(expected) >= 0,
            target_precision=self.target_precision,
        )


def choose_threshold(
    best: np.ndarray, right: np.ndarray, *, answerable: np.ndarray, target_precision: float
) -> Calibration:
    """The lowest best-match similarity at which the answered messages are right at least
    `target_precision` of the time (the highest similarity seen when no cut reaches it)."""
    order = np.argsort(-best, kind="stable")
    precision = np.cumsum(right[order]) / np.arange(1, len(order) + 1)  # answering the top n
    reached = np.flatnonzero(precision >= target_precision)
    n = int(reached.max()) + 1 if len(reached) else 1
    if not len(reached):
        log.warning(
            "no similarity threshold reaches a precision of %.2f on the held-out messages; "
            "answering only the most similar one",
            target_precision,
        )
    threshold = float(best[order[n - 1]])
    answered = best >= threshold
    covered = (answered & answerable).sum() / max(1, answerable.sum())
    return Calibration(
        messages=len(best),
        threshold=threshold,
        precision=float(right[answered].mean()),
        coverage=float(covered),
    )


def read_faq(source: TextSource) -> pl.DataFrame:
    """A FAQ table of `question` and `answer` (both text, none empty, questions unique)."""
    frame = frame_from(source, what="FAQ", read=read_text_file, files="CSV, Parquet or JSON")
    names = {column.lower(): column for column in frame.columns}
    question = next((names[n] for n in QUESTION_NAMES if n in names), None)
    answer = next((names[n] for n in ANSWER_NAMES if n in names), None)
    if question is None or answer is None:
        missing = "question" if question is None else "answer"
        raise DataError(
            f"the FAQ has no {missing} column among {frame.columns}; it needs columns named "
            "question and answer"
        )
    faq = frame.select(
        pl.col(question).cast(pl.String).str.strip_chars().alias("question"),
        pl.col(answer).cast(pl.String).str.strip_chars().alias("answer"),
    )
    for column in ("question", "answer"):
        empty = faq[column].is_null() | (faq[column] == "")
        if empty.any():
            first = int(np.flatnonzero(empty.to_numpy())[0]) + 1
            raise DataError(
                f"{int(empty.sum())} FAQ entr(ies) have no {column} (first: row {first}); "
                f"fill them in or drop those rows"
            )
    duplicated = faq.filter(pl.col("question").is_duplicated())["question"].unique()
    if len(duplicated):
        raise DataError(
            f"{len(duplicated)} question(s) appear more than once in the FAQ (e.g. "
            f"{duplicated[0]!r}); keep one answer per question"
        )
    return faq
