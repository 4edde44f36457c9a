"""Per-date normalisation of labels and features: what each method gives, and that it never
mixes dates."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from scipy import special, stats

from deepfin.data.chunks import collect_rows
from deepfin.data.cross_section import MAD_TO_STD, MIN_NAMES, Z_CLIP, normalise_by_date
from deepfin.data.rows import PriceRows
from deepfin.errors import ConfigError, DataError
from tests.conftest import price_frame

FEATURES = ("log_return", "volatility_5")


def _panel(n_tickers: int = 12, n_days: int = 60, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = [
        price_frame(0.02 * rng.standard_normal(n_days), ticker=f"T{i:02d}", start_price=50 + i)[
            # ragged: later tickers start later, so early dates have fewer names
            i // 3 :
        ]
        for i in range(n_tickers)
    ]
    return pl.concat(frames)


def _rows(frame: pl.DataFrame | None = None) -> PriceRows:
    return collect_rows(_panel() if frame is None else frame, features=FEATURES, horizon=1)


def _by_date(rows: PriceRows, values: np.ndarray, keep: np.ndarray):
    for stamp in np.unique(rows.stamps):
        on_date = (rows.stamps == stamp) & keep
        yield on_date, values[on_date]


def test_rank_labels_are_the_gaussian_quantiles_of_each_dates_ranks():
    raw = _rows()
    normalised = normalise_by_date(raw.copy(), features="none", labels="rank")
    keep, thin_seen = raw.labelled, False
    for on_date, labels in _by_date(raw, raw.targets[:, 0], keep):
        if len(labels) < MIN_NAMES:  # no cross-section: the centre, not raw returns
            assert (normalised.targets[on_date, 0] == 0).all()
            thin_seen = True
            continue
        expected = special.ndtri((stats.rankdata(labels) - 0.5) / len(labels))
        np.testing.assert_allclose(normalised.targets[on_date, 0], expected, rtol=1e-5)
    assert thin_seen  # the ragged panel has early dates of fewer than 5 tickers
    assert normalised.cross_section == ("none", "rank")
    np.testing.assert_array_equal(normalised.features, raw.features)  # inputs untouched


def test_robust_z_scores_use_the_median_and_mad_and_are_clipped():
    raw = _rows()
    raw.targets[5, 0] = 3.0  # an outlier the clip must hold at Z_CLIP
    normalised = normalise_by_date(raw.copy(), features="none", labels="zscore")
    seen_clip = False
    for on_date, labels in _by_date(raw, raw.targets[:, 0], raw.labelled):
        if len(labels) < MIN_NAMES:
            continue
        median = np.median(labels)
        spread = np.median(np.abs(labels - median)) * MAD_TO_STD
        expected = np.clip((labels - median) / spread, -Z_CLIP, Z_CLIP)
        np.testing.assert_allclose(normalised.targets[on_date, 0], expected, rtol=1e-4, atol=1e-6)
        seen_clip |= bool((np.abs(expected) == Z_CLIP).any())
    assert seen_clip


def test_excess_labels_have_zero_mean_on_every_date():
    raw = _rows()
    normalised = normalise_by_date(raw.copy(), features="none", labels="excess")
    for on_date, labels in _by_date(raw, raw.targets[:, 0], raw.labelled):
        if len(labels) >= MIN_NAMES:
            out = normalised.targets[on_date, 0]
            assert abs(out.mean()) < 1e-6
            np.testing.assert_allclose(out, labels - labels.mean(), atol=1e-6)


def test_suspect_and_unknown_outcomes_keep_their_values_and_warm_up_stays_nan():
    raw = _rows()
    raw.suspect[10] = True
    normalised = normalise_by_date(raw.copy(), features="rank", labels="rank")
    assert normalised.targets[10, 0] == raw.targets[10, 0]
    unknown = ~raw.known
    assert np.isnan(normalised.targets[unknown, 0]).all()
    np.testing.assert_array_equal(
        np.isnan(normalised.features), np.isnan(raw.features)
    )  # a warm-up NaN is never filled


@pytest.mark.parametrize(("features", "labels"), [("zscore", "zscore"), ("rank", "rank")])
def test_a_rows_value_depends_on_its_own_date_only(features, labels):
    """Scrambling every other date's inputs and labels leaves a date's normalised values."""
    raw = _rows(_panel(seed=1))
    base = normalise_by_date(raw.copy(), features=features, labels=labels)
    rng = np.random.default_rng(3)
    for probe in rng.choice(np.unique(raw.stamps), size=5, replace=False):
        scrambled = raw.copy()
        others = np.flatnonzero(raw.stamps != probe)
        shuffled = rng.permutation(others)
        scrambled.features[others] = raw.features[shuffled] * 3.0 + 1.0
        scrambled.targets[others] = raw.targets[shuffled] * -2.0
        out = normalise_by_date(scrambled, features=features, labels=labels)
        on_probe = raw.stamps == probe
        np.testing.assert_array_equal(out.features[on_probe], base.features[on_probe])
        np.testing.assert_array_equal(out.targets[on_probe], base.targets[on_probe])
        assert not np.array_equal(out.features[~on_probe], base.features[~on_probe])


def test_normalising_twice_or_too_few_tickers_or_a_price_target_is_refused():
    rows = normalise_by_date(_rows(), features="none", labels="rank")
    with pytest.raises(ConfigError, match="normalised already"):
        normalise_by_date(rows, features="none", labels="rank")
    # the inputs can still be normalised on rows whose labels are
    both = normalise_by_date(rows, features="rank", labels="none")
    assert both.cross_section == ("rank", "rank")
    few = _panel(n_tickers=3)
    with pytest.raises(DataError, match="at least 5 tickers"):
        normalise_by_date(_rows(few), features="rank", labels="none")
    priced = dataclasses.replace(_rows(), price_input=True)
    with pytest.raises(ConfigError, match="log_return target"):
        normalise_by_date(priced, features="none", labels="rank")
    with pytest.raises(ConfigError, match="choose one of"):
        normalise_by_date(_rows(), features="gauss", labels="none")
