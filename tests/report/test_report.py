"""Reports: self-contained HTML, every chart drawn in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from deepfin.data.splits import chronological_split
from deepfin.errors import RunFolderError
from deepfin.report.forecast import build_report, verdict
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.training import TrainingConfig

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished panel run of a small gru, with history, metrics and predictions."""
    import numpy as np

    from tests.conftest import price_frame

    rng = np.random.default_rng(3)
    panel = pl.concat(
        price_frame(0.01 * rng.standard_normal(260), ticker=f"T{i}", start_price=30.0 + i)
        for i in range(6)
    )
    split = chronological_split(panel, embargo=1)
    forecaster = Forecaster(
        model="gru", lookback=10, training=TrainingConfig(epochs=2, progress=False)
    ).fit(split.train, split.val)
    forecaster.evaluate(split.test)
    folder = forecaster.save(tmp_path_factory.mktemp("run") / "gru")
    build_report(folder)
    return folder


def _figure_count(page: str) -> int:
    return page.count("<div class='figure'>")


def test_report_is_one_offline_file_with_plotly_embedded_once(run_dir):
    page = (run_dir / "report.html").read_text()
    assert "<script src" not in page  # nothing fetched: no external scripts
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.DOTALL)
    assert not re.search(r"(src|href)=['\"]https?://", markup)  # no remote images, styles, links
    assert page.count("plotly.js v") == 1  # the library's banner: embedded exactly once
    # forecasts, residuals, rolling IC (6 tickers) and the loss curve
    assert _figure_count(page) == 4
    assert "Diebold-Mariano" in page or "does not beat" in page
    for name in ("gru", "linear", "naive"):
        assert f"<td>{name}</td>" in page


def test_verdict_states_significance():
    metrics = {
        "m": {"rmse": 1.0, "dm_p_value": 0.01},
        "naive": {"rmse": 2.0, "dm_p_value": 1.0},
    }
    assert verdict("m", metrics).startswith("m beats the naive forecast")
    metrics["m"]["dm_p_value"] = 0.4
    assert "not significantly" in verdict("m", metrics)
    metrics["m"]["rmse"] = 3.0
    assert "does not beat" in verdict("m", metrics)


def test_report_without_a_finished_run_says_what_is_missing(tmp_path):
    with pytest.raises(RunFolderError, match=r"lacks config\.json or metrics\.json"):
        build_report(tmp_path)


@pytest.mark.slow
def test_every_chart_renders_in_headless_chromium(run_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("browser test: Debian's chromium is not installed (make test installs it)")
    page = run_dir / "report.html"
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*common, "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'class="render-error"' not in dom, "a chart raised a JavaScript error while drawing"
    # plotly marks each drawn chart with js-plotly-plot and draws its axes into main-svg
    drawn = re.findall(r'<div[^>]*class="[^"]*js-plotly-plot[^"]*"', dom)
    assert len(drawn) == _figure_count(page.read_text())
    assert dom.count('class="main-svg"') >= 2 * _figure_count(page.read_text())
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "forecast_report.png"
    subprocess.run(
        [*common, "--window-size=1200,2600", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 20_000  # a page with charts, not a blank
