"""Loan tables: reading, encoding, splits and identifier detection."""
