from pathlib import Path

import numpy as np
import polars as pl
import pytest
from plotly.offline import get_plotlyjs

from deepfin import TextClassifier, load_run
from deepfin.data.text.splits import split_texts
from deepfin.errors import DataError, RunFolderError
from deepfin.report.text import write_text_report
from deepfin.tasks.text.config import TextDataConfig
from deepfin.tasks.text.files import run_text
from deepfin.training import TrainingConfig
from tests.conftest import SHARED_DATA

WORDS = {
    "positive": ("profit rose", "record sales", "beat forecasts"),
    "negative": ("loss widened", "sales fell", "profit warning"),
    "neutral": ("meeting held", "board appointed", "report published"),
}
FILLER = ("the company said", "in the quarter", "shares of", "on tuesday", "analysts")
PLANTED = ("jane.roe@example.com", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32")


def planted_texts(n: int, seed: int = 0, *, personal: bool = False) -> pl.DataFrame:
    """A sentiment phrase among filler; some texts carry an e-mail, a card or an IBAN."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(list(WORDS), n, p=[0.3, 0.2, 0.5])
    texts = []
    for i, label in enumerate(labels):
        parts = [*rng.choice(FILLER, 3), rng.choice(WORDS[label]), f"item {i}"]
        if personal and i % 10 == 0:
            parts.append(f"contact {PLANTED[i % 3]}")
        texts.append(" ".join(rng.permutation(parts)))
    return pl.DataFrame({"sentence": texts, "sentiment": labels})


def test_a_planted_sentiment_is_learned_and_judged_against_the_majority(tmp_path: Path) -> None:
    frame = planted_texts(900)
    classifier = TextClassifier().fit(frame.head(700))
    metrics = classifier.evaluate(frame.tail(200))
    rows = metrics["models"]
    assert rows["tfidf_logistic"]["accuracy"] > 0.95
    assert rows["majority"]["accuracy"] == pytest.approx(
        (frame.tail(200)["sentiment"] == "neutral").mean()
    )
    assert rows["tfidf_logistic"]["mcnemar_p_vs_majority"] < 1e-6
    predicted = classifier.predict(frame.tail(5))
    assert predicted.columns == [
        "text", "predicted", "probability", "top_labels", "top_probabilities", "label"
    ]  # fmt: skip
    assert (predicted["top_labels"].list.first() == predicted["predicted"]).all()
    classifier.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded, TextClassifier)
    assert loaded.predict(frame.tail(50)).equals(classifier.predict(frame.tail(50)))
    assert loaded.metrics_ == classifier.metrics_


def test_no_file_of_the_run_folder_holds_the_personal_data_of_the_texts(tmp_path: Path) -> None:
    source = tmp_path / "messages.csv"
    planted_texts(600, personal=True).write_csv(source)
    classifier = TextClassifier(
        model="text_hybrid", training=TrainingConfig(epochs=2, progress=False)
    )
    metrics = run_text(
        classifier, TextDataConfig(source=str(source)), run_dir=tmp_path / "run", seed=0
    )
    write_text_report(classifier, tmp_path / "run" / "report.html")
    assert "Which words drove the prediction" in (tmp_path / "run" / "report.html").read_text()
    assert metrics["masked"]["email"] and metrics["masked"]["card"] and metrics["masked"]["iban"]
    pieces = [value.split()[0] for value in PLANTED] + ["roe", "5698", "west"]
    for path in (tmp_path / "run").rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes().lower()
        if path.suffix == ".parquet":  # compressed: read its texts instead
            content = " ".join(pl.read_parquet(path)["text"].to_list()).lower().encode()
        if path.suffix == ".safetensors":  # names in its JSON header; the rest is floats
            content = content[8 : 8 + int.from_bytes(content[:8], "little")]
        if path.suffix == ".html":  # the page less the plotly.js it embeds (1114111 and such)
            content = content.replace(get_plotlyjs().lower().encode(), b"")
        for piece in pieces:
            assert piece.lower().encode() not in content, (path.name, piece)
    assert "[EMAIL]" in " ".join(pl.read_parquet(tmp_path / "run" / "predictions.parquet")["text"])


SCORE = {"positive": 0.6, "negative": -0.6, "neutral": 0.0}


def planted_scores(n: int, seed: int = 0) -> pl.DataFrame:
    """Planted texts whose sentiment score is the phrase's score plus noise, in [-1, 1]."""
    frame = planted_texts(n, seed)
    noise = np.random.default_rng(seed + 1).normal(0, 0.1, n)
    score = np.clip(frame["sentiment"].replace_strict(SCORE).to_numpy() + noise, -1, 1)
    return frame.with_columns(pl.Series("sentiment", score))


def test_fractional_labels_are_scores_learned_beside_ridge_and_the_mean(tmp_path: Path) -> None:
    frame = planted_scores(900)
    classifier = TextClassifier().fit(frame.head(700))
    assert classifier.scores_ and classifier.model_name == "tfidf_ridge"
    metrics = classifier.evaluate(frame.tail(200))
    rows = metrics["models"]
    assert list(rows) == ["tfidf_ridge", "mean"] and metrics["task"] == "scores"
    assert rows["tfidf_ridge"]["r2"] > 0.7 and rows["tfidf_ridge"]["pearson"] > 0.85
    assert rows["tfidf_ridge"]["dm_p_vs_mean"] < 1e-6
    actual = frame.tail(200)["sentiment"].to_numpy()
    assert rows["mean"]["mse"] == pytest.approx(
        np.mean((actual - frame.head(700)["sentiment"].mean()) ** 2)
    )
    predicted = classifier.predict(frame.tail(5))
    assert predicted.columns == ["text", "predicted", "label"]
    classifier.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert loaded.predict(frame.tail(50)).equals(classifier.predict(frame.tail(50)))


def test_a_network_learns_scores_with_a_squared_loss() -> None:
    frame = planted_scores(600, seed=4)
    training = TrainingConfig(epochs=8, batch_size=32, progress=False, patience=3)
    classifier = TextClassifier(model="text_hybrid", vocab_size=300, training=training)
    rows = classifier.fit(frame[:400], frame[400:500]).evaluate(frame[500:])["models"]
    assert list(rows) == ["text_hybrid", "tfidf_ridge", "mean"]
    assert rows["text_hybrid"]["r2"] > 0.6
    assert 0 <= rows["text_hybrid"]["dm_p_vs_tfidf_ridge"] <= 1


def test_whole_numbers_stay_classes_and_a_split_keeps_each_tenth_of_the_scores() -> None:
    codes = planted_texts(300).with_columns(
        pl.col("sentiment").replace_strict({"negative": 0.0, "neutral": 1.0, "positive": 2.0})
    )
    classifier = TextClassifier().fit(codes)
    assert not classifier.scores_ and classifier.classes_ == ["0", "1", "2"]
    split = split_texts(
        planted_scores(1000).rename({"sentence": "text", "sentiment": "label"}), seed=0
    )
    assert split.test.height == pytest.approx(100, abs=10)
    assert split.test["label"].mean() == pytest.approx(split.train["label"].mean(), abs=0.05)


def test_labels_the_classifier_cannot_score_are_refused(tmp_path: Path) -> None:
    frame = planted_texts(300)
    with pytest.raises(DataError, match="every training text has the label"):
        TextClassifier().fit(frame.with_columns(pl.lit("neutral").alias("sentiment")))
    scores = planted_scores(200)
    with pytest.raises(DataError, match="labelled with classes; the model learned scores"):
        TextClassifier().fit(scores).evaluate(frame)
    classifier = TextClassifier().fit(frame)
    unseen = pl.DataFrame({"text": ["profit rose again"], "label": ["ecstatic"]})
    with pytest.raises(DataError, match=r"never seen in training \(ecstatic\)"):
        classifier.evaluate(unseen)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("someone else's")
    with pytest.raises(RunFolderError, match="already holds files"):
        run_text(
            classifier,
            TextDataConfig(source=str(tmp_path / "x.csv")),
            run_dir=tmp_path / "run",
            seed=0,
        )


def test_an_altered_vocabulary_is_refused_on_load(tmp_path: Path) -> None:
    classifier = TextClassifier().fit(planted_texts(300))
    classifier.save(tmp_path / "run")
    preprocess = tmp_path / "run" / "preprocess.json"
    preprocess.write_text(preprocess.read_text().replace('"profit"', '"prophet"'))
    with pytest.raises(RunFolderError):
        load_run(tmp_path / "run")


def test_the_phrasebank_s_tfidf_baseline(tmp_path: Path) -> None:
    path = SHARED_DATA / "financial_phrasebank" / "Sentences_50Agree.txt"
    if not path.exists():
        pytest.skip(f"real-data test: {path} is absent (needs ../shared/data beside the repo)")
    metrics = run_text(
        TextClassifier(), TextDataConfig(source=str(path)), run_dir=tmp_path / "run", seed=0
    )
    assert metrics["split"]["duplicates_removed"] > 0
    row = metrics["models"]["tfidf_logistic"]
    # a bag of words reaches about 0.80 on the 50%-agreement file; the majority class 0.59
    assert row["accuracy"] > 0.75 and metrics["models"]["majority"]["accuracy"] < 0.65
