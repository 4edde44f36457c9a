"""deepfin: deep learning for financial data, evaluated honestly against baselines."""

__version__ = "0.1.0"

from deepfin.backtest import BacktestConfig, performance_stats, run_backtest
from deepfin.config import ForecastConfig, WalkForwardConfig
from deepfin.data.io import read_prices
from deepfin.data.samples import load_sample
from deepfin.data.splits import Split, chronological_split
from deepfin.errors import DataError
from deepfin.runs.load import load_run
from deepfin.tasks.charts.config import ChartDataConfig
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.tasks.charts.files import chart_split
from deepfin.tasks.charts.images import ImageClassifier
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.walk_forward import walk_forward
from deepfin.tasks.text.estimator import TextClassifier
from deepfin.training import TrainingConfig

__all__ = [
    "BacktestConfig",
    "ChartClassifier",
    "ChartDataConfig",
    "CreditScorer",
    "DataError",
    "ForecastConfig",
    "Forecaster",
    "ImageClassifier",
    "Split",
    "TextClassifier",
    "TrainingConfig",
    "WalkForwardConfig",
    "__version__",
    "chart_split",
    "chronological_split",
    "load_run",
    "load_sample",
    "performance_stats",
    "read_prices",
    "run_backtest",
    "walk_forward",
]
