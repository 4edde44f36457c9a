"""Scalers fitted on training rows only, globally or per ticker; plain-dict round trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepfin.errors import DataError, RunFolderError

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
        """Rebuild a fitted scaler from `to_dict` output, checked: a scale of 0 or a NaN would
        turn every forecast into a constant or a NaN."""
        try:
            scaler = cls(kind=state["kind"], per_ticker=state["per_ticker"])
            center = np.asarray(state["center"], dtype=np.float64)
            scale = np.asarray(state["scale"], dtype=np.float64)
            tickers = [str(name) for name in state["tickers"]]
        except (KeyError, TypeError, ValueError) as error:
            raise RunFolderError(f"a saved scaler is malformed ({error!r})") from error
        groups = len(tickers) if scaler.per_ticker else 1
        if center.ndim != 2 or center.shape != scale.shape or center.shape[0] != groups:
            raise RunFolderError(
                f"a saved scaler has center {center.shape} and scale {scale.shape} for "
                f"{groups} group(s); they must agree"
            )
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise RunFolderError(
                "a saved scaler has a scale of 0 or a NaN or infinite statistic; the run folder "
                "was altered: re-run the training or restore the folder"
            )
        scaler.center_, scaler.scale_, scaler.tickers_ = center, scale, tickers
        return scaler


class RunningMoments:
    """Count, mean, squared deviations, min and max per group, gathered chunk by chunk.

    Chunks merge by Chan et al.'s update, so the scaler equals one fitted on all rows at once
    while only one chunk is ever held in float64.
    """

    def __init__(self, n_groups: int, n_columns: int) -> None:
        self.count = np.zeros((n_groups, 1))
        self.mean = np.zeros((n_groups, n_columns))
        self.m2 = np.zeros((n_groups, n_columns))
        self.low = np.full((n_groups, n_columns), np.inf)
        self.high = np.full((n_groups, n_columns), -np.inf)

    def update(
        self, values: np.ndarray, groups: np.ndarray, *, first_group: int, n_groups: int
    ) -> None:
        """Fold in rows `values` whose groups are first_group + `groups` (sorted, < n_groups)."""
        values = values.astype(np.float64)
        count = np.bincount(groups, minlength=n_groups)[:, None].astype(np.float64)
        # two passes (mean, then squared deviations) for numerical stability, as fit does
        mean = _group_sums(values, groups, n_groups) / np.maximum(count, 1.0)
        m2 = _group_sums((values - mean[groups]) ** 2, groups, n_groups)
        at = slice(first_group, first_group + n_groups)
        before = self.count[at]
        total = np.maximum(before + count, 1.0)
        delta = mean - self.mean[at]
        self.m2[at] += m2 + delta**2 * before * count / total
        self.mean[at] += delta * count / total
        self.count[at] = before + count
        if len(values):  # rows sorted by group: each group is one run for reduceat
            seen = np.flatnonzero(count[:, 0] > 0) + first_group
            starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
            self.low[seen] = np.minimum(self.low[seen], np.minimum.reduceat(values, starts))
            self.high[seen] = np.maximum(self.high[seen], np.maximum.reduceat(values, starts))

    def scaler(self, *, kind: str, per_ticker: bool, tickers: list[str]) -> Scaler:
        """The fitted Scaler: groups are `tickers` when per_ticker, else one global group."""
        if per_ticker and (self.count == 0).any():
            missing = [tickers[i] for i in np.flatnonzero(self.count[:, 0] == 0)]
            raise DataError(
                f"ticker(s) {missing[:10]} have no training rows, so per-ticker scaling "
                "cannot scale them; drop them or scale globally"
            )
        if self.count.sum() == 0:
            raise DataError("cannot fit a scaler on zero training rows")
        if kind == "standard":
            center, spread = self.mean, np.sqrt(self.m2 / self.count)
        else:
            center, spread = self.low, self.high - self.low
        scaler = Scaler(kind=kind, per_ticker=per_ticker)
        # a constant column is centred but not divided by zero, as in fit
        scaler.center_, scaler.scale_ = center, np.where(spread > 0, spread, 1.0)
        scaler.tickers_ = list(tickers) if per_ticker else []
        return scaler


def _group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of `values` per group, (groups, columns)."""
    if n_groups == 1:  # one global group: a plain sum is several times faster than bincount
        return values.sum(axis=0, keepdims=True)
    return np.stack(
        [np.bincount(groups, weights=column, minlength=n_groups) for column in values.T], axis=1
    )


def window_spread(values: np.ndarray, codes: np.ndarray, rows: np.ndarray, lookback: int) -> float:
    """Root mean square of values[t - lag] - values[t] over lags up to lookback-1 of the marked
    `rows` of one ticker (`codes`); 1 where there is none (a one-row window is all zeros).

    The scale of a window-relative column: its windows then come out near unit size.
    """
    values = values.astype(np.float64)
    total, count = 0.0, 0
    # a handful of lags spanning the window estimate the mean over all of them
    for lag in sorted({max(1, round(q * (lookback - 1))) for q in (0.25, 0.5, 0.75, 1)}):
        if lag >= lookback or lag >= len(values):
            continue
        pair = rows[lag:] & rows[:-lag] & (codes[lag:] == codes[:-lag])
        moves = values[lag:][pair] - values[:-lag][pair]
        total, count = total + float(np.square(moves).sum()), count + len(moves)
    spread = (total / count) ** 0.5 if count else 0.0
    return spread if spread > 0 else 1.0
