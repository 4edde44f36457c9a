"""The columns of a price file: the roles deepfin reads and the spellings it recognises."""

from __future__ import annotations

PRICE_FIELDS = ("date", "ticker", "open", "high", "low", "close", "volume")
NUMERIC_FIELDS = ("open", "high", "low", "close", "volume")
# First match wins: an adjusted close is preferred to the raw close because splits and
# dividends otherwise show up as fake returns.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    # a pandas index written to Parquet, and to CSV (an empty header), before weaker spellings
    "date": ("date", "datetime", "timestamp", "__index_level_0__", "", "time", "day"),
    "ticker": ("ticker", "name", "symbol", "asset", "instrument", "code", "permno"),
    "close": ("adj close", "adj_close", "adjclose", "adjusted_close", "close", "price", "last"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "volume": ("volume", "vol"),
}


def find_alias(names: list[str], field: str) -> str | None:
    """The column of `names` that spells `field`, by the first matching alias."""
    lower = {name.lower().strip(): name for name in names}
    return next((lower[alias] for alias in COLUMN_ALIASES[field] if alias in lower), None)
