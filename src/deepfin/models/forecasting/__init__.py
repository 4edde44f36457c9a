"""Forecasting models: windows (B, T, F) in, forecasts (B, O) out."""
