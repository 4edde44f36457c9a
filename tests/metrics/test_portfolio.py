"""The decile long-short book against a plain per-date loop, planted signals and costs."""

import math

import numpy as np
import pytest

from deepfin.errors import ConfigError, DataError
from deepfin.metrics.portfolio import decile_portfolios, long_short_book


def hand_book(dates, tickers, forecast, actual, *, horizon=1, cost_bps=5.0):
    """A per-date loop, written independently of the library: returns, turnover, Sharpes."""
    calendar = sorted(set(dates.tolist()))[::horizon]
    booked, gross, turnover, previous = [], [], [], {}
    for day in calendar:
        names = [(forecast[i], tickers[i], actual[i]) for i in range(len(dates)) if dates[i] == day]
        if len(names) < 5:
            continue
        names.sort(key=lambda name: (name[0], name[1]))  # equal forecasts: by ticker
        n_leg = max(1, len(names) // 10)
        weights = {ticker: -1 / n_leg for _, ticker, _ in names[:n_leg]}
        weights |= {ticker: 1 / n_leg for _, ticker, _ in names[-n_leg:]}
        returns = {ticker: math.exp(r) - 1 for _, ticker, r in names}
        gross.append(sum(w * returns[ticker] for ticker, w in weights.items()))
        held = set(weights) | set(previous)
        turnover.append(sum(abs(weights.get(t, 0.0) - previous.get(t, 0.0)) for t in held))
        booked.append(day)
        previous = weights
    net = [g - t * cost_bps / 1e4 for g, t in zip(gross, turnover, strict=True)]

    def sharpe(series):
        mean = sum(series) / len(series)
        std = math.sqrt(sum((x - mean) ** 2 for x in series) / (len(series) - 1))
        return mean / std * math.sqrt(252 / horizon)

    return booked, gross, net, turnover, sharpe(gross), sharpe(net)


def random_panel(seed=0, n_dates=40, n_names=23):
    """A shuffled panel with a ticker missing on some dates, a thin date and a date of ties."""
    rng = np.random.default_rng(seed)
    dates = np.repeat(np.arange(n_dates), n_names)
    tickers = np.tile(np.array([f"T{i:02d}" for i in range(n_names)]), n_dates)
    actual = rng.normal(0, 0.02, dates.size)
    forecast = 0.2 * actual + rng.normal(0, 0.02, dates.size)
    forecast[dates == 7] = np.round(forecast[dates == 7] * 50)  # a few levels: ties at the edges
    keep = ~((tickers == "T03") & (dates % 3 == 0))  # T03 is missing every third date
    keep &= ~((dates == 11) & (tickers > "T03"))  # date 11 has 3 names: no book
    shuffle = rng.permutation(int(keep.sum()))  # rows need not arrive grouped by date
    return tuple(values[keep][shuffle] for values in (dates, tickers, forecast, actual))


@pytest.mark.parametrize("horizon", [1, 3])
def test_long_short_book_matches_a_per_date_loop(horizon):
    dates, tickers, forecast, actual = random_panel()
    tied = np.sort(forecast[dates == 7])
    assert tied[1] == tied[2] and tied[-2] == tied[-3]  # ties straddle both legs' edges
    book = long_short_book(
        dates=dates, tickers=tickers, forecast=forecast, actual_return=actual, horizon=horizon
    )
    booked, gross, net, turnover, sharpe, sharpe_net = hand_book(
        dates, tickers, forecast, actual, horizon=horizon
    )
    assert book.dates.tolist() == booked
    assert (horizon > 1) or 11 not in booked  # the thin date made no book
    np.testing.assert_allclose(book.gross_return, gross, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(book.net_return, net, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(book.turnover, turnover, rtol=1e-12, atol=1e-15)
    assert book.sharpe == pytest.approx(sharpe, rel=1e-10)
    assert book.sharpe_net == pytest.approx(sharpe_net, rel=1e-10)
    assert book.mean_turnover == pytest.approx(np.mean(turnover))
    assert book.turnover[0] == pytest.approx(2.0)  # the first book is bought from cash


def test_ties_break_by_ticker_whatever_the_row_order():
    dates = np.repeat([0, 1], 10)
    tickers = np.tile(np.array(list("JIHGFEDCBA")), 2)
    forecast = np.zeros(20)  # every forecast equal: the ticker order alone decides
    actual = np.tile(np.linspace(-0.05, 0.04, 10), 2)
    book = long_short_book(dates=dates, tickers=tickers, forecast=forecast, actual_return=actual)
    # long J (the last ticker, return -5%), short A (the first, +4%)
    assert book.gross_return[0] == pytest.approx(math.expm1(-0.05) - math.expm1(0.04))
    order = np.random.default_rng(1).permutation(20)
    shuffled = long_short_book(
        dates=dates[order],
        tickers=tickers[order],
        forecast=forecast[order],
        actual_return=actual[order],
    )
    np.testing.assert_array_equal(shuffled.gross_return, book.gross_return)
    assert book.turnover.tolist() == [2.0, 0.0]  # the same book on both dates


def test_a_forecast_equal_to_the_outcome_earns_a_large_sharpe_and_its_negative_loses():
    rng = np.random.default_rng(2)
    dates = np.repeat(np.arange(250), 50)
    tickers = np.tile(np.arange(50), 250).astype(str)
    actual = rng.normal(0, 0.02, dates.size)
    oracle = long_short_book(dates=dates, tickers=tickers, forecast=actual, actual_return=actual)
    inverse = long_short_book(dates=dates, tickers=tickers, forecast=-actual, actual_return=actual)
    assert oracle.sharpe is not None and oracle.sharpe > 50
    assert inverse.sharpe is not None and inverse.sharpe < -50
    assert (oracle.gross_return > 0).all() and (inverse.gross_return < 0).all()
    noise = long_short_book(
        dates=dates, tickers=tickers, forecast=rng.normal(size=dates.size), actual_return=actual
    )
    assert noise.sharpe is not None and abs(noise.sharpe) < 3


def test_costs_lower_the_return_by_turnover_times_cost():
    # ticker S is always the lowest forecast; the top name rotates: turnover 2 every date
    rng = np.random.default_rng(3)
    n_dates, names = 120, ["S", "A", "B", "C", "D", "E"]
    dates = np.repeat(np.arange(n_dates), len(names))
    tickers = np.tile(np.array(names), n_dates)
    top = np.arange(n_dates) % 5 + 1
    forecast = np.where(np.arange(dates.size) % 6 == 0, -1.0, 0.0)
    forecast[np.arange(n_dates) * 6 + top] = 1.0
    actual = rng.normal(0.001, 0.02, dates.size)
    cost_bps = 7.0
    book = long_short_book(
        dates=dates, tickers=tickers, forecast=forecast, actual_return=actual, cost_bps=cost_bps
    )
    np.testing.assert_allclose(book.turnover, 2.0)
    np.testing.assert_allclose(book.net_return, book.gross_return - 2.0 * cost_bps / 1e4)
    spread = book.gross_return.std(ddof=1)
    assert book.sharpe is not None and book.sharpe_net is not None
    lowered = 2.0 * cost_bps / 1e4 / spread * math.sqrt(252)
    assert book.sharpe - book.sharpe_net == pytest.approx(lowered, rel=1e-9)
    free = long_short_book(
        dates=dates, tickers=tickers, forecast=forecast, actual_return=actual, cost_bps=0
    )
    assert free.sharpe_net == free.sharpe == book.sharpe


def test_each_leg_holds_a_tenth_and_at_least_one_name():
    for n_names, n_leg in [(5, 1), (19, 1), (20, 2), (55, 5)]:
        dates = np.repeat([0, 1], n_names)
        tickers = np.tile(np.arange(n_names), 2).astype(str)
        forecast = np.tile(np.arange(n_names, dtype=float), 2)
        actual = np.zeros(2 * n_names)
        actual[forecast >= n_names - n_leg] = 0.01  # only the long leg moves
        book = long_short_book(
            dates=dates, tickers=tickers, forecast=forecast, actual_return=actual
        )
        assert book.gross_return[0] == pytest.approx(math.expm1(0.01)), n_names


def test_a_panel_too_thin_for_a_book_has_no_sharpe():
    dates, tickers = np.repeat([0, 1], 4), np.tile(list("ABCD"), 2)
    book = long_short_book(
        dates=dates, tickers=tickers, forecast=np.ones(8), actual_return=np.ones(8)
    )
    assert book.dates.size == 0 and book.sharpe is None and book.mean_turnover is None


def test_long_short_book_rejects_bad_input():
    dates, tickers = np.zeros(6), np.array(list("ABCDEA"))
    values = np.zeros(6)
    with pytest.raises(DataError, match="rows repeat"):
        long_short_book(dates=dates, tickers=tickers, forecast=values, actual_return=values)
    with pytest.raises(DataError, match="pass one date and one ticker"):
        long_short_book(dates=dates[:5], tickers=tickers, forecast=values, actual_return=values)
    with pytest.raises(ConfigError, match=r"fraction=0\.6"):
        long_short_book(
            dates=dates, tickers=tickers, forecast=values, actual_return=values, fraction=0.6
        )
    with pytest.raises(DataError, match="NaN"):
        long_short_book(
            dates=dates, tickers=tickers, forecast=values + np.nan, actual_return=values
        )


def test_equal_weighted_deciles_make_the_long_short_book() -> None:
    rng = np.random.default_rng(3)
    dates = np.repeat(np.arange(30), 50)
    tickers = np.tile([f"T{i:02d}" for i in range(50)], 30)
    forecast, actual = rng.normal(size=1500), rng.normal(0, 0.02, 1500)
    deciles = decile_portfolios(
        dates=dates,
        tickers=tickers,
        forecast=forecast,
        actual_return=actual,
        periods_per_year=252,
        cost_bps=10,
    )
    book = long_short_book(
        dates=dates, tickers=tickers, forecast=forecast, actual_return=actual, cost_bps=10
    )
    np.testing.assert_allclose(deciles.long_short, book.gross_return)
    np.testing.assert_allclose(deciles.turnover, book.turnover)
    np.testing.assert_allclose(deciles.long_short_net, book.net_return)
    assert deciles.sharpe == pytest.approx(book.sharpe)
    # each decile is the mean simple return of its five names
    day = 7
    rows = np.flatnonzero(dates == day)
    top = rows[np.argsort(forecast[rows])[-5:]]
    assert deciles.returns[day, -1] == pytest.approx(np.expm1(actual[top]).mean())


def test_weighted_deciles_hold_names_in_proportion_to_their_weight() -> None:
    # one date, four names in two groups: the heavier name counts three times the lighter
    result = decile_portfolios(
        dates=[0, 0, 0, 0],
        tickers=["a", "b", "c", "d"],
        forecast=[1.0, 2.0, 3.0, 4.0],
        actual_return=np.log1p([0.01, 0.05, -0.02, 0.10]),
        weight=[1.0, 3.0, 1.0, 3.0],
        deciles=2,
        periods_per_year=12,
        cost_bps=0,
    )
    assert result.returns[0, 0] == pytest.approx(0.25 * 0.01 + 0.75 * 0.05)
    assert result.returns[0, 1] == pytest.approx(0.25 * -0.02 + 0.75 * 0.10)
    assert result.turnover[0] == pytest.approx(2.0)  # bought from cash: both legs, whole
