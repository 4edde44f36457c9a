import json
from pathlib import Path

import polars as pl
import pytest

from deepfin.data.text.reading import read_texts
from deepfin.errors import DataError, FormatError
from tests.conftest import SHARED_DATA

ROWS = [
    ("Profit rose 5 % .", "positive"),
    ("Sales fell .", "negative"),
    ("Results @ noon .", "neutral"),
]


def test_every_table_format_gives_the_same_texts(tmp_path: Path) -> None:
    frame = pl.DataFrame({"Sentence": [t for t, _ in ROWS], "category": [lab for _, lab in ROWS]})
    frame.write_csv(tmp_path / "a.csv")
    frame.write_parquet(tmp_path / "a.parquet")
    records = frame.to_dicts()
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (tmp_path / "a.json").write_text(json.dumps(records))
    (tmp_path / "keyed.json").write_text(json.dumps({str(i): r for i, r in enumerate(records)}))
    expected = pl.DataFrame({"text": [t for t, _ in ROWS], "label": [lab for _, lab in ROWS]})
    sources = [frame, frame.to_pandas(), *(tmp_path / name for name in (
        "a.csv", "a.parquet", "a.jsonl", "a.json", "keyed.json"))]  # fmt: skip
    for source in sources:
        assert read_texts(source).equals(expected), source


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_phrasebank_lines_split_on_the_last_at_in_either_encoding(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "Sentences.txt"
    lines = [f"{text}@{label}" for text, label in ROWS] + ["Seppälä sold 2 @ 3 EUR .@neutral"]
    path.write_bytes("\r\n".join(lines).encode(encoding))
    texts = read_texts(path)
    assert texts["label"].to_list() == ["positive", "negative", "neutral", "neutral"]
    assert texts["text"][2] == "Results @ noon ." and texts["text"][3] == "Seppälä sold 2 @ 3 EUR ."


def test_named_columns_a_text_without_a_label_and_empty_texts(tmp_path: Path) -> None:
    frame = pl.DataFrame({"msg": ["hello", "", None, "  bye "], "y": ["a", "b", "c", "d"]})
    texts = read_texts(frame, text_col="msg", label_col="y")
    assert texts.to_dict(as_series=False) == {"text": ["hello", "bye"], "label": ["a", "d"]}
    assert read_texts(pl.DataFrame({"text": ["only text"]})).columns == ["text"]


@pytest.mark.parametrize(
    ("frame", "options", "message"),
    [
        (pl.DataFrame({"words": ["a"]}), {}, "no text column recognised"),
        (pl.DataFrame({"text": ["a"]}), {"label_col": "y"}, "no column 'y'"),
        (pl.DataFrame({"text": ["", None]}), {}, "every one of the 2 texts"),
        (pl.DataFrame({"text": [1, 2]}), {}, "not text"),
        (pl.DataFrame({"text": ["a", "b"], "label": ["x", None]}), {}, "1 text"),
        (pl.DataFrame({"text": []}, schema={"text": pl.String}), {}, "texts table is empty"),
    ],
)
def test_unusable_tables_say_what_to_do(frame: pl.DataFrame, options: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_texts(frame, **options)


def test_unreadable_files_say_what_they_are(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\nSepp\xe4l\xe4 rose,positive\n".encode("latin-1"))
    with pytest.raises(FormatError, match=r"not UTF-8 .* line 2"):
        read_texts(latin)
    lines = tmp_path / "notes.txt"
    lines.write_text("a sentence without a label\n")
    with pytest.raises(FormatError, match="no '@label'"):
        read_texts(lines)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"text": "a"')
    with pytest.raises(FormatError, match="as JSON"):
        read_texts(broken)
    with pytest.raises(DataError, match="cannot read texts from a list"):
        read_texts(["a", "b"])


def test_the_real_phrasebank_reads_with_its_published_label_counts() -> None:
    path = SHARED_DATA / "financial_phrasebank" / "Sentences_50Agree.txt"
    if not path.exists():
        pytest.skip(f"real-data test: {path} is absent (needs ../shared/data beside the repo)")
    texts = read_texts(path)
    counts = dict(texts["label"].value_counts().iter_rows())
    assert counts == {"neutral": 2879, "positive": 1363, "negative": 604}
