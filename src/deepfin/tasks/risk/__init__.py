"""Risk: volatility forecasts, value-at-risk and expected shortfall, with their backtests."""
