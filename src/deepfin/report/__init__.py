"""Self-contained HTML reports with interactive plots."""
