"""Run configuration: defaults, TOML files, overrides, and errors that name the bad key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from deepfin.config import (
    SECTIONS,
    ConfigError,
    DataConfig,
    ForecastConfig,
    RunConfig,
    SplitConfig,
    load_config,
)
from deepfin.models import hyperparameters
from deepfin.training import TrainingConfig

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"

FULL_TOML = """
runs_dir = "my_runs"

[data]
source = "prices.csv"
tickers = ["AAPL", "MSFT"]
max_tickers = 2
columns = { date = "Date", close = "Adj Close" }

[split]
val_fraction = 0.2
test_fraction = 0   # an int where a float is expected
embargo = 3

[forecast]
model = "lstm"
lookback = 20
features = ["log_return", "volatility_20"]
model_params = { hidden_size = 16 }

[training]
epochs = 7
learning_rate = 1   # an int where a float is expected
optimizer = "adamw"
progress = false
"""


def write(tmp_path: Path, text: str) -> Path:
    """A config file holding `text`."""
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    config = load_config()
    assert config == RunConfig()
    assert config.data == DataConfig()
    assert config.split == SplitConfig()
    assert config.forecast == ForecastConfig()
    assert config.training == TrainingConfig()
    assert config.runs_dir == "runs"
    assert set(SECTIONS) == {"data", "split", "forecast", "training", "walk_forward"}


def test_a_full_file_loads_into_the_dataclasses(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_TOML))
    assert config.runs_dir == "my_runs"
    assert config.data == DataConfig(
        source="prices.csv",
        tickers=("AAPL", "MSFT"),
        max_tickers=2,
        columns={"date": "Date", "close": "Adj Close"},
    )
    assert config.split == SplitConfig(val_fraction=0.2, test_fraction=0.0, embargo=3)
    assert config.forecast.model == "lstm"
    assert config.forecast.lookback == 20
    assert config.forecast.features == ("log_return", "volatility_20")
    assert config.forecast.model_params == {"hidden_size": 16}
    assert config.training == TrainingConfig(
        epochs=7, learning_rate=1.0, optimizer="adamw", progress=False
    )
    # lists became tuples and ints became floats, so the values are what the fields declare
    assert isinstance(config.data.tickers, tuple)
    assert isinstance(config.forecast.features, tuple)
    assert type(config.split.test_fraction) is float
    assert type(config.training.learning_rate) is float
    # the round trip to a plain dict (a run's config.json) keeps every section
    assert config.to_dict()["training"]["epochs"] == 7


def test_a_partial_file_keeps_the_other_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[training]\nepochs = 2\n"))
    assert config.training == TrainingConfig(epochs=2)
    assert config.forecast == ForecastConfig()
    assert config.data == DataConfig()


def test_a_path_given_as_a_string_works(tmp_path: Path) -> None:
    assert load_config(str(write(tmp_path, FULL_TOML))).training.epochs == 7


def test_overrides_beat_the_file(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, FULL_TOML),
        {"training.epochs": 3, "forecast.model": "gru", "runs_dir": "elsewhere"},
    )
    assert config.training.epochs == 3
    assert config.training.optimizer == "adamw"  # the rest of the file still holds
    assert config.forecast.model == "gru"
    assert config.runs_dir == "elsewhere"


def test_overrides_without_a_file_beat_the_defaults() -> None:
    config = load_config(overrides={"training.epochs": 3, "split.val_fraction": 0})
    assert config.training == TrainingConfig(epochs=3)
    assert config.split.val_fraction == 0.0


def test_an_unknown_section_fails_naming_it_and_listing_the_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[trainig]\nepochs = 3\n"))
    message = str(caught.value)
    assert "trainig" in message
    for section in SECTIONS:
        assert section in message


def test_an_unknown_key_fails_naming_it_and_listing_the_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[training]\nepoch = 3\n"))
    message = str(caught.value)
    assert "'epoch'" in message
    assert "[training]" in message
    for key in ("epochs", "learning_rate", "patience", "seed"):
        assert key in message


def test_an_unknown_override_fails_like_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key.*'lookbak'.*valid keys.*lookback"):
        load_config(overrides={"forecast.lookbak": 10})
    with pytest.raises(ConfigError, match=r"unknown section.*'modle'"):
        load_config(overrides={"modle.name": "lstm"})


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[training]\nepochs = "3"', "epochs"),  # a string for an int
        ("[training]\nepochs = true", "epochs"),  # a bool for an int
        ("[training]\nepochs = 3.5", "epochs"),  # a float for an int
        ("[training]\nlearning_rate = true", "learning_rate"),  # a bool for a float
        ('[training]\nlearning_rate = "1e-3"', "learning_rate"),
        ("[training]\nprogress = 1", "progress"),  # an int for a bool
        ('[forecast]\nfeatures = "log_return"', "features"),  # a string for a tuple
        ('[data]\ncolumns = ["date"]', "columns"),  # a list for a table
        ("[split]\nembargo = 1.0", "embargo"),
    ],
)
def test_a_wrong_type_fails_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"\] {key} = .* wrong type; expected"):
        load_config(write(tmp_path, toml))


def test_a_wrong_type_for_runs_dir_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runs_dir = 5 .*wrong type; expected str"):
        load_config(write(tmp_path, "runs_dir = 5\n"))


def test_a_wrong_type_in_an_override_fails_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[training\] epochs = '3' has the wrong type"):
        load_config(overrides={"training.epochs": "3"})


@pytest.mark.parametrize(
    ("toml", "section", "detail"),
    [
        ('[forecast]\nmodel = "nope"', "forecast", "unknown model 'nope'"),
        ("[forecast]\nlookback = 0", "forecast", "lookback=0"),
        ('[forecast]\nloss = "mae"', "forecast", "unknown loss 'mae'"),
        ("[training]\nepochs = 0", "training", "epochs=0"),
        ('[training]\noptimizer = "sgd"', "training", "unknown optimizer 'sgd'"),
    ],
)
def test_an_invalid_value_fails_naming_the_section(
    tmp_path: Path, toml: str, section: str, detail: str
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"[{section}]" in message
    assert str(path) in message
    assert detail in message


def test_a_section_that_is_not_a_table_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[training\].*must be a table"):
        load_config(write(tmp_path, "training = 3\n"))
    with pytest.raises(ConfigError, match="'training' is a value, not a section"):
        load_config(write(tmp_path, "training = 3\n"), {"training.epochs": 3})


def test_a_missing_file_fails_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=re.escape(f"no config file at {missing}")):
        load_config(missing)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[training\nepochs = 3\n", id="unclosed-table"),
        pytest.param(b"[training]\nepochs = \n", id="missing-value"),
        pytest.param(b"[training]\nepochs = 3\nepochs = 4\n", id="duplicate-key"),
        pytest.param(b'[data]\nsource = "\xff\xfe"\n', id="not-utf8"),
    ],
)
def test_invalid_toml_fails_clearly(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(f"{path} is not valid TOML")):
        load_config(path)


def test_config_error_is_a_value_error() -> None:
    # callers that catch ValueError (as for the dataclasses' own checks) catch these too
    assert issubclass(ConfigError, ValueError)


def _example_configs() -> list[Any]:
    return [pytest.param(path, id=path.name) for path in sorted(CONFIGS_DIR.glob("*.toml"))]


@pytest.mark.parametrize("path", _example_configs())
def test_every_example_config_loads(path: Path) -> None:
    if path.name.startswith("credit"):
        from deepfin.tasks.credit.config import load_credit_config

        credit = load_credit_config(path).credit
        unknown = set(credit.model_params) - set(hyperparameters(credit.model))
        assert not unknown, f"{path.name}: unknown model_params {sorted(unknown)}"
        return
    if path.name.startswith("text"):
        from deepfin.tasks.text.config import load_text_config

        text = load_text_config(path).text
        unknown = set(text.model_params) - set(hyperparameters(text.model))
        assert not unknown, f"{path.name}: unknown model_params {sorted(unknown)}"
        return
    if path.name.startswith("chart"):
        from deepfin.tasks.charts.config import load_chart_config

        chart = load_chart_config(path).chart
        unknown = set(chart.model_params) - set(hyperparameters(chart.model))
        assert not unknown, f"{path.name}: unknown model_params {sorted(unknown)}"
        return
    if path.name.startswith("image"):
        from deepfin.tasks.charts.config import load_image_config

        image = load_image_config(path).image
        unknown = set(image.model_params) - set(hyperparameters(image.model))
        assert not unknown, f"{path.name}: unknown model_params {sorted(unknown)}"
        return
    if path.name.startswith("risk"):
        from deepfin.tasks.risk.config import load_volatility_config

        assert load_volatility_config(path).volatility.models
        return
    config = load_config(path)
    assert isinstance(config, RunConfig)
    # model_params reach build_model only at fit time; catch a misspelt one here
    unknown = set(config.forecast.model_params) - set(hyperparameters(config.forecast.model))
    assert not unknown, f"{path.name}: unknown model_params {sorted(unknown)}"


def test_a_factor_set_stands_for_its_factors_after_the_features_before_it():
    from deepfin.data.factors import FACTOR_SETS

    config = ForecastConfig(features=("log_return", "alpha158"))
    assert config.features == ("log_return", *FACTOR_SETS["alpha158"])
    assert len(set(config.features)) == len(config.features)


def test_cross_section_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="label_norm"):
        ForecastConfig(label_norm="gauss")
    with pytest.raises(ConfigError, match="cross_section_norm"):
        ForecastConfig(cross_section_norm="excess")  # labels only: inputs have no market
    with pytest.raises(ConfigError, match="target=log_return"):
        ForecastConfig(target="price", label_norm="rank")
    assert ForecastConfig(loss="ic").date_batches  # a ranking loss needs whole dates
    with pytest.raises(ConfigError, match="rel_close, rel_open"):
        ForecastConfig(features=("alpha360",), cross_section_norm="rank")


@pytest.mark.parametrize(
    "path",
    [
        path
        for path in sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))
        if not any(
            part in path.read_text()
            for part in ("[credit]", "[text]", "[volatility]", "[chart]", "[image]")
        )
    ],
    ids=lambda path: path.name,
)
def test_every_forecasting_config_of_the_repository_loads(path):
    config = load_config(path, {})
    assert config.forecast.model
