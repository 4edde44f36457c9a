"""deepfin: deep learning for financial data, evaluated honestly against baselines."""

__version__ = "0.1.0"

from deepfin.config import ForecastConfig
from deepfin.data.io import DataError, read_prices
from deepfin.data.samples import load_sample
from deepfin.data.splits import Split, chronological_split
from deepfin.tasks.forecasting import Forecaster
from deepfin.training import TrainingConfig

__all__ = [
    "DataError",
    "ForecastConfig",
    "Forecaster",
    "Split",
    "TrainingConfig",
    "__version__",
    "chronological_split",
    "load_sample",
    "read_prices",
]
