"""One writer per run folder: a second process fails at once, naming the one that holds it."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepfin.backtest import BacktestConfig
from deepfin.cli import app
from deepfin.config import DataConfig, RunConfig
from deepfin.errors import RunFolderError
from deepfin.report.html import Section, write_report
from deepfin.runs.lock import LOCK, run_lock
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.credit.files import run_credit
from deepfin.tasks.forecasting.compare import run_compare
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.pipeline import run_backtest, run_forecast
from tests.runs.conftest import prices

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from contextlib import ExitStack
from pathlib import Path
from deepfin.runs.lock import run_lock
with ExitStack() as stack:
    for folder in sys.argv[1:]:
        stack.enter_context(run_lock(Path(folder)))
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes it
"""
FOLDERS = ("forecast", "compare", "backtest", "credit", "saved", "report", "predict")


@pytest.fixture(scope="module")
def held(tmp_path_factory, written):
    """Folders another process holds the lock of, while the module's tests run."""
    root = tmp_path_factory.mktemp("held")
    script = root / "hold_the_runs.py"
    script.write_text(HOLDER)
    folders = {name: root / name for name in FOLDERS}
    (folders["predict"]).mkdir()
    for path in written["linear"].iterdir():  # a finished run, to predict from
        (folders["predict"] / path.name).write_bytes(path.read_bytes())
    child = subprocess.Popen(
        [sys.executable, str(script), *map(str, folders.values())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    yield {"pid": child.pid, **folders}
    child.communicate(input="", timeout=60)


def held_by(held) -> str:
    return rf"being written by another process \(pid {held['pid']}: .*hold_the_runs\.py"


def test_the_pipelines_fail_at_once_when_another_process_writes_their_folder(held):
    missing = RunConfig(data=DataConfig(source="no/such/prices.csv"))  # never read
    with pytest.raises(RunFolderError, match=held_by(held)):
        run_forecast(missing, run_dir=held["forecast"])
    with pytest.raises(RunFolderError, match=held_by(held)):
        run_compare(missing, models=["linear"], run_dir=held["compare"])
    with pytest.raises(RunFolderError, match=held_by(held)):
        run_backtest(
            missing, models=["linear"], strategy=BacktestConfig(), run_dir=held["backtest"]
        )
    with pytest.raises(RunFolderError, match=held_by(held)):
        run_credit(CreditScorer(), "no/such/loans.csv", run_dir=held["credit"])


def test_saving_and_reports_take_the_lock_too(held, written):
    fitted = Forecaster.load(written["linear"])
    with pytest.raises(RunFolderError, match=held_by(held)):
        fitted.save(held["saved"])
    with pytest.raises(RunFolderError, match=held_by(held)):
        write_report(held["report"] / "report.html", "t", [Section("s")])
    assert not (held["saved"] / "config.json").exists()
    assert not (held["report"] / "report.html").exists()


def test_predict_into_a_held_run_fails_and_elsewhere_works(held, tmp_path):
    prices().write_csv(tmp_path / "prices.csv")
    command = ["predict", "--run", str(held["predict"]), "--data", str(tmp_path / "prices.csv")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2 and "being written by another process" in result.output
    assert not (held["predict"] / "forecasts.csv").exists()
    result = CliRunner().invoke(app, [*command, "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output


def test_a_lock_held_through_another_open_file_is_refused_and_named(tmp_path):
    """flock locks belong to an open file: a second open in one process conflicts too."""
    run = tmp_path / "run"
    run.mkdir()
    other = os.open(run / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)
    os.write(other, json.dumps({"pid": 4242, "command": "deepfin forecast"}).encode())
    with pytest.raises(RunFolderError, match=r"pid 4242: deepfin forecast"), run_lock(run):
        pass
    os.close(other)  # released: now it can be taken
    with run_lock(run):
        assert json.loads((run / LOCK).read_text())["pid"] == os.getpid()
    assert (run / LOCK).read_text() == ""  # no holder named once released


def test_the_holder_can_lock_again_and_an_unused_new_folder_is_removed(tmp_path):
    with run_lock(tmp_path / "run"):
        with run_lock(tmp_path / "run"):  # a save inside a pipeline's lock
            pass
        (tmp_path / "run" / "run.json").write_text("{}")
    assert (tmp_path / "run" / "run.json").exists()
    with run_lock(tmp_path / "failed"):
        pass  # the run failed before writing anything
    assert not (tmp_path / "failed").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"), run_lock(tmp_path / "file"):
        pass
