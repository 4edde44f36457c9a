"""`deepfin credit train|score` end to end on a generated loan table."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from deepfin.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["credit", *args], catch_exceptions=False)


@pytest.fixture
def loans_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 1_500
    income = rng.normal(size=n)
    grade = rng.choice(["A", "B", "C"], n)
    log_odds = -1.5 * income + 1.2 * (grade == "C") - 1.0
    frame = pl.DataFrame(
        {
            "customer_email": [f"c{i}@bank.example.com" for i in range(n)],
            "income": income,
            "grade": grade,
            "sex": rng.choice(["f", "m"], n),
            "status": np.where(rng.random(n) < 1 / (1 + np.exp(-log_odds)), "bad", "good"),
        }
    )
    path = tmp_path / "loans.csv"
    frame.write_csv(path)
    return path


def test_train_then_score_writes_probabilities_bands_and_reasons(loans_csv, tmp_path):
    run = tmp_path / "run"
    result = invoke(
        "train", "--data", str(loans_csv), "--target", "status", "--default-value", "bad",
        "--model", "mlp", "--sensitive", "sex", "--epochs", "5", "--no-progress",
        "--run-dir", str(run),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("mlp", "logistic", "lightgbm", "AUC", "KS", "customer_email", "report"):
        assert text in result.output
    assert result.output.count("customer_email") == 1  # the identifier is refused, said once
    names = {path.name for path in run.iterdir()}
    assert {"config.json", "model.safetensors", "preprocess.json", "metrics.json"} <= names
    assert {"report.html", "predictions.parquet", "run.json"} <= names
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["models"]["mlp"]["auc"] > 0.75
    assert {row["group"] for row in metrics["fairness"]["sex"]} == {"f", "m"}
    html = (run / "report.html").read_text()
    assert "Fairness by sex" in html and "ROC curve" in html and "Calibration" in html

    new = pl.read_csv(loans_csv).head(20).drop("status")
    new.write_csv(tmp_path / "new.csv")
    out = tmp_path / "scores.csv"
    result = invoke(
        "score", "--run", str(run), "--data", str(tmp_path / "new.csv"), "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    scores = pl.read_csv(out)
    assert scores.height == 20
    assert {"default_probability", "score", "band", "increases_risk_1"} <= set(scores.columns)
    assert "customer_email" not in scores.columns


def test_bad_inputs_exit_with_a_message(loans_csv, tmp_path):
    result = invoke("train", "--data", str(loans_csv), "--target", "defaulted", "--no-progress")
    assert result.exit_code == 2 and "target column 'defaulted' is not in the data" in result.output
    result = invoke("train", "--data", str(loans_csv), "--target", "status", "--no-progress")
    assert result.exit_code == 2 and "--default-value" in result.output
    result = invoke("score", "--run", str(tmp_path / "nothing"), "--data", str(loans_csv))
    assert result.exit_code == 2 and "config.json is missing" in result.output


def test_messages_and_paths_are_never_broken_across_lines(loans_csv, tmp_path):
    # a folder path far longer than 80 columns, as a CI checkout or a home folder may be
    deep = tmp_path / ("a-long-folder-name-" * 6) / "[draft] runs"
    result = invoke("score", "--run", str(deep), "--data", str(loans_csv))
    assert result.exit_code == 2
    line = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert f"{deep / 'config.json'} is missing" in line  # whole, brackets and all


def test_a_toml_config_drives_credit_training_and_flags_override_it(loans_csv, tmp_path):
    config = tmp_path / "credit.toml"
    config.write_text(
        f'[data]\nsource = "{loans_csv}"\ntest_fraction = 0.25\n'
        '[credit]\nmodel = "logistic"\ntarget = "status"\ndefault_value = "bad"\n'
        'baselines = []\nsensitive = ["sex"]\n'
        "[training]\nprogress = false\n"
    )
    run = tmp_path / "run"
    result = invoke("train", "--config", str(config), "--run-dir", str(run), "--seed", "3")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"] == "logistic" and saved["training"]["seed"] == 3
    assert saved["training"]["batch_size"] == 256  # the credit defaults, not forecasting's
    assert saved["baselines"] == [] and saved["sensitive"] == ["sex"]
    split = json.loads((run / "run.json").read_text())["split"]
    assert "test" in json.dumps(split)
    config.write_text(config.read_text() + "[credit.extra]\n")
    result = invoke("train", "--config", str(config), "--run-dir", str(tmp_path / "bad"))
    assert result.exit_code == 2 and "unknown key(s) ['extra'] in [credit]" in result.output
    result = invoke("train", "--target", "status")
    assert result.exit_code == 2 and "no loan table" in result.output


def test_a_folder_holding_another_run_is_not_reused(loans_csv, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(loans_csv), "--target", "status", "--default-value", "bad"]
    args += ["--model", "logistic", "--baselines", "", "--no-progress", "--run-dir", str(run)]
    assert invoke(*args).exit_code == 0
    before = (run / "config.json").read_bytes()
    result = invoke(*args)
    assert result.exit_code == 2 and "already holds files of another run" in result.output
    assert (run / "config.json").read_bytes() == before
