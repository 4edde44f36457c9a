import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from deepfin.data.text.tfidf import TfidfFeatures, sparse_tensor
from deepfin.errors import ConfigError, DataError, RunFolderError
from deepfin.models import build_text_model, model_config

WORDS = {0: ("profit", "rose", "record"), 1: ("loss", "fell", "warning"), 2: ("meeting", "held")}


def _texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Planted sentiment: each text draws two words of its class among common filler."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, size=n)
    filler = ["the", "company", "said", "in", "quarter", "shares", "today"]
    texts = [
        " ".join([*rng.choice(filler, 5), *rng.choice(WORDS[int(label)], 2)]) for label in labels
    ]
    return texts, labels


def test_tfidf_features_equal_scikit_learn_s_and_round_trip() -> None:
    texts, _ = _texts(300)
    features = TfidfFeatures(min_df=2).fit(texts)
    reference = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_features=50_000, sublinear_tf=True,
        strip_accents="unicode",
    ).fit(texts)  # fmt: skip
    assert features.vocabulary_ == reference.vocabulary_
    ours, theirs = features.transform(texts[:20]), reference.transform(texts[:20])
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-6)
    state, idf = features.to_state()
    again = TfidfFeatures.from_state(state, idf)
    assert (again.transform(texts[:20]) != ours).nnz == 0
    state["vocabulary"] = dict(list(state["vocabulary"].items())[:-1])
    with pytest.raises(RunFolderError, match="altered"):
        TfidfFeatures.from_state(state, idf)
    with pytest.raises(DataError, match="no word seen in 2 or more"):
        TfidfFeatures(min_df=2).fit(["one", "two"])


def test_the_logistic_baseline_is_scikit_learn_s_fit_and_learns_a_planted_sentiment() -> None:
    texts, labels = _texts(600)
    features = TfidfFeatures().fit(texts[:400])
    x_train, x_test = features.transform(texts[:400]), features.transform(texts[400:])
    model = build_text_model("tfidf_logistic", n_features=features.n_features, n_classes=3)
    model.fit_closed_form(x_train, labels[:400])
    with torch.no_grad():
        sparse_logits = model(sparse_tensor(x_test))
        dense_logits = model(torch.from_numpy(x_test.toarray()))
    torch.testing.assert_close(sparse_logits, dense_logits)
    reference = LogisticRegression(C=10.0, max_iter=1000).fit(x_train, labels[:400])
    np.testing.assert_allclose(
        torch.softmax(sparse_logits.double(), 1).numpy(), reference.predict_proba(x_test), atol=1e-5
    )
    assert (sparse_logits.argmax(1).numpy() == labels[400:]).mean() > 0.95
    assert model_config(model)["n_classes"] == 3


def test_two_classes_and_a_class_absent_from_training() -> None:
    texts, labels = _texts(300)
    keep = labels != 2  # class 2 is never seen: it gets no probability
    features = TfidfFeatures().fit([t for t, k in zip(texts, keep, strict=True) if k])
    x = features.transform([t for t, k in zip(texts, keep, strict=True) if k])
    model = build_text_model("tfidf_logistic", n_features=features.n_features, n_classes=3)
    model.fit_closed_form(x, labels[keep])
    with torch.no_grad():
        probabilities = torch.softmax(model(sparse_tensor(x)), 1)
    assert float(probabilities[:, 2].max()) < 1e-6
    reference = LogisticRegression(C=10.0, max_iter=1000).fit(x, labels[keep])
    np.testing.assert_allclose(probabilities[:, :2].numpy(), reference.predict_proba(x), atol=1e-5)
    with pytest.raises(ConfigError, match="single class"):
        model.fit_closed_form(x, np.zeros(x.shape[0], dtype=np.int64))
    with pytest.raises(ConfigError, match="c must be a number above 0"):
        build_text_model("tfidf_logistic", n_features=5, n_classes=2, params={"c": 0})


def test_the_ridge_baseline_is_scikit_learn_s_fit() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["up", "down", "flat", "the", "stock"], 6)) for _ in range(200)]
    scores = np.array([t.count("up") - t.count("down") for t in texts], dtype=float) / 6
    x = TfidfVectorizer().fit_transform(texts)
    model = build_text_model(
        "tfidf_ridge", n_features=x.shape[1], n_classes=1, params={"alpha": 0.5}
    )
    model.fit_closed_form(x, scores)
    reference = Ridge(alpha=0.5).fit(x, scores).predict(x)
    with torch.no_grad():
        ours = model(torch.from_numpy(x.toarray()).float())[:, 0].numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-5)
