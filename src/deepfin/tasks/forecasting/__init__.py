"""Forecasting prices and returns: the estimator, its evaluation, run files and pipelines."""
