"""Leaderboards over seeds and variants: the mean and spread of each metric, the ensemble, the
ranking on a panel, and model specs as the command line writes them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepfin.cli.options import model_specs
from deepfin.config import DataConfig, ForecastConfig, RunConfig, SplitConfig
from deepfin.errors import ConfigError
from deepfin.tasks.forecasting.compare import run_compare
from deepfin.training import TrainingConfig
from tests.tasks.forecasting.test_cross_section_learning import _reversal_panel


@pytest.fixture(scope="module")
def board_and_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    prices = folder / "prices.csv"
    _reversal_panel(seed=2).write_csv(prices)
    config = RunConfig(
        data=DataConfig(source=str(prices)),
        split=SplitConfig(val_fraction=0.2, test_fraction=0.2),
        forecast=ForecastConfig(
            model="gru", lookback=2, features=("log_return",), label_norm="rank", loss="ic"
        ),
        training=TrainingConfig(epochs=2, batch_size=64, progress=False),
    )
    specs = model_specs("gru[hidden_size=4],gru[hidden_size=8],linear")
    board = run_compare(config, models=[*specs], run_dir=folder / "run", seeds=2)
    return board, folder / "run"


def test_each_model_row_is_the_mean_over_seeds_with_its_spread(board_and_folder):
    board, folder = board_and_folder
    rows = {row["model"]: row for row in board.to_dicts()}
    seeds = [
        pl.read_json(folder / "gru-hidden_size=8" / f"seed_{i}" / "metrics.json") for i in (0, 1)
    ]
    values = [frame["gru"][0]["rank_ic_mean"] for frame in seeds]
    row = rows["gru[hidden_size=8]"]
    assert row["rank_ic_mean"] == pytest.approx(np.mean(values))
    assert row["rank_ic_mean_std"] == pytest.approx(np.std(values, ddof=1))
    assert row["seeds"] == 2 and row["kept_epoch"] >= 1
    # the ensemble is scored on the seeds' mean forecast, as a model of its own
    assert "gru[hidden_size=8] ensemble" in rows
    assert rows["gru[hidden_size=8] ensemble"]["rank_ic_mean"] > 0.2


def test_a_solved_model_is_fitted_once_and_references_follow_the_models(board_and_folder):
    board, folder = board_and_folder
    names = board["model"].to_list()
    assert "linear ensemble" not in names and names.count("linear") == 1
    assert not (folder / "linear" / "seed_1").exists()
    models = [n for n in names if n not in ("always_up", "reversal", "momentum_20")]
    models = [n for n in models if not n.startswith("low_vol")]
    ranked = board.filter(pl.col("model").is_in(models))["rank_ic_mean"].to_list()
    known = [value for value in ranked if value is not None]
    assert known == sorted(known, reverse=True)  # a panel's board is ranked by Rank IC
    assert ranked[-1] is None  # the naive forecast ranks nothing: after every model
    assert names[-1] in ("always_up", "reversal", "momentum_20", "low_volatility_20")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gru[hidden_size=8", "not closed"),
        ("gru]", "pair up"),
        ("gru[[a=1]]", "pair up"),
        ("gru[hidden_size]", "key=value"),
        ("gru[width=3]", "unknown hyperparameter"),
        ("forest", "unknown model"),
        (" , ", "names no model"),
    ],
)
def test_bad_model_specs_are_refused_by_name(text, message):
    with pytest.raises(ConfigError, match=message):
        model_specs(text)


def test_a_repeated_model_or_seed_count_out_of_range_is_refused(tmp_path):
    config = RunConfig()
    with pytest.raises(ConfigError, match="repeat"):
        run_compare(config, models=["gru", "gru"], run_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="seeds"):
        run_compare(config, models=["gru"], run_dir=tmp_path / "b", seeds=0)
