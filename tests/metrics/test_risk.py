"""VaR and ES backtests against hand-worked examples, vartests' Kupiec test and simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deepfin.errors import ConfigError, DataError
from deepfin.metrics.risk import (
    acerbi_szekely_z2,
    breaches,
    christoffersen,
    fz0_loss,
    kupiec,
    pinball_loss,
    traffic_light,
)


def hits_at(days: int, *positions: int) -> np.ndarray:
    hits = np.zeros(days, dtype=bool)
    hits[list(positions)] = True
    return hits


def test_a_breach_is_a_loss_beyond_the_var() -> None:
    returns = np.array([-0.03, -0.01, 0.02, -0.02])
    assert breaches(returns, np.full(4, 0.02)).tolist() == [True, False, False, False]


@pytest.mark.parametrize("count", [0, 1, 2, 5, 9, 25])
@pytest.mark.parametrize("level", [0.95, 0.975, 0.99])
def test_kupiec_equals_vartests(count: int, level: float) -> None:
    vartests = pytest.importorskip("vartests")
    hits = hits_at(500, *range(0, 20 * count, 20))
    ours = kupiec(hits, level)
    reference = vartests.kupiec_test(hits.astype(int), risk_conf_level=level)
    assert ours["statistic"] == pytest.approx(reference["statistic"], abs=1e-10)
    assert ours["p_value"] == pytest.approx(reference["p-value"], abs=1e-6)  # sqrt-steep at LR=0
    assert ours["breaches"] == count


def test_kupiec_by_hand() -> None:
    # 5 breaches in 250 days at 99%: LR = -2 [5 ln .01 + 245 ln .99 - 5 ln .02 - 245 ln .98]
    by_hand = -2 * (
        5 * math.log(0.01) + 245 * math.log(0.99) - 5 * math.log(0.02) - 245 * math.log(0.98)
    )
    result = kupiec(hits_at(250, 1, 50, 100, 150, 200), 0.99)
    assert result["statistic"] == pytest.approx(by_hand)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(by_hand, 1))
    assert result["rate"] == pytest.approx(0.02)


def test_christoffersen_by_hand() -> None:
    # transitions: n00=5, n01=1, n10=1, n11=2; pi0=1/6, pi1=2/3, pooled 1/3
    hits = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    restricted = 3 * math.log(1 / 3) + 6 * math.log(2 / 3)
    markov = math.log(1 / 6) + 5 * math.log(5 / 6) + 2 * math.log(2 / 3) + math.log(1 / 3)
    result = christoffersen(hits, 0.99)
    assert result["independence_statistic"] == pytest.approx(-2 * (restricted - markov))
    assert result["independence_statistic"] == pytest.approx(2.231436, abs=1e-6)
    assert result["breach_after_breach"] == pytest.approx(2 / 3)
    coverage = kupiec(hits, 0.99)["statistic"] + result["independence_statistic"]
    assert result["conditional_coverage_statistic"] == pytest.approx(coverage)
    assert result["conditional_coverage_p_value"] == pytest.approx(stats.chi2.sf(coverage, 2))


def test_christoffersen_sees_clusters_not_spread_breaches() -> None:
    spread = hits_at(1000, *range(5, 1000, 100))
    clustered = hits_at(1000, 100, 101, 102, 103, 104, 600, 601, 602, 603, 604)
    assert christoffersen(spread, 0.99)["independence_p_value"] > 0.5
    assert christoffersen(clustered, 0.99)["independence_p_value"] < 1e-6
    # the same count, so Kupiec cannot tell them apart
    assert kupiec(spread, 0.99)["p_value"] == kupiec(clustered, 0.99)["p_value"]


@pytest.mark.parametrize(
    ("count", "zone"),
    [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"), (10, "red"), (14, "red")],
)
def test_basel_zones_at_99_percent(count: int, zone: str) -> None:
    hits = np.concatenate([hits_at(250, *range(count)), np.zeros(250, dtype=bool)])[::-1]
    result = traffic_light(hits, 0.99)
    assert result["zone"] == zone
    assert result["breaches_last_250"] == count
    assert result[f"{zone}_blocks"] >= 1
    assert result["green_blocks"] + result["yellow_blocks"] + result["red_blocks"] == 2


def test_traffic_light_needs_250_days() -> None:
    with pytest.raises(DataError, match="250 days"):
        traffic_light(np.zeros(100, dtype=bool))


def student_t_tail(level: float, dof: float) -> tuple[float, float]:
    """VaR and ES (positive) of a standard t at `level`."""
    tail = 1 - level
    quantile = stats.t.ppf(tail, dof)
    shortfall = stats.t.pdf(quantile, dof) / tail * (dof + quantile**2) / (dof - 1)
    return -quantile, shortfall


def test_z2_is_zero_when_every_breach_loses_the_es() -> None:
    returns = np.zeros(400)
    returns[[3, 90, 200, 333]] = -0.05  # 4 breaches in 400 days = the 1% tail
    result = acerbi_szekely_z2(returns, np.full(400, 0.03), np.full(400, 0.05), 0.99)
    assert result["statistic"] == pytest.approx(0.0)


def test_z2_passes_a_right_es_and_rejects_an_understated_one() -> None:
    generator = np.random.default_rng(1)
    scale = np.exp(generator.normal(-4.5, 0.3, 2500))  # a varying daily volatility
    returns = scale * generator.standard_t(5, 2500)
    var, es = student_t_tail(0.975, 5)
    right = acerbi_szekely_z2(returns, var * scale, es * scale, 0.975)
    assert abs(right["statistic"]) < 0.3
    assert right["p_value"] > 0.05
    understated = acerbi_szekely_z2(returns, 0.7 * var * scale, 0.7 * es * scale, 0.975)
    assert understated["statistic"] < -0.3
    assert understated["p_value"] < 0.01


def test_z2_refuses_an_es_below_the_var() -> None:
    with pytest.raises(DataError, match="at least the VaR"):
        acerbi_szekely_z2(np.zeros(10), np.full(10, 0.02), np.full(10, 0.01), 0.99)


def test_fz0_by_hand_and_minimised_at_the_truth() -> None:
    # a breach: y=-0.05, v=-0.02, e=-0.03, tail 0.01
    by_hand = -1 / (0.01 * -0.03) * (-0.02 + 0.05) + (-0.02 / -0.03) + math.log(0.03) - 1
    assert fz0_loss([-0.05], [0.02], [0.03], 0.99)[0] == pytest.approx(by_hand)
    returns = np.random.default_rng(2).standard_normal(200_000)
    tail = 0.025
    var = -stats.norm.ppf(tail)
    es = stats.norm.pdf(stats.norm.ppf(tail)) / tail
    truth = fz0_loss(returns, np.full(returns.size, var), np.full(returns.size, es), 0.975).mean()
    for var_factor, es_factor in [(0.8, 1.0), (1.2, 1.0), (1.0, 0.8), (1.0, 1.3), (0.9, 0.9)]:
        wrong = fz0_loss(
            returns,
            np.full(returns.size, var * var_factor),
            np.full(returns.size, es * es_factor),
            0.975,
        ).mean()
        assert wrong > truth


def test_pinball_loss_by_hand() -> None:
    losses = pinball_loss([1.0, -1.0], [0.0, 0.0], 0.1)
    assert losses.tolist() == pytest.approx([0.1, 0.9])


@pytest.mark.parametrize("level", [0.0, 1.0, 99, -0.5, True])
def test_levels_outside_the_unit_interval_are_refused(level: float) -> None:
    with pytest.raises(ConfigError, match="confidence level"):
        kupiec(np.zeros(10, dtype=bool), level)


def test_breaches_must_be_booleans() -> None:
    with pytest.raises(DataError, match="true/false"):
        kupiec(np.array([0, 2, 1]), 0.99)
