"""`deepfin text train|predict` end to end on generated texts."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from deepfin.cli import app
from tests.conftest import SHARED_DATA
from tests.tasks.text.test_estimator import planted_texts

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["text", *args], catch_exceptions=False)


def test_train_then_predict_a_file_of_messages(tmp_path):
    planted_texts(500).write_csv(tmp_path / "train.csv")
    planted_texts(120, seed=1).write_parquet(tmp_path / "test.parquet")
    result = invoke(
        "train", "--data", str(tmp_path / "train.csv"), "--test-data",
        str(tmp_path / "test.parquet"), "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "McNemar p vs majority" in result.output and "majority" in result.output
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Confusion matrix" in page and "The most confident mistakes" in page
    (tmp_path / "run" / "report.html").unlink()
    again = runner.invoke(app, ["report", str(tmp_path / "run")], catch_exceptions=False)
    assert again.exit_code == 0 and (tmp_path / "run" / "report.html").exists()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["split"]["test"] == 120 and metrics["models"]["tfidf_logistic"]["accuracy"] > 0.9
    messages = tmp_path / "messages.csv"
    pl.DataFrame(
        {"message": ["record sales this quarter", "mail x@y.org: profit warning"]}
    ).write_csv(messages)
    result = invoke("predict", "--run", str(tmp_path / "run"), "--data", str(messages))
    assert result.exit_code == 0, result.output
    labels = pl.read_csv(tmp_path / "messages_labels.csv")
    assert labels["predicted"].to_list() == ["positive", "negative"]
    assert labels["text"][1].startswith("mail [EMAIL]")
    assert labels["top_labels"][0].split(" | ")[0] == "positive"


def test_bad_texts_are_one_error_line(tmp_path):
    pl.DataFrame({"words": ["a", "b"]}).write_csv(tmp_path / "nolabel.csv")
    result = invoke("train", "--data", str(tmp_path / "nolabel.csv"))
    assert result.exit_code == 2 and "no text column recognised" in result.output
    planted_texts(100).write_csv(tmp_path / "train.csv")
    other = planted_texts(30, seed=2).with_columns(pl.lit("euphoric").alias("sentiment"))
    other.write_csv(tmp_path / "test.csv")
    result = invoke(
        "train", "--data", str(tmp_path / "train.csv"), "--test-data", str(tmp_path / "test.csv"),
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.exit_code == 2 and "never occur in training (euphoric)" in result.output
    assert not (tmp_path / "run" / "config.json").exists()
    result = invoke("train", "--data", str(tmp_path / "train.csv"), "--model", "bert")
    assert result.exit_code == 2 and "unknown model 'bert'" in result.output
    result = invoke(
        "train", "--data", str(tmp_path / "train.csv"), "--model", "text_hybrid",
        "--start-from", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "started"),
    )  # fmt: skip
    assert result.exit_code == 2 and f"start_from: {tmp_path / 'nowhere'}" in result.output
    assert not (tmp_path / "started").exists()


@pytest.mark.data
def test_semeval_headline_scores_are_a_regression_beside_ridge_and_the_mean(tmp_path):
    source = SHARED_DATA / "fiqa_semeval2017" / "SemEval2017_task5_headlines.json"
    if not source.exists():
        pytest.skip(f"needs ../shared/data ({source} is absent)")
    result = invoke("train", "--data", str(source), "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "R²" in result.output and "DM p vs mean" in result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ridge = metrics["models"]["tfidf_ridge"]
    assert metrics["task"] == "scores" and ridge["r2"] > 0.1 and ridge["pearson"] > 0.3
    headlines = tmp_path / "headlines.csv"
    pl.DataFrame({"title": ["Shares soar after record profit", "Bank fined for fraud"]}).write_csv(
        headlines
    )
    result = invoke("predict", "--run", str(tmp_path / "run"), "--data", str(headlines))
    assert result.exit_code == 0, result.output
    scores = pl.read_csv(tmp_path / "headlines_labels.csv")["predicted"].to_list()
    assert scores[0] > scores[1]
