"""Labelled texts from files as they come: CSV, Parquet, JSON (lines or an array), pandas or
polars frames, and the Financial PhraseBank's `sentence@label` lines in UTF-8 or Latin-1."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from deepfin.data.files import frame_from, read_table
from deepfin.errors import DataError, FormatError, InputFileError

log = logging.getLogger(__name__)

TextSource = str | Path | pl.DataFrame | Any  # Any: a pandas DataFrame
# column names recognised when none is given, in order of preference
TEXT_NAMES = ("text", "sentence", "message", "title", "headline", "question", "body")
LABEL_NAMES = ("label", "category", "sentiment", "intent", "class", "target", "score")


def read_texts(
    source: TextSource, *, text_col: str | None = None, label_col: str | None = None
) -> pl.DataFrame:
    """A frame of `text` (str) and, where the source has one, `label`; empty texts dropped."""
    frame = _frame(source)
    text = text_col or _recognised(frame, TEXT_NAMES, "text", "--text-col")
    if text not in frame.columns:
        raise DataError(f"no column {text!r}; the columns are {frame.columns}: name the text one")
    label = label_col or next((c for c in LABEL_NAMES if c in frame.columns and c != text), None)
    if label is not None and label not in frame.columns:
        raise DataError(f"no column {label!r}; the columns are {frame.columns}: name the label one")
    if frame.schema[text] != pl.String:
        raise DataError(f"column {text!r} holds {frame.schema[text]}, not text: name the text one")
    columns = [pl.col(text).alias("text")] + ([pl.col(label).alias("label")] if label else [])
    texts = frame.select(columns).with_columns(pl.col("text").str.strip_chars())
    empty = texts["text"].is_null() | (texts["text"] == "")
    if empty.all():
        raise DataError(f"every one of the {frame.height} texts in column {text!r} is empty")
    if empty.any():
        log.warning("leaving out %d empty text(s) of %d", int(empty.sum()), frame.height)
        texts = texts.filter(~empty)
    if label is not None and texts["label"].null_count():
        missing = texts["label"].null_count()
        raise DataError(f"{missing} text(s) have no {label!r}; label them or drop them")
    return texts


def _recognised(frame: pl.DataFrame, names: tuple[str, ...], what: str, option: str) -> str:
    lower = {column.lower(): column for column in frame.columns}
    for name in names:
        if name in lower:
            return lower[name]
    raise DataError(
        f"no {what} column recognised among {frame.columns}; name it ({option} in the CLI)"
    )


def _frame(source: TextSource) -> pl.DataFrame:
    return frame_from(source, what="texts", read=read_text_file, files="CSV, Parquet, JSON or .txt")


def read_text_file(path: Path) -> pl.DataFrame:
    """The table of a file of texts: PhraseBank .txt, JSON (lines), CSV (UTF-8) or Parquet."""
    suffix = path.suffix.lower()
    if suffix == ".txt" and path.is_file():
        return _read_phrasebank(path)
    if suffix in (".json", ".jsonl", ".ndjson") and path.is_file():
        return _read_json(path)
    if suffix == ".csv" and path.is_file():
        _check_utf8(path)
    return read_table(path, "texts")


def _decoded(path: Path) -> str:
    """The file's text: UTF-8, else Latin-1 (the PhraseBank's own release), said out loud."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8; reading it as Latin-1", path)
        return raw.decode("latin-1")


def _check_utf8(path: Path) -> None:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise FormatError(
            f"{path} is not UTF-8 (byte {raw[error.start]:#04x} on line {line}); save it as "
            "UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from error


def _read_phrasebank(path: Path) -> pl.DataFrame:
    """`sentence@label` lines; the label follows the last `@` (a sentence may hold one)."""
    lines = [line.strip() for line in _decoded(path).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{path} is empty; it needs lines of sentence@label")
    bad = [number for number, line in enumerate(lines, 1) if "@" not in line]
    if bad:
        raise FormatError(
            f"{path}: {len(bad)} line(s) (first: line {bad[0]}) have no '@label'; a .txt file "
            "is read as the Financial PhraseBank's sentence@label lines, else pass a CSV"
        )
    sentences, labels = zip(*(line.rsplit("@", 1) for line in lines), strict=True)
    return pl.DataFrame({"text": list(sentences), "label": [label.strip() for label in labels]})


def _read_json(path: Path) -> pl.DataFrame:
    """JSON lines, an array of records, or an object of records keyed by id."""
    if not path.exists():
        raise InputFileError(f"no file at {path}; pass the path of a file of texts")
    text = _decoded(path)
    try:
        if path.suffix.lower() != ".json":
            return pl.DataFrame([json.loads(line) for line in text.splitlines() if line.strip()])
        payload = json.loads(text)
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise FormatError(f"could not read {path} as JSON ({error}); check the file") from error
    if isinstance(payload, dict):  # {"id": {record}, ...}
        payload = list(payload.values())
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise FormatError(f"{path} holds no list of records (objects with a text field)")
    return pl.DataFrame(payload, infer_schema_length=None) if payload else pl.DataFrame()
