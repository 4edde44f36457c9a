"""deepfin: deep learning for financial data."""

__version__ = "0.1.0"
