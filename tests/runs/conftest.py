"""Run folders to tamper with: each test gets its own copy of a run written once per module."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepfin.data.splits import chronological_split
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.training import TrainingConfig
from tests.conftest import price_frame

QUICK = TrainingConfig(epochs=1, progress=False)


def prices() -> pl.DataFrame:
    """Three tickers of 200 days of random-walk prices."""
    rng = np.random.default_rng(3)
    return pl.concat(
        price_frame(0.01 * rng.standard_normal(200), ticker=f"T{i}", start_price=20.0 + 10 * i)
        for i in range(3)
    )


def loans(n: int = 600) -> pl.DataFrame:
    """Applicants whose default depends on their income."""
    rng = np.random.default_rng(0)
    income = rng.normal(size=n)
    default = (rng.random(n) < 1 / (1 + np.exp(2 * income))).astype(int)
    return pl.DataFrame({"income": income, "debt": rng.normal(size=n), "default": default})


def forecast_run(directory: Path, model: str, **params: object) -> Path:
    split = chronological_split(prices(), embargo=1)
    forecaster = Forecaster(model=model, lookback=5, model_params=params, training=QUICK)
    forecaster.fit(split.train, split.val).evaluate(split.test)
    return forecaster.save(directory)


def credit_run(directory: Path, model: str) -> Path:
    frame = loans()
    scorer = CreditScorer(model=model, baselines=(), training=QUICK)
    scorer.fit(frame[:400], frame[400:500]).evaluate(frame[500:])
    return scorer.save(directory)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One run folder of each kind the tests tamper with, written once."""
    root = tmp_path_factory.mktemp("written")
    return {
        "linear": forecast_run(root / "linear", "linear"),
        "lstm": forecast_run(root / "lstm", "lstm", hidden_size=8),
        "transformer": forecast_run(root / "transformer", "transformer", d_model=8, n_heads=2),
        "lightgbm": credit_run(root / "lightgbm", "lightgbm"),
        "logistic": credit_run(root / "logistic", "logistic"),
    }


@pytest.fixture
def copy_of(written: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    """A fresh copy of one of the written run folders, by kind."""

    def copy(kind: str) -> Path:
        return Path(shutil.copytree(written[kind], tmp_path / kind))

    return copy


def edit_config(run_dir: Path, **changes: object) -> None:
    """Change config.json as a user or an attacker would (its own hash is not recorded)."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = config
        for parent in parents:
            target = target[parent]
        target[key] = value
    path.write_text(json.dumps(config))


def rehash(run_dir: Path) -> None:
    """Record the files' current sha256 in config.json: what a careful forger would do."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    config["files"] = {
        name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest() for name in config["files"]
    }
    path.write_text(json.dumps(config))
