"""Tabular models: encoded rows (B, F) in, log-odds (B, 1) out."""
