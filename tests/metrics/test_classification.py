"""Credit metrics against scikit-learn and scipy on fixed inputs, and PSI by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk

from deepfin.metrics.classification import (
    bin_shares,
    brier_score,
    calibration_table,
    credit_metrics,
    cutoff_table,
    fairness_table,
    ks_statistic,
    log_loss,
    population_stability_index,
    roc_auc,
    roc_curve,
    score_bin_edges,
    scorecard_points,
)


@pytest.fixture
def sample() -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities with signal and many ties (rounded to 2 decimals)."""
    rng = np.random.default_rng(3)
    labels = (rng.random(2_000) < 0.22).astype(int)
    probability = np.clip(0.2 + 0.15 * labels + 0.15 * rng.standard_normal(2_000), 0.01, 0.99)
    return labels, np.round(probability, 2)


def test_auc_gini_brier_log_loss_match_scikit_learn(sample):
    labels, probability = sample
    assert roc_auc(labels, probability) == pytest.approx(sk.roc_auc_score(labels, probability))
    summary = credit_metrics(labels, probability)
    assert summary["gini"] == pytest.approx(2 * sk.roc_auc_score(labels, probability) - 1)
    assert brier_score(labels, probability) == pytest.approx(
        sk.brier_score_loss(labels, probability)
    )
    assert log_loss(labels, probability) == pytest.approx(sk.log_loss(labels, probability))


def test_ks_matches_scipy_two_sample_statistic_and_names_its_threshold(sample):
    labels, probability = sample
    ks, threshold = ks_statistic(labels, probability)
    expected = stats.ks_2samp(probability[labels == 1], probability[labels == 0]).statistic
    assert ks == pytest.approx(expected)
    # the gap at the returned threshold is the statistic itself
    bad_below = (probability[labels == 1] <= threshold).mean()
    good_below = (probability[labels == 0] <= threshold).mean()
    assert abs(good_below - bad_below) == pytest.approx(ks)


def test_roc_curve_matches_scikit_learn(sample):
    labels, probability = sample
    fpr, tpr, _ = sk.roc_curve(labels, probability, drop_intermediate=False)
    ours_fpr, ours_tpr = roc_curve(labels, probability)
    np.testing.assert_allclose(ours_fpr, fpr)
    np.testing.assert_allclose(ours_tpr, tpr)


def test_psi_equals_the_hand_computed_sum():
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    actual = np.array([0.1, 0.2, 0.3, 0.4])
    by_hand = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))
    assert population_stability_index(expected, actual) == pytest.approx(by_hand)
    assert population_stability_index(expected, expected) == 0.0


def test_score_bins_give_equal_shares_on_the_reference_and_count_new_scores():
    reference = np.arange(1, 101) / 100  # 0.01 .. 1.00
    edges = score_bin_edges(reference, bins=4)
    np.testing.assert_allclose(bin_shares(reference, edges), [0.25, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(bin_shares([0.0, 0.02, 0.99, 0.995], edges), [0.5, 0, 0, 0.5])


def test_cutoff_table_matches_scikit_learn_precision_and_recall(sample):
    labels, probability = sample
    rows = cutoff_table(labels, probability, thresholds=[0.2, 0.3, 0.4])
    for row in rows:
        declined = probability >= row["threshold"]
        assert row["precision"] == pytest.approx(sk.precision_score(labels, declined))
        assert row["recall"] == pytest.approx(sk.recall_score(labels, declined))
        assert row["approval_rate"] == pytest.approx(1 - declined.mean())
        assert row["bad_rate_approved"] == pytest.approx(labels[~declined].mean())
    assert [r["approval_rate"] for r in cutoff_table(labels, probability)] == sorted(
        r["approval_rate"] for r in cutoff_table(labels, probability)
    )


def test_calibration_table_bins_cover_every_row_in_probability_order(sample):
    labels, probability = sample
    rows = calibration_table(labels, probability, bins=10)
    assert sum(r["n"] for r in rows) == len(labels)
    means = [r["mean_predicted"] for r in rows]
    assert means == sorted(means)
    weighted = sum(r["observed_default_rate"] * r["n"] for r in rows) / len(labels)
    assert weighted == pytest.approx(labels.mean())


def test_fairness_table_by_hand():
    groups = np.array(["a", "a", "a", "a", "b", "b"])
    labels = np.array([0, 1, 0, 1, 0, 1])
    probability = np.array([0.1, 0.6, 0.2, 0.3, 0.7, 0.8])
    rows = {row["group"]: row for row in fairness_table(groups, labels, probability, cutoff=0.5)}
    assert rows["a"]["approval_rate"] == pytest.approx(0.75)
    assert rows["a"]["bad_rate_approved"] == pytest.approx(1 / 3)
    assert rows["b"]["approval_rate"] == 0.0 and math.isnan(rows["b"]["bad_rate_approved"])
    assert rows["a"]["approval_ratio"] == 1.0 and rows["b"]["approval_ratio"] == 0.0


def test_scorecard_points_rise_20_per_doubling_of_the_good_odds():
    at_base = scorecard_points([1 / 51])[0]  # odds 50:1
    doubled = scorecard_points([1 / 101])[0]  # odds 100:1
    assert at_base == pytest.approx(600.0)
    assert doubled - at_base == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("labels", "probability", "message"),
    [
        ([0, 0, 0], [0.1, 0.2, 0.3], "need defaults and non-defaults"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "must be 0"),
        ([0, 1, 1], [0.1, 1.2, 0.3], "within \\[0, 1\\]"),
        ([0, 1], [0.1, 0.2, 0.3], "equally long"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(labels, probability, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(labels, probability)
