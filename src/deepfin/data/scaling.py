"""Scalers fitted on training rows only, globally or per ticker; plain-dict round trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepfin.data.io import DataError

SCALERS = ("standard", "minmax")


@dataclass
class Scaler:
    """Standard (mean/std) or min-max scaling of the columns of a (rows, columns) array."""

    kind: str = "standard"
    per_ticker: bool = False
    center_: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (groups, columns)
    scale_: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    tickers_: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in SCALERS:
            raise DataError(f"unknown scaler '{self.kind}'; choose one of {list(SCALERS)}")

    def fit(self, values: np.ndarray, ticker_codes: np.ndarray, tickers: list[str]) -> Scaler:
        """Learn per-column statistics from `values` (rows, columns); rows grouped by ticker."""
        if values.shape[0] == 0:
            raise DataError("cannot fit a scaler on zero training rows")
        values = values.astype(np.float64, copy=False)
        if self.per_ticker:
            present, groups = np.unique(ticker_codes, return_inverse=True)
            self.tickers_ = [tickers[code] for code in present]
        else:
            groups = np.zeros(len(values), dtype=np.int64)
            self.tickers_ = []
        n_groups = int(groups.max()) + 1
        counts = np.bincount(groups, minlength=n_groups)[:, None]
        if self.kind == "standard":
            # two passes (mean, then squared deviations) for numerical stability
            center = _group_sums(values, groups, n_groups) / counts
            spread = np.sqrt(_group_sums((values - center[groups]) ** 2, groups, n_groups) / counts)
        else:
            order = np.argsort(groups, kind="stable")
            sorted_values, sorted_groups = values[order], groups[order]
            starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
            center = np.minimum.reduceat(sorted_values, starts, axis=0)
            spread = np.maximum.reduceat(sorted_values, starts, axis=0) - center
        # a constant column is centred but not divided by zero
        self.center_, self.scale_ = center, np.where(spread > 0, spread, 1.0)
        return self

    def _rows(self, ticker_codes: np.ndarray, tickers: list[str]) -> np.ndarray | slice:
        if not self.per_ticker:
            return slice(0, 1)
        position = {name: index for index, name in enumerate(self.tickers_)}
        unknown = [name for name in tickers if name not in position]
        if unknown:
            raise DataError(
                f"the scaler was fitted per ticker and has never seen {unknown[:10]}; "
                "forecast only tickers present in training, or fit with per-ticker scaling off"
            )
        mapping = np.array([position[name] for name in tickers], dtype=np.int64)
        return mapping[ticker_codes]

    def transform(
        self, values: np.ndarray, ticker_codes: np.ndarray, tickers: list[str]
    ) -> np.ndarray:
        """Scale `values`; float32 out."""
        rows = self._rows(ticker_codes, tickers)
        scaled = (values - self.center_[rows]) / self.scale_[rows]
        return np.ascontiguousarray(scaled, dtype=np.float32)

    def inverse_transform(
        self, values: np.ndarray, ticker_codes: np.ndarray, tickers: list[str]
    ) -> np.ndarray:
        """Undo `transform`; float64 out."""
        rows = self._rows(ticker_codes, tickers)
        return values.astype(np.float64) * self.scale_[rows] + self.center_[rows]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "kind": self.kind,
            "per_ticker": self.per_ticker,
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "tickers": self.tickers_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Scaler:
        """Rebuild a fitted scaler from `to_dict` output."""
        scaler = cls(kind=state["kind"], per_ticker=state["per_ticker"])
        scaler.center_ = np.asarray(state["center"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        scaler.tickers_ = list(state["tickers"])
        return scaler


def _group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of `values` per group, (groups, columns)."""
    return np.stack(
        [np.bincount(groups, weights=column, minlength=n_groups) for column in values.T], axis=1
    )
