"""load_run opens a run folder of any task by the task its config.json names."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from deepfin import load_run
from deepfin.cli import app
from deepfin.data.splits import chronological_split
from deepfin.errors import RunFolderError
from deepfin.runs.files import FORMAT_VERSION, read_task
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.training import TrainingConfig


def test_a_forecast_run_opens_as_the_forecaster_that_wrote_it(panel, tmp_path):
    split = chronological_split(panel, embargo=1)
    fitted = Forecaster(model="linear", lookback=5).fit(split.train, split.val)
    fitted.evaluate(split.test)
    fitted.save(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "forecast" and config["format_version"] == FORMAT_VERSION
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded, Forecaster)
    assert_frame_equal(loaded.predict(split.test), fitted.predict(split.test))


def test_a_folder_written_before_the_format_version_still_opens(panel, tmp_path):
    split = chronological_split(panel, embargo=1)
    Forecaster(model="linear", lookback=5).fit(split.train, split.val).save(tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    config = json.loads(path.read_text())
    del config["format_version"]  # as the 0.1.0 writers left it
    path.write_text(json.dumps(config))
    assert isinstance(load_run(tmp_path / "run"), Forecaster)


def test_a_credit_run_opens_as_a_scorer_and_gets_its_report(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    income = rng.normal(size=n)
    frame = pl.DataFrame(
        {"income": income, "default": (rng.random(n) < 1 / (1 + np.exp(2 * income))).astype(int)}
    )
    scorer = CreditScorer(
        model="logistic", baselines=(), training=TrainingConfig(epochs=1, progress=False)
    )
    scorer.fit(frame[:400], frame[400:500]).evaluate(frame[500:])
    scorer.save(tmp_path / "credit")
    loaded = load_run(tmp_path / "credit")
    assert isinstance(loaded, CreditScorer)
    np.testing.assert_allclose(loaded.predict_proba(frame[:50]), scorer.predict_proba(frame[:50]))
    result = CliRunner().invoke(app, ["report", str(tmp_path / "credit")])
    assert result.exit_code == 0, result.output
    assert "ROC curve" in (tmp_path / "credit" / "report.html").read_text()


def test_a_folder_of_several_models_or_none_says_what_to_open(tmp_path):
    (tmp_path / "compare").mkdir()
    (tmp_path / "compare" / "config.json").write_text(json.dumps({"task": "compare"}))
    with pytest.raises(RunFolderError, match=r"several models.*<model>/"):
        load_run(tmp_path / "compare")
    with pytest.raises(RunFolderError, match=r"config\.json is missing"):
        read_task(tmp_path / "nothing")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text("[1, 2]")
    with pytest.raises(RunFolderError, match="names no task"):
        load_run(tmp_path / "odd")
