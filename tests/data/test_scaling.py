"""Scaler: standard and min-max, global and per ticker, against numpy; JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepfin.data.scaling import Scaler
from deepfin.errors import DataError

TICKERS = ["AAA", "BBB", "CCC"]


def sample(seed: int = 0, n_rows: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 3) values on very different scales per ticker, and each row's ticker code."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, len(TICKERS), n_rows)
    values = rng.normal(size=(n_rows, 3)) * [1.0, 100.0, 0.01] + codes[:, None] * 10.0
    return values, codes


def numpy_statistics(kind: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) of `values`' columns as the scaler should learn them."""
    if kind == "standard":
        return values.mean(0), values.std(0)  # population std, ddof=0
    return values.min(0), values.max(0) - values.min(0)


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_global_scaling_matches_numpy(kind: str) -> None:
    values, codes = sample()
    scaler = Scaler(kind=kind).fit(values, codes, TICKERS)
    center, scale = numpy_statistics(kind, values)
    expected = (values - center) / scale
    scaled = scaler.transform(values, codes, TICKERS)
    assert scaled.dtype == np.float32 and scaled.flags.c_contiguous
    np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-5)
    if kind == "standard":
        np.testing.assert_allclose(scaled.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(scaled.std(0), 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(scaled.min(0), 0.0, atol=1e-6)
        np.testing.assert_allclose(scaled.max(0), 1.0, atol=1e-6)


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_per_ticker_scaling_matches_numpy_per_group(kind: str) -> None:
    values, codes = sample(1)
    scaler = Scaler(kind=kind, per_ticker=True).fit(values, codes, TICKERS)
    scaled = scaler.transform(values, codes, TICKERS)
    for code in range(len(TICKERS)):
        mine = codes == code
        center, scale = numpy_statistics(kind, values[mine])
        np.testing.assert_allclose(
            scaled[mine], (values[mine] - center) / scale, rtol=1e-5, atol=1e-5
        )


def test_fit_learns_only_from_the_rows_it_is_given() -> None:
    values, codes = sample(2)
    train = slice(0, 40)
    scaler = Scaler().fit(values[train], codes[train], TICKERS)
    later = values.copy()
    later[40:] *= 1000.0  # the future: anything at all
    again = Scaler().fit(later[train], codes[train], TICKERS)
    assert json.dumps(scaler.to_dict()) == json.dumps(again.to_dict())
    np.testing.assert_allclose(scaler.center_[0], values[train].mean(0))


def test_per_ticker_codes_need_not_cover_every_ticker() -> None:
    values, codes = sample(3)
    only_c = codes == 2
    # a scaler fitted on one ticker's rows knows that ticker alone
    scaler = Scaler(per_ticker=True).fit(values[only_c], codes[only_c], TICKERS)
    assert scaler.tickers_ == ["CCC"]
    # codes index the caller's ticker list, which may differ from the one used in fit
    ccc = values[only_c]
    scaled = scaler.transform(ccc, np.zeros(len(ccc), dtype=np.int64), ["CCC"])
    np.testing.assert_allclose(scaled, (ccc - ccc.mean(0)) / ccc.std(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["standard", "minmax"])
@pytest.mark.parametrize("per_ticker", [False, True])
def test_json_round_trip_gives_identical_transforms(kind: str, per_ticker: bool) -> None:
    values, codes = sample(4)
    scaler = Scaler(kind=kind, per_ticker=per_ticker).fit(values, codes, TICKERS)
    state = json.loads(json.dumps(scaler.to_dict()))
    restored = Scaler.from_dict(state)
    assert restored.to_dict() == scaler.to_dict()
    fresh, fresh_codes = sample(5)
    assert np.array_equal(
        restored.transform(fresh, fresh_codes, TICKERS),
        scaler.transform(fresh, fresh_codes, TICKERS),
    )
    assert np.array_equal(
        restored.inverse_transform(fresh, fresh_codes, TICKERS),
        scaler.inverse_transform(fresh, fresh_codes, TICKERS),
    )


@pytest.mark.parametrize("kind", ["standard", "minmax"])
@pytest.mark.parametrize("per_ticker", [False, True])
def test_inverse_transform_inverts(kind: str, per_ticker: bool) -> None:
    values, codes = sample(6)
    scaler = Scaler(kind=kind, per_ticker=per_ticker).fit(values, codes, TICKERS)
    back = scaler.inverse_transform(scaler.transform(values, codes, TICKERS), codes, TICKERS)
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, values, rtol=1e-5, atol=1e-4)


def test_unknown_ticker_with_per_ticker_scaling() -> None:
    values, codes = sample(7)
    scaler = Scaler(per_ticker=True).fit(values, codes, TICKERS)
    with pytest.raises(DataError, match=r"has never seen \['ZZZ'\]; forecast only tickers present"):
        scaler.transform(values[:2], np.array([0, 1]), ["AAA", "ZZZ"])
    # a global scaler serves any ticker
    Scaler().fit(values, codes, TICKERS).transform(values[:2], np.array([0, 1]), ["AAA", "ZZZ"])


@pytest.mark.parametrize("kind", ["standard", "minmax"])
@pytest.mark.parametrize("per_ticker", [False, True])
def test_constant_column_is_centred_not_divided_by_zero(kind: str, per_ticker: bool) -> None:
    values, codes = sample(8)
    values[:, 1] = 42.0
    scaler = Scaler(kind=kind, per_ticker=per_ticker).fit(values, codes, TICKERS)
    scaled = scaler.transform(values, codes, TICKERS)
    assert np.isfinite(scaled).all()
    assert np.array_equal(scaled[:, 1], np.zeros(len(values), dtype=np.float32))
    np.testing.assert_allclose(scaler.inverse_transform(scaled, codes, TICKERS)[:, 1], 42.0)


def test_scaler_errors() -> None:
    with pytest.raises(DataError, match=r"unknown scaler 'robust'; choose one of"):
        Scaler(kind="robust")
    with pytest.raises(DataError, match=r"cannot fit a scaler on zero training rows"):
        Scaler().fit(np.zeros((0, 2)), np.zeros(0, dtype=np.int64), TICKERS)
