"""Metrics: regression, significance, ranking, classification and strategy performance."""
