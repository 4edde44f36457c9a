"""The text report: metrics beside the baselines, confusion, per-class scores, calibration, the
most confident mistakes, and which tokens drove a few predictions (integrated gradients)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
import torch

from deepfin.errors import NotFittedError
from deepfin.explain.attribution import token_attributions
from deepfin.report.html import Section, Table, write_report
from deepfin.tasks.text.estimator import TextClassifier

CLASS_METRICS = ("accuracy", "macro_f1", "weighted_f1", "top_3_accuracy", "log_loss", "ece", "n")
SCORE_METRICS = ("mse", "rmse", "mae", "r2", "pearson", "n")
EXPLAINED, MISTAKES, BINS = 6, 12, 10


def _metric_rows(metrics: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for name, row in metrics["models"].items():
        tests = {k: v for k, v in row.items() if k.startswith(("mcnemar_p", "dm_p"))}
        rows.append({"model": name, **{k: row.get(k) for k in keys if k in row}, **tests})
    return rows


def _summary(classifier: TextClassifier, metrics: dict[str, Any]) -> list[str]:
    notes = []
    split = metrics.get("split")
    if split:
        notes.append(
            f"{split['train']} training, {split.get('val', 0)} validation and {split['test']} "
            f"test texts after removing {split['duplicates_removed']} duplicate(s) "
            f"(normalised text), split with seed {split['seed']}."
        )
    if metrics.get("masked"):
        masked = ", ".join(f"{n} {kind}" for kind, n in sorted(metrics["masked"].items()))
        notes.append(f"Personal data masked before anything was learned: {masked}.")
    cut = {role: n for role, n in metrics.get("truncated", {}).items() if n}
    if cut:
        notes.append(
            f"Texts cut to {classifier.config.max_tokens} tokens: "
            + ", ".join(f"{n} {role}" for role, n in cut.items())
            + "."
        )
    if classifier.config.start_from:
        notes.append(
            f"Training started from the run {classifier.config.start_from} (all its weights "
            "but the head, and its tokenizer)."
        )
    history = classifier.history_
    if history.epochs:
        notes.append(
            f"Kept epoch {history.best_epoch} of {len(history.epochs)} "
            f"(validation loss {history.best_loss:.4f}; stopped: {history.stopped})."
        )
    return notes


def _confusion(metrics: dict[str, Any], name: str) -> go.Figure:
    counts = np.array(metrics["models"][name]["confusion"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    classes = metrics["classes"]
    figure = go.Figure(
        go.Heatmap(
            z=shares,
            x=classes,
            y=classes,
            customdata=counts,
            colorscale="Blues",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata:.0f} texts (%{z:.1%})"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Confusion matrix of {name} (test; each row sums to one)",
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        height=max(420, 14 * len(classes)),
    )
    return figure


def _per_class(metrics: dict[str, Any], name: str) -> tuple[go.Figure, list[dict[str, Any]]]:
    per_class = metrics["models"][name]["per_class"]
    rows = [
        {"class": label, **scores, "support": int(scores["support"])}
        for label, scores in per_class.items()
    ]
    figure = go.Figure()
    for key in ("precision", "recall", "f1"):
        figure.add_bar(x=[r["class"] for r in rows], y=[r[key] for r in rows], name=key)
    figure.update_layout(title=f"Per-class scores of {name} (test)", yaxis_range=[0, 1])
    return figure, rows


def _calibration(predictions: pl.DataFrame) -> go.Figure:
    confidence = predictions["probability"].to_numpy()
    right = (predictions["predicted"] == predictions["label"]).to_numpy()
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, BINS - 1)
    used = [b for b in range(BINS) if (which == b).any()]
    figure = go.Figure()
    figure.add_scatter(
        x=[confidence[which == b].mean() for b in used],
        y=[right[which == b].mean() for b in used],
        text=[f"{(which == b).sum()} texts" for b in used],
        mode="lines+markers",
        name="model",
    )
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot"})
    figure.update_layout(
        title="Calibration (test): accuracy against the predicted label's probability",
        xaxis_title="probability of the predicted label",
        yaxis_title="share right",
    )
    return figure


def _mistakes(predictions: pl.DataFrame) -> list[dict[str, Any]]:
    wrong = predictions.filter(pl.col("predicted") != pl.col("label"))
    top = wrong.sort("probability", descending=True).head(MISTAKES)
    return top.select("text", "label", "predicted", "probability").to_dicts()


def _scatter(predictions: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(
        x=predictions["label"].to_numpy(),
        y=predictions["predicted"].to_numpy(),
        mode="markers",
        name="test texts",
        opacity=0.6,
    )
    values = np.concatenate([predictions["label"].to_numpy(), predictions["predicted"].to_numpy()])
    low, high = float(values.min()), float(values.max())
    figure.add_scatter(x=[low, high], y=[low, high], mode="lines", name="perfect")
    figure.update_layout(
        title="Predicted against actual scores (test)",
        xaxis_title="actual score",
        yaxis_title="predicted score",
    )
    return figure


def explained_texts(classifier: TextClassifier, texts: list[str]) -> list[dict[str, Any]]:
    """Per text its words and their attributions to the predicted label (or the score)."""
    model, tokenizer = classifier.model_, classifier.tokenizer_
    if model is None or tokenizer is None:
        return []
    explained = []
    for text in texts:
        tokens = tokenizer.encode([text], max_tokens=classifier.config.max_tokens)
        with torch.no_grad():
            logits = model(tokens.ids, tokens.mask)[0]
        output = 0 if classifier.scores_ else int(logits.argmax())
        values = token_attributions(model, tokens.ids, tokens.mask, output=output)
        pieces = [str(tokenizer.tokenizer.id_to_token(int(i))) for i in tokens.ids[0]]
        label = f"{float(logits[0]):.3f}" if classifier.scores_ else classifier.classes_[output]
        explained.append({"text": text, "label": label, "words": merge_pieces(pieces, values)})
    return explained


def merge_pieces(pieces: list[str], values: np.ndarray) -> list[tuple[str, float]]:
    """WordPiece tokens (##-continued) joined into words, their attributions summed; the
    [CLS] and [SEP] markers left out."""
    words: list[tuple[str, float]] = []
    for piece, value in zip(pieces, values, strict=True):
        if piece in ("[CLS]", "[SEP]", "[PAD]"):
            continue
        if piece.startswith("##") and words:
            word, total = words[-1]
            words[-1] = (word + piece[2:], total + float(value))
        else:
            words.append((piece, float(value)))
    return words


def _highlighted(explained: list[dict[str, Any]]) -> str:
    """The texts with each word's background shaded by its attribution (green for, red
    against the label shown)."""
    lines = []
    for item in explained:
        scale = max((abs(v) for _, v in item["words"]), default=1.0) or 1.0
        spans = []
        for word, value in item["words"]:
            share = abs(value) / scale
            colour = "0,140,60" if value > 0 else "200,30,30"
            spans.append(
                f"<span style='background: rgba({colour},{share:.2f})' "
                f"title='{value:+.4f}'>{html.escape(word)}</span>"
            )
        lines.append(f"<p><b>{html.escape(str(item['label']))}</b>: " + " ".join(spans) + "</p>")
    return "\n".join(lines)


def text_sections(classifier: TextClassifier) -> list[Section]:
    """The report's sections from an evaluated classifier (fresh or loaded from its run)."""
    metrics, predictions = classifier.metrics_, classifier.predictions_
    if metrics is None or predictions is None:
        raise NotFittedError("the classifier has no evaluation; call evaluate(test) first")
    name = classifier.model_name
    keys = SCORE_METRICS if classifier.scores_ else CLASS_METRICS
    summary = Section(
        "Summary",
        notes=_summary(classifier, metrics),
        tables=[
            Table(
                "Test metrics, each model tested against the next row", _metric_rows(metrics, keys)
            )
        ],
    )
    sections = [summary]
    if classifier.scores_:
        sections.append(Section("Predicted and actual scores", figures=[_scatter(predictions)]))
    else:
        bars, rows = _per_class(metrics, name)
        sections += [
            Section("Confusion matrix", figures=[_confusion(metrics, name)]),
            Section(
                "Per-class precision, recall and F1",
                tables=[Table("Per class", rows)],
                figures=[bars],
            ),
            Section("Calibration", figures=[_calibration(predictions)]),
            Section(
                "The most confident mistakes",
                tables=[Table("Wrong labels with the highest probability", _mistakes(predictions))],
            ),
        ]
    explained = explained_texts(classifier, _chosen(predictions, classifier.scores_))
    if explained:
        sections.append(
            Section(
                "Which words drove the prediction",
                notes=[
                    "Integrated gradients over the token embeddings (32 steps from zero "
                    "embeddings): green words pushed toward the label shown, red ones away; "
                    "hover a word for its attribution."
                ],
                html=_highlighted(explained),
            )
        )
    return sections


def _chosen(predictions: pl.DataFrame, scores: bool) -> list[str]:
    """A few test texts to explain: confident right ones and confident mistakes."""
    if scores:
        return predictions["text"].head(EXPLAINED).to_list()
    ordered = predictions.sort("probability", descending=True)
    right = ordered.filter(pl.col("predicted") == pl.col("label"))["text"].head(EXPLAINED // 2)
    wrong = ordered.filter(pl.col("predicted") != pl.col("label"))["text"].head(EXPLAINED // 2)
    return [*right.to_list(), *wrong.to_list()]


def write_text_report(classifier: TextClassifier, path: Path, *, title: str | None = None) -> Path:
    """Write the self-contained HTML report of an evaluated classifier."""
    label = title or f"deepfin text: {classifier.model_name}"
    return write_report(path, label, text_sections(classifier))
