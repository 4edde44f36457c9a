"""The risk report: written by both risk commands and by `deepfin report`, self-contained, with
the backtest table's Basel colours, the breaches counted, and the volatility verdict."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from deepfin.cli import app
from deepfin.errors import RunFolderError
from deepfin.report.risk import write_risk_report

runner = CliRunner()


def test_var_report(tmp_path) -> None:
    run = tmp_path / "var"
    result = runner.invoke(
        app,
        ["risk", "var", "--test-start", "2016-01-04", "--refit-every", "126", "--run-dir",
         str(run)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "report:" in result.output
    assert "background:#c8e6c9" in page or "background:#fff59d" in page  # a coloured zone
    assert page.count("class='figure'") == 2  # a band chart per level
    breaches = re.findall(r"fhs breaches \((\d+)\)", page)
    assert breaches and int(breaches[0]) > 0
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched: it opens offline
    (run / "report.html").unlink()
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    assert (run / "report.html").exists()


def test_volatility_report(tmp_path) -> None:
    run = tmp_path / "vol"
    result = runner.invoke(
        app,
        ["risk", "volatility", "--models", "har,ewma", "--test-start", "2018-01-02",
         "--refit-every", "63", "--run-dir", str(run)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "has the lowest QLIKE" in page
    assert "annualised volatility" in page


def test_a_folder_without_results_is_refused(tmp_path) -> None:
    with pytest.raises(RunFolderError, match="is the run complete"):
        write_risk_report(tmp_path)
