"""Text inference throughput: sentences per second at batch 1 and 64, for every text model.

Each model is fitted (briefly: throughput, not accuracy, is measured) on BANKING77's training
messages, then labels 2,000 test messages (at batch 1, the first 300) with tokenisation
included. The pretrained encoder's frozen path (deepfin's own encoder over the published
weights) is timed beside sentence-transformers' `encode` of the same encoder on the same
texts, in the same run. Goal (from the text issue): deepfin's frozen path at least as fast.

    python bench/text_throughput.py      # table on stdout, JSON in bench/results/
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import torch
from synthetic import RESULTS

from deepfin import TextClassifier
from deepfin.data.text.tokens import TextTokenizer
from deepfin.models.text.minilm import MiniLMClassifier, MiniLMConfig
from deepfin.models.text.pretrained import MAX_TOKENS, minilm_files
from deepfin.tasks.text.fitting import by_length
from deepfin.training import TrainingConfig

BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
TEXTS, SINGLE = 2000, 300
MODELS = ("tfidf_logistic", "minilm", "text_transformer", "text_hybrid")


def rate(label: Callable[[list[str]], object], texts: list[str], batch: int) -> float:
    """Sentences per second of `label` over `texts` in batches of `batch` (one warm-up call)."""
    label(texts[:batch])
    began = time.perf_counter()
    for start in range(0, len(texts), batch):
        label(texts[start : start + batch])
    return len(texts) / (time.perf_counter() - began)


def main() -> None:
    if not BANKING77.exists():
        sys.exit(f"needs BANKING77 at {BANKING77} (../shared/data beside the repository)")
    train = pl.read_csv(BANKING77 / "train.csv").rename({"category": "label"})
    texts = pl.read_csv(BANKING77 / "test.csv")["text"].to_list()[:TEXTS]
    quick = TrainingConfig(epochs=1, progress=False)
    results: dict[str, dict[str, float]] = {}
    for name in MODELS:
        classifier = TextClassifier(model=name, training=quick).fit(train.head(2000))
        results[name] = {
            f"batch_{batch}": rate(classifier.predict_proba, texts[:count], batch)
            for batch, count in ((1, SINGLE), (64, TEXTS))
        }
        print(f"{name}: fitted and timed", file=sys.stderr)

    files = minilm_files()
    encoder = MiniLMClassifier(MiniLMConfig(n_features=30522, n_classes=2))
    encoder.load_pretrained()
    embedding = encoder.embedding.eval()
    tokenizer = TextTokenizer.from_file(files.tokenizer)

    def ours(batch: list[str]) -> torch.Tensor:
        return by_length(embedding, tokenizer.encode(batch, max_tokens=MAX_TOKENS))

    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(files.weights.parent), device="cpu", local_files_only=True)

    def theirs(batch: list[str]) -> object:
        return reference.encode(batch, batch_size=len(batch), convert_to_numpy=True)

    for name, embed in (("minilm embedding (deepfin)", ours), ("sentence-transformers", theirs)):
        results[name] = {
            f"batch_{batch}": rate(embed, texts[:count], batch)
            for batch, count in ((1, SINGLE), (64, TEXTS))
        }

    print(f"{'model':28s} | {'batch 1 (texts/s)':>17s} | {'batch 64 (texts/s)':>18s}")
    print("-" * 70)
    for name, row in results.items():
        print(f"{name:28s} | {row['batch_1']:17.1f} | {row['batch_64']:18.1f}")
    ratio = {
        f"batch_{b}": results["minilm embedding (deepfin)"][f"batch_{b}"]
        / results["sentence-transformers"][f"batch_{b}"]
        for b in (1, 64)
    }
    print(
        f"deepfin / sentence-transformers: batch 1 {ratio['batch_1']:.2f}x, "
        f"batch 64 {ratio['batch_64']:.2f}x"
    )
    meta = {"threads": torch.get_num_threads(), "texts": TEXTS, "single": SINGLE}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "text_throughput.json"
    out.write_text(json.dumps({"meta": meta, "results": results, "ratio": ratio}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
