from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepfin import TextClassifier, load_run
from deepfin.data.text.tokens import TextTokenizer
from deepfin.errors import ConfigError, RunFolderError
from deepfin.models import build_text_model
from deepfin.report.text import write_text_report
from deepfin.tasks.text.config import load_text_config
from deepfin.tasks.text.fitting import start_weights
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


def test_start_weights_copies_all_but_the_head_and_refuses_a_network_of_other_sizes() -> None:
    source = build_text_model("text_transformer", n_features=50, n_classes=3, params={})
    target = build_text_model("text_transformer", n_features=50, n_classes=2, params={})
    head = {k: v.clone() for k, v in target.state_dict().items() if k.startswith("head.")}
    start_weights(target, source, "run a")
    for key, value in target.state_dict().items():
        expected = head[key] if key.startswith("head.") else source.state_dict()[key]
        assert value.equal(expected), key
    wider = build_text_model("text_transformer", n_features=50, n_classes=2, params={"hidden": 32})
    with pytest.raises(ConfigError, match="start_from run a holds a network of other sizes"):
        start_weights(wider, source, "run a")


def test_a_run_started_from_another_learns_new_labels_from_few_texts(tmp_path: Path) -> None:
    frame = planted_texts(700, seed=4)
    training = TrainingConfig(epochs=8, batch_size=32, progress=False, patience=3)
    first = TextClassifier(model="text_transformer", vocab_size=300, training=training)
    first.fit(frame[:500], frame[500:600]).save(tmp_path / "first")
    # a new task on the same words: is the text good news or not, from 40 labelled texts
    news = planted_texts(400, seed=5).with_columns(
        pl.when(pl.col("sentiment") == "positive")
        .then(pl.lit("good"))
        .otherwise(pl.lit("other"))
        .alias("sentiment")
    )
    brief = TrainingConfig(epochs=3, batch_size=8, progress=False, patience=0)
    started = TextClassifier(
        model="text_transformer", vocab_size=300, start_from=str(tmp_path / "first"),
        training=brief,
    ).fit(news[:40])  # fmt: skip
    fresh = TextClassifier(model="text_transformer", vocab_size=300, training=brief)
    fresh.fit(news[:40])
    assert started.classes_ == ["good", "other"]
    assert started.tokenizer_ is not None and first.tokenizer_ is not None
    assert started.tokenizer_.to_json() == first.tokenizer_.to_json()
    accuracy = {
        name: model.evaluate(news[100:])["models"]["text_transformer"]["accuracy"]
        for name, model in (("started", started), ("fresh", fresh))
    }
    assert accuracy["started"] > 0.9
    assert accuracy["started"] > accuracy["fresh"] + 0.1
    started.save(tmp_path / "second")
    loaded = load_run(tmp_path / "second")
    assert isinstance(loaded, TextClassifier)
    assert loaded.config.start_from == str(tmp_path / "first")
    assert loaded.predict(news[100:]).equals(started.predict(news[100:]))
    page = write_text_report(loaded, tmp_path / "second" / "report.html").read_text()
    assert f"Training started from the run {tmp_path / 'first'}" in page


def test_start_from_is_refused_for_tfidf_another_model_or_a_folder_that_holds_no_run(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="start_from applies to the networks"):
        TextClassifier(start_from="runs/a")
    frame = planted_texts(200, seed=6)
    quick = TrainingConfig(epochs=1, batch_size=32, progress=False)
    TextClassifier(model="text_hybrid", vocab_size=200, training=quick).fit(frame).save(
        tmp_path / "hybrid"
    )
    other = TextClassifier(model="text_transformer", start_from=str(tmp_path / "hybrid"))
    with pytest.raises(ConfigError, match="holds a text_hybrid run; this one trains"):
        other.fit(frame)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError):
        TextClassifier(model="text_hybrid", start_from=str(tmp_path / "empty")).fit(frame)
