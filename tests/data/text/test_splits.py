import numpy as np
import polars as pl
import pytest

from deepfin.data.text.reading import read_texts
from deepfin.data.text.splits import deduplicate, normalised, split_texts
from deepfin.errors import DataError
from tests.conftest import SHARED_DATA


def _texts(n: int, labels: tuple[str, ...] = ("neg", "neu", "pos")) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "text": [f"sentence number {i} about {rng.integers(10**6)}" for i in range(n)],
            "label": [labels[i % len(labels)] if i % 7 else labels[0] for i in range(n)],
        }
    )


def test_near_copies_share_a_normalised_form() -> None:
    assert (
        normalised("Café  sales ROSE, 5 % !")
        == normalised("cafe sales rose 5 %")
        == ("cafe sales rose 5")
    )
    frame = pl.DataFrame(
        {"text": ["Sales rose .", "sales rose", "Sales fell ."], "label": ["pos", "neg", "neg"]}
    )
    kept, removed = deduplicate(frame)
    assert removed == 1 and kept["text"].to_list() == ["Sales rose .", "Sales fell ."]
    assert kept["label"].to_list() == ["pos", "neg"]  # the first label of the copies


def test_a_stratified_split_keeps_class_shares_is_seeded_and_disjoint() -> None:
    frame = _texts(1000)
    copies = pl.concat([frame, frame.head(50).with_columns(pl.col("text").str.to_uppercase())])
    split = split_texts(copies, val_fraction=0.1, test_fraction=0.1, seed=3)
    assert split.duplicates_removed == 50
    assert split.val is not None
    assert (split.train.height, split.val.height, split.test.height) == (800, 100, 100)
    shares = frame["label"].value_counts(normalize=True).sort("label")["proportion"]
    for part in (split.train, split.val, split.test):
        part_shares = part["label"].value_counts(normalize=True).sort("label")["proportion"]
        np.testing.assert_allclose(part_shares, shares, atol=0.01)
    keys = [{normalised(t) for t in part["text"]} for part in (split.train, split.val, split.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    again = split_texts(copies, val_fraction=0.1, test_fraction=0.1, seed=3)
    assert again.test.equals(split.test)
    assert not split_texts(copies, seed=4).test.equals(split.test)


def test_a_test_file_of_its_own_leaves_training_without_its_sentences() -> None:
    frame = _texts(300)
    test = frame.tail(30).with_columns(pl.col("text").str.to_lowercase())
    split = split_texts(frame, val_fraction=0.1, test=test)
    assert split.test.height == 30 and split.duplicates_removed == 30
    assert split.val is not None and split.train.height + split.val.height == 270
    assert not {normalised(t) for t in split.test["text"]} & {
        normalised(t) for t in split.train["text"]
    }


def test_labels_a_model_cannot_learn_are_refused() -> None:
    with pytest.raises(DataError, match="at least two classes"):
        split_texts(_texts(50, labels=("only",)))
    test = pl.DataFrame({"text": ["brand new"], "label": ["unheard"]})
    with pytest.raises(DataError, match=r"never occur in training.*unheard"):
        split_texts(_texts(60), test=test)
    with pytest.raises(DataError, match="leave no texts"):
        split_texts(_texts(60), val_fraction=0.5, test_fraction=0.5)


def test_the_phrasebank_split_after_deduplication() -> None:
    path = SHARED_DATA / "financial_phrasebank" / "Sentences_50Agree.txt"
    if not path.exists():
        pytest.skip(f"real-data test: {path} is absent (needs ../shared/data beside the repo)")
    split = split_texts(read_texts(path), val_fraction=0.1, test_fraction=0.1, seed=0)
    assert split.duplicates_removed > 0  # the release repeats sentences
    assert split.val is not None
    total = split.train.height + split.val.height + split.test.height
    assert total == 4846 - split.duplicates_removed
    assert abs(split.test.height - total * 0.1) < 3
