from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepfin import TextClassifier, load_run
from deepfin.data.text.tokens import TextTokenizer
from deepfin.errors import ConfigError
from deepfin.tasks.text.config import load_text_config
from deepfin.training import TrainingConfig
from tests.tasks.text.test_estimator import planted_texts

QUICK = TrainingConfig(epochs=20, batch_size=32, progress=False, learning_rate=1e-2)


def test_frozen_minilm_learns_a_planted_sentiment_beside_both_baselines(tmp_path: Path) -> None:
    frame = planted_texts(500, seed=1)
    train, val, test = frame[:300], frame[300:380], frame[380:]
    classifier = TextClassifier(model="minilm", max_tokens=18, training=QUICK)
    metrics = classifier.fit(train, val).evaluate(test)
    rows = metrics["models"]
    assert list(rows) == ["minilm", "tfidf_logistic", "majority"]
    assert rows["minilm"]["accuracy"] > 0.9
    assert 0 <= rows["minilm"]["mcnemar_p_vs_tfidf_logistic"] <= 1
    assert rows["tfidf_logistic"]["mcnemar_p_vs_majority"] < 1e-6
    assert metrics["truncated"] == {"train": 0, "val": 0, "test": 0}
    classifier.predict(pl.DataFrame({"text": ["profit rose " * 30, "sales fell"]}))
    assert classifier.truncated_["predict"] == 1  # cut to 18 tokens, and counted
    assert classifier.history_.best_epoch >= 1  # the validation texts chose the kept epoch
    assert classifier.history_.selected_by == "val_score"  # by accuracy
    # the head trained alone on stored embeddings predicts as the whole model does
    val_loss = classifier.evaluate(val)["models"]["minilm"]["log_loss"]
    assert val_loss == pytest.approx(classifier.history_.best_loss, rel=1e-4)
    metrics = classifier.evaluate(test)
    classifier.save(tmp_path / "run")
    assert (tmp_path / "run" / "tokenizer.json").is_file()
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded, TextClassifier) and loaded.config == classifier.config
    np.testing.assert_allclose(
        np.vstack(loaded.predict(test)["top_probabilities"].to_list()),
        np.vstack(classifier.predict(test)["top_probabilities"].to_list()),
        rtol=1e-6,
    )
    again = loaded.evaluate(test)["models"]
    for name, row in rows.items():
        assert again[name]["accuracy"] == row["accuracy"]
        assert again[name]["log_loss"] == pytest.approx(row["log_loss"], rel=1e-6)


def test_fine_tuning_trains_the_encoder_and_round_trips(tmp_path: Path) -> None:
    frame = planted_texts(160, seed=2)
    training = TrainingConfig(
        epochs=1, batch_size=16, learning_rate=1e-4, warmup_fraction=0.2,
        lr_schedule="linear", progress=False,
    )  # fmt: skip
    classifier = TextClassifier(model="minilm", fine_tune=True, max_tokens=24, training=training)
    pretrained = TextClassifier(model="minilm", training=QUICK).fit(frame[:120])
    classifier.fit(frame[:120])
    assert classifier.model_ is not None and pretrained.model_ is not None
    tuned_weight = classifier.model_.embedding.encoder.tokens.weight
    fixed_weight = pretrained.model_.embedding.encoder.tokens.weight
    assert not tuned_weight.equal(fixed_weight)  # the encoder moved
    classifier.evaluate(frame[120:])
    classifier.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert loaded.predict(frame[120:]).equals(classifier.predict(frame[120:]))


def test_fine_tuning_starts_from_settings_that_suit_it_unless_the_user_gives_others() -> None:
    tuned = TextClassifier(model="minilm", fine_tune=True).training
    assert (tuned.learning_rate, tuned.warmup_fraction, tuned.lr_schedule) == (5e-5, 0.1, "linear")
    assert TextClassifier().training == TrainingConfig()  # TF-IDF: nothing to tune
    run = load_text_config(overrides={"data.source": "x.csv", "text.model": "minilm",
                                      "text.fine_tune": True, "training.epochs": 2})  # fmt: skip
    assert run.training.epochs == 2 and run.training.learning_rate == 5e-5
    frozen = load_text_config(overrides={"data.source": "x.csv", "text.model": "minilm"})
    assert (frozen.training.epochs, frozen.training.patience) == (100, 10)


def test_fine_tune_is_refused_for_a_model_with_nothing_pretrained() -> None:
    with pytest.raises(ConfigError, match="tfidf_logistic has no pretrained encoder"):
        TextClassifier(fine_tune=True)
    with pytest.raises(ConfigError, match="--fine-tune"):
        TextClassifier(model="minilm", model_params={"fine_tune": True})


@pytest.mark.parametrize("model", ["text_transformer", "text_hybrid"])
def test_a_model_from_scratch_learns_a_planted_sentiment_on_its_own_vocabulary(
    model: str, tmp_path: Path
) -> None:
    frame = planted_texts(700, seed=3)
    test = frame[600:].with_columns(pl.col("sentence") + " zebracorn")  # a word of test only
    training = TrainingConfig(epochs=8, batch_size=32, progress=False, patience=3)
    classifier = TextClassifier(model=model, vocab_size=300, training=training)
    metrics = classifier.fit(frame[:500], frame[500:600]).evaluate(test)
    assert metrics["models"][model]["accuracy"] > 0.9
    assert classifier.tokenizer_ is not None and classifier.tokenizer_.vocab_size <= 300
    assert "zebracorn" not in classifier.tokenizer_.tokenizer.get_vocab()
    everything = TextTokenizer.train(
        pl.concat([frame[:500], test])["sentence"].to_list(), vocab_size=300
    )
    assert "zebracorn" in everything.tokenizer.get_vocab()  # it would be, had test texts leaked
    classifier.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert loaded.predict(test).equals(classifier.predict(test))
