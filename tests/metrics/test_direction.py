"""AUC of up/down scores and its tests, against scikit-learn and the definitions by brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deepfin.errors import DataError
from deepfin.metrics.direction import auc, auc_by_group, daily_auc_test, delong_test


def planted(n: int, signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    labels = (signal * score + rng.normal(size=n) > 0).astype(int)
    return labels, np.round(score, 1)  # rounded: ties, which count one half


def test_delong_matches_its_definition_computed_pair_by_pair() -> None:
    labels, score = planted(300, 0.5)
    result = delong_test(labels, score)
    assert result["auc"] == pytest.approx(roc_auc_score(labels, score), abs=1e-12)
    ups, downs = score[labels == 1], score[labels == 0]
    psi = (ups[:, None] > downs[None, :]) + 0.5 * (ups[:, None] == downs[None, :])  # (m, n)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    variance = v10.var(ddof=1) / ups.size + v01.var(ddof=1) / downs.size
    assert result["se"] == pytest.approx(np.sqrt(variance), rel=1e-10)
    assert result["p_value"] < 1e-6


def test_without_signal_the_tests_reject_about_as_often_as_they_should() -> None:
    rejected = [delong_test(*planted(400, 0.0, seed))["p_value"] < 0.05 for seed in range(200)]
    assert 0.02 <= np.mean(rejected) <= 0.09


def test_daily_aucs_are_tested_as_one_observation_a_day() -> None:
    labels, score = planted(4000, 0.3, seed=1)
    dates = np.repeat(np.arange(40), 100)
    days, daily = auc_by_group(labels, score, dates)
    assert days.tolist() == list(range(40))
    assert daily[3] == pytest.approx(auc(labels[300:400], score[300:400]))
    result = daily_auc_test(labels, score, dates)
    assert result["mean_auc"] == pytest.approx(daily.mean())
    assert result["t_stat"] == pytest.approx((daily.mean() - 0.5) / daily.std(ddof=1) * np.sqrt(40))
    assert result["p_value"] < 1e-6
    noise = daily_auc_test(*planted(4000, 0.0, seed=2), dates)
    assert noise["p_value"] > 0.01


def test_bad_labels_are_refused() -> None:
    with pytest.raises(DataError, match="ups and downs"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match=r"0 \(down\) or 1 \(up\)"):
        auc([0, 2, 1], [0.1, 0.2, 0.3])
