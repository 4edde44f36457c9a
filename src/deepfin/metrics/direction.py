"""Up-or-down forecasts: AUC of any score, DeLong's test against 0.5, AUC per group of days.

The charts of one day share that day's market move, so their errors are not independent:
besides DeLong's test (which treats every chart as independent) the AUC of each day is taken
as one observation, and the mean of the daily AUCs is tested against 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import DataError


def _checked(labels: npt.ArrayLike, score: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or y.shape != s.shape or y.size == 0:
        raise DataError(f"labels {y.shape} and scores {s.shape} must be 1-D and equally long")
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be 0 (down) or 1 (up)")
    if not np.isfinite(s).all():
        raise DataError("scores must be finite")
    if y.min() == y.max():
        raise DataError(f"all {y.size} labels are {int(y[0])}; an AUC needs ups and downs")
    return y.astype(bool), s


def delong_test(labels: npt.ArrayLike, score: npt.ArrayLike) -> dict[str, float]:
    """AUC, its DeLong standard error and the two-sided p-value of AUC = 0.5.

    DeLong, DeLong and Clarke-Pearson (1988), with the midrank computation of Sun and Xu
    (2014): each up's share of downs it outranks (ties count one half) and each down's share
    of ups that outrank it are the structural components whose variances make the AUC's.
    """
    up_share, down_share = _components(*_checked(labels, score))
    auc = float(up_share.mean())
    variance = sum(
        share.var(ddof=1) / share.size for share in (up_share, down_share) if share.size > 1
    )
    se = math.sqrt(variance) if variance > 0 else 0.0
    z = (auc - 0.5) / se if se > 0 else 0.0
    return {"auc": auc, "se": se, "z": z, "p_value": float(2 * stats.norm.sf(abs(z)))}


def _components(up: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each up's share of downs it outranks (ups,), each down's of ups outranking it (downs,)."""
    ranks = stats.rankdata(score)
    up_share = (ranks[up] - stats.rankdata(score[up])) / (~up).sum()
    down_share = 1.0 - (ranks[~up] - stats.rankdata(score[~up])) / up.sum()
    return up_share, down_share


def auc(labels: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """The chance that a random up scores above a random down (ties count one half)."""
    return float(_components(*_checked(labels, score))[0].mean())


def auc_by_group(
    labels: npt.ArrayLike, score: npt.ArrayLike, groups: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's AUC (groups where every label is the same have none and are left out)."""
    y, s = np.asarray(labels), np.asarray(score, dtype=np.float64)
    group_values = np.asarray(groups)
    if group_values.shape != y.shape:
        raise DataError(f"got {group_values.size} groups for {y.size} labels; pass one per row")
    names, aucs = [], []
    for name in np.unique(group_values):
        rows = group_values == name
        if 0 < y[rows].sum() < rows.sum():
            names.append(name)
            aucs.append(auc(y[rows], s[rows]))
    return np.asarray(names), np.asarray(aucs, dtype=np.float64)


def daily_auc_test(
    labels: npt.ArrayLike, score: npt.ArrayLike, dates: npt.ArrayLike
) -> dict[str, float]:
    """The mean of the daily AUCs, its t-statistic against 0.5 and the two-sided p-value."""
    _, daily = auc_by_group(labels, score, dates)
    if daily.size < 2:
        raise DataError(f"need at least 2 days with ups and downs; got {daily.size}")
    mean, spread = float(daily.mean()), float(daily.std(ddof=1))
    t = (mean - 0.5) / (spread / math.sqrt(daily.size)) if spread > 0 else 0.0
    p = float(2 * stats.t.sf(abs(t), df=daily.size - 1))
    return {"mean_auc": mean, "t_stat": t, "p_value": p, "days": float(daily.size)}
