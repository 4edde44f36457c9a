"""Deduplicated, stratified splits of labelled texts.

The same sentence in training and test data inflates accuracy (the PhraseBank repeats
sentences, and its agreement levels overlap), so texts are deduplicated on a normalised form
(case, accents, punctuation and spacing folded) before anything is split.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import polars as pl

from deepfin.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextSplit:
    """Training, validation (None when not asked for) and test texts, and how they were made."""

    train: pl.DataFrame
    val: pl.DataFrame | None
    test: pl.DataFrame
    duplicates_removed: int
    seed: int


def normalised(text: str) -> str:
    """The form two texts share when they are the same sentence written slightly apart."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def deduplicate(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The first of each group of texts with one normalised form, and how many were dropped.

    Copies that disagree on the label are counted out loud: the first label is kept.
    """
    keys = pl.Series("key", [normalised(text) for text in frame["text"]])
    keyed = frame.with_columns(keys)
    if "label" in frame.columns:
        conflicting = (
            keyed.group_by("key").agg(pl.col("label").n_unique()).filter(pl.col("label") > 1)
        )
        if conflicting.height:
            log.warning(
                "%d text(s) appear with different labels; keeping the first label of each",
                conflicting.height,
            )
    kept = keyed.unique(subset="key", keep="first", maintain_order=True).drop("key")
    return kept, frame.height - kept.height


def split_texts(
    frame: pl.DataFrame,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    test: pl.DataFrame | None = None,
) -> TextSplit:
    """Deduplicate, then split stratified by label with `seed` (or hold out the user's `test`).

    With the user's own test texts, those that also appear in the training texts are removed
    from the training side, so no test sentence was seen in training.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1:
        raise DataError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1)"
        )
    if test is None and not test_fraction > 0:
        raise DataError("test_fraction must be above 0 when no test texts are given")
    if val_fraction + (test_fraction if test is None else 0) >= 1:
        raise DataError("val_fraction and test_fraction leave no texts for training")
    frame, removed = deduplicate(frame)
    if test is not None:
        test, removed_test = deduplicate(test)
        seen = {normalised(text) for text in test["text"]}
        overlap = pl.Series([normalised(text) in seen for text in frame["text"]])
        removed += removed_test + int(overlap.sum())
        frame = frame.filter(~overlap)
    if removed:
        log.warning("removed %d duplicate text(s) before splitting", removed)
    scores = "label" in frame.columns and is_scores(frame["label"])
    labels = strata(frame["label"]) if "label" in frame.columns else None
    if labels is not None and len(np.unique(labels)) < 2:
        raise DataError(
            f"every text has the label {labels[0]!r}; a classifier needs at least two classes"
        )
    rng = np.random.default_rng(seed)
    part = np.zeros(frame.height, dtype=np.int8)  # 0 train, 1 val, 2 test
    groups = (
        [np.arange(frame.height)]
        if labels is None
        else [np.flatnonzero(labels == label) for label in np.unique(labels)]
    )
    for rows in groups:
        rows = rng.permutation(rows)
        n_test = round(len(rows) * test_fraction) if test is None else 0
        n_val = round(len(rows) * val_fraction)
        part[rows[:n_test]] = 2
        part[rows[n_test : n_test + n_val]] = 1
    train = frame.filter(pl.Series(part == 0))
    if test is None:
        test = frame.filter(pl.Series(part == 2))
    elif labels is not None and not scores and "label" in test.columns:
        unseen = sorted(set(test["label"].cast(pl.String)) - set(train["label"].cast(pl.String)))
        if unseen:
            raise DataError(
                f"{len(unseen)} label(s) of the test texts never occur in training "
                f"({', '.join(unseen[:10])}); a model cannot predict them: add training "
                "texts of those labels or drop them from the test file"
            )
    val = frame.filter(pl.Series(part == 1)) if val_fraction else None
    return TextSplit(train=train, val=val, test=test, duplicates_removed=removed, seed=seed)


def is_scores(labels: pl.Series) -> bool:
    """Whether labels are scores: fractional numbers (whole numbers, even as floats, are
    class codes)."""
    if not labels.dtype.is_float():
        return False
    values = labels.drop_nulls().to_numpy()
    return bool(len(values)) and bool(np.any(values != np.round(values)))


def strata(labels: pl.Series) -> np.ndarray:
    """The groups a split keeps in proportion: each class, or each tenth of the scores."""
    if not is_scores(labels):
        return labels.cast(pl.String).to_numpy()
    values = labels.to_numpy().astype(np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(str)
