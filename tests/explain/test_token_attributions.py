import numpy as np
import pytest
import torch

from deepfin import TextClassifier
from deepfin.explain.attribution import token_attributions
from deepfin.models import build_text_model
from deepfin.report.text import explained_texts, merge_pieces
from deepfin.training import TrainingConfig
from tests.tasks.text.test_estimator import WORDS, planted_texts


@pytest.mark.parametrize("name", ["text_transformer", "text_hybrid"])
def test_attributions_add_up_to_the_change_from_zero_embeddings(name: str) -> None:
    torch.manual_seed(0)
    model = build_text_model(name, n_features=40, n_classes=3, params={"dropout": 0.0}).eval()
    ids = torch.randint(1, 40, (1, 7))
    mask = torch.ones(1, 7, dtype=torch.bool)
    values = token_attributions(model, ids, mask, output=2, steps=64)
    table = next(m for m in model.modules() if isinstance(m, torch.nn.Embedding))
    with torch.no_grad():
        full = model(ids, mask)[0, 2]
        handle = table.register_forward_hook(lambda module, inputs, out: torch.zeros_like(out))
        empty = model(ids, mask)[0, 2]
        handle.remove()
    assert values.shape == (7,)
    assert values.sum() == pytest.approx(float(full - empty), rel=1e-3, abs=1e-4)


def test_the_words_that_decide_the_label_carry_the_largest_attributions() -> None:
    frame = planted_texts(800, seed=5)
    training = TrainingConfig(epochs=10, batch_size=32, progress=False, patience=3)
    classifier = TextClassifier(model="text_transformer", vocab_size=400, training=training)
    classifier.fit(frame[:600], frame[600:700])
    deciding = {word for phrases in WORDS.values() for phrase in phrases for word in phrase.split()}
    texts = frame[700:730]["sentence"].to_list()
    hits = 0
    for item in explained_texts(classifier, texts):
        top_word = max(item["words"], key=lambda pair: abs(pair[1]))[0]
        hits += top_word in deciding
    assert hits >= 0.8 * len(texts)


def test_word_pieces_join_into_words_and_markers_are_dropped() -> None:
    pieces = ["[CLS]", "prof", "##it", "rose", "[SEP]", "[PAD]"]
    merged = merge_pieces(pieces, np.array([0.5, 0.2, 0.3, -0.1, 0.4, 0.0]))
    assert merged == [("profit", pytest.approx(0.5)), ("rose", -0.1)]
