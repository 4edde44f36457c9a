"""Loan tables: reading, the target, column kinds, train-only encoders, splits, identifiers."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from deepfin.data.tabular.encoding import (
    TabularEncoder,
    binary_target,
    imputation_value,
    infer_columns,
    numeric_values,
    read_loans,
)
from deepfin.data.tabular.identifiers import find_identifiers
from deepfin.data.tabular.splits import parse_dates, split_loans, stratified_folds
from deepfin.errors import DataError, InputFileError


def loans(n: int = 200, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "purpose": rng.choice(["car", "home", "education"], n),
            "default": (rng.random(n) < 0.3).astype(int),
        }
    )


def test_read_loans_accepts_csv_parquet_pandas_and_polars(tmp_path):
    frame = loans()
    frame.write_csv(tmp_path / "loans.csv")
    frame.write_parquet(tmp_path / "loans.parquet")
    for source in (tmp_path / "loans.csv", str(tmp_path / "loans.parquet"), frame.to_pandas()):
        assert read_loans(source).equals(frame)
    with pytest.raises(InputFileError, match="no file"):
        read_loans(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="cannot read loans from a list"):
        read_loans([1, 2])


@pytest.mark.parametrize(
    ("values", "default_value", "expected"),
    [
        ([0, 1, 1, 0], None, [0, 1, 1, 0]),
        ([False, True, True, False], None, [0, 1, 1, 0]),
        ([0.0, 1.0, 1.0, 0.0], None, [0, 1, 1, 0]),
        (["no", "yes", "yes", "no"], "yes", [0, 1, 1, 0]),
        (["good", "bad", "bad", "good"], "bad", [0, 1, 1, 0]),
        ([1, 2, 2, 1], "2", [0, 1, 1, 0]),  # German credit: 2 = bad
    ],
)
def test_binary_target_maps_values_explicitly(values, default_value, expected):
    frame = pl.DataFrame({"y": values})
    np.testing.assert_array_equal(binary_target(frame, "y", default_value=default_value), expected)


@pytest.mark.parametrize(
    ("values", "default_value", "message"),
    [
        (["good", "bad"], None, "say which one means default"),
        ([0, 0, 0], None, "single class"),
        (["bad", "bad"], "bad", "single class"),
        ([0, 1, 2], None, "not binary"),
        ([0, None, 1], None, "missing in 1 row"),
        (["good", "bad"], "default", "does not occur"),
    ],
)
def test_bad_targets_are_refused_with_what_to_do(values, default_value, message):
    with pytest.raises(DataError, match=message):
        binary_target(pl.DataFrame({"y": values}), "y", default_value=default_value)


def test_missing_target_column_names_the_columns():
    with pytest.raises(DataError, match=r"target column 'default' is not in the data.*income"):
        binary_target(pl.DataFrame({"income": [1.0]}), "default")


def test_infer_columns_guesses_kinds_and_obeys_overrides():
    frame = pl.DataFrame(
        {
            "amount": ["1200", "340.5", None],  # numbers stored as text
            "code": [1, 2, 3],
            "city": ["a", "b", "a"],
            "default": [0, 1, 0],
        }
    )
    numeric, categorical = infer_columns(frame, exclude=["default"])
    assert numeric == ["amount", "code"] and categorical == ["city"]
    numeric, categorical = infer_columns(frame, exclude=["default"], categorical=["code"])
    assert numeric == ["amount"] and categorical == ["code", "city"]


def test_a_mostly_numeric_text_column_is_a_wrong_type_error():
    frame = pl.DataFrame({"amount": [str(i) for i in range(99)] + ["n/a"]})
    with pytest.raises(DataError, match=r"'amount' looks numeric but 1 value.*data row\(s\) 100\)"):
        infer_columns(frame, exclude=[])


def test_encoder_learns_from_train_only_and_round_trips_through_json():
    train = pl.DataFrame(
        {
            "income": [1.0, 2.0, None, 4.0] * 5,
            "purpose": ["car"] * 12 + ["home"] * 6 + ["boat", None],
        }
    )
    encoder = TabularEncoder(min_category_count=5).fit(
        train, numeric=["income"], categorical=["purpose"]
    )
    assert encoder.numeric_["income"]["fill"] == 2.0  # five rows share it; test rows never enter
    assert encoder.feature_names_ == [
        "income",
        "income (missing)",
        "purpose=car",
        "purpose=home",
        "purpose (other)",
        "purpose (missing)",
    ]
    assert encoder.feature_sources_ == ["income"] * 2 + ["purpose"] * 4
    test = pl.DataFrame({"income": [None, 1000.0], "purpose": ["boat", "home"]})
    x = encoder.transform(test)
    assert x.shape == (2, 6) and x.dtype == np.float32
    assert x[0, 1] == 1.0 and x[0, 4] == 1.0  # imputed + flagged; rare value -> (other)
    assert x[1, 0] == encoder.clip  # an outlier is clipped
    again = TabularEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    np.testing.assert_array_equal(again.transform(test), x)
    assert "boat" not in json.dumps(encoder.to_dict())  # rare values are not saved


def test_the_fill_for_missing_numbers_is_no_single_applicants_value():
    # eleven rows: the median, 6, is one row's value, and so is the mean of the 5 middle ones
    assert imputation_value(np.arange(1.0, 12.0), min_rows=5) == 6.5
    assert imputation_value(np.array([30.0] * 3 + [34.0] * 10 + [60.0] * 4), min_rows=10) == 34.0
    rng = np.random.default_rng(0)
    for size in (10, 11, 57, 301):
        for values in (rng.integers(0, 40, size), rng.integers(0, 10**6, size), rng.random(size)):
            fill = imputation_value(values.astype(float), min_rows=10)
            assert np.sum(values == fill) in (0, *range(10, size + 1)), (size, fill)


def test_integer_phone_numbers_leave_no_one_s_number_in_the_saved_encoder():
    numbers = (7_700_900_000 + (np.arange(301) * 7_919) % 100_000).tolist()
    gaps = [None if i % 60 == 0 else number for i, number in enumerate(numbers)]
    present = [number for number in gaps if number is not None]
    assert len(present) % 2 == 1 and np.median(present) in present  # a median would leak one
    encoder = TabularEncoder().fit(
        pl.DataFrame({"callback": gaps}), numeric=["callback"], categorical=[]
    )
    assert encoder.numeric_["callback"]["fill"] not in set(numbers)
    saved = json.dumps(encoder.to_dict())
    assert "median" not in saved
    # run folders of earlier versions saved the median as the fill
    earlier = encoder.to_dict()
    earlier["numeric"]["callback"] = {
        "median": 1.0,
        "mean": 0.0,
        "scale": 1.0,
        "missing_flag": True,
    }
    x = TabularEncoder.from_dict(earlier).transform(pl.DataFrame({"callback": [None]}))
    assert x[0, 0] == 1.0


def test_a_numeric_column_held_by_a_handful_of_rows_is_refused():
    train = pl.DataFrame({"rare": [1.0, 2.0, 3.0] + [None] * 50})
    with pytest.raises(DataError, match=r"'rare' has 3 value\(s\).*min_category_count=10"):
        TabularEncoder().fit(train, numeric=["rare"], categorical=[])
    assert TabularEncoder(min_category_count=3).fit(train, numeric=["rare"], categorical=[])


def test_unknown_category_without_a_rare_level_is_an_error_unless_asked_otherwise():
    train = pl.DataFrame({"purpose": ["car", "home"] * 10})
    encoder = TabularEncoder().fit(train, numeric=[], categorical=["purpose"])
    new = pl.DataFrame({"purpose": ["car", "yacht"]})
    with pytest.raises(
        DataError, match=r"'purpose' has 1 value\(s\) never seen in training \(data row\(s\) 2\)"
    ):
        encoder.transform(new)
    np.testing.assert_array_equal(encoder.transform(new, unknown="other"), [[1, 0], [0, 0]])


def test_wrong_column_types_at_transform_time_are_named():
    encoder = TabularEncoder().fit(loans(), numeric=["income"], categorical=["purpose"])
    bad = loans().with_columns(pl.lit("lots").alias("income"))
    with pytest.raises(
        DataError, match=r"column 'income' must be numeric.*data row\(s\) 1, 2, 3, 4, 5 \.\.\."
    ):
        encoder.transform(bad)
    with pytest.raises(DataError, match=r"\['purpose'\] used in training are missing"):
        encoder.transform(loans().drop("purpose"))


def test_out_of_time_split_puts_the_latest_applications_in_test():
    frame = loans(300).with_columns(
        pl.date_range(dt.date(2020, 1, 1), dt.date(2020, 10, 26), eager=True)
        .cast(pl.String)
        .alias("applied")
    )
    labels = frame["default"].to_numpy()
    split = split_loans(
        frame, labels=labels, date_col="applied", test_fraction=0.2, val_fraction=0.1
    )
    assert split.kind == "out_of_time" and split.val is not None
    assert parse_dates(split.train, "applied").max() < parse_dates(split.val, "applied").min()
    assert parse_dates(split.val, "applied").max() < parse_dates(split.test, "applied").min()
    assert split.test.height == 60 and split.describe()["test"]["dates"].startswith("2020-08")


def test_stratified_split_and_folds_keep_the_default_rate():
    frame = loans(1_000)
    labels = frame["default"].to_numpy()
    split = split_loans(frame, labels=labels, test_fraction=0.2, val_fraction=0.1, seed=1)
    rates = [part["default"].mean() for part in (split.train, split.val, split.test)]
    assert max(rates) - min(rates) < 0.01
    folds = stratified_folds(labels, folds=5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(1_000))
    assert max(labels[f].mean() for f in folds) - min(labels[f].mean() for f in folds) < 0.01
    with pytest.raises(DataError, match="at least 2 folds"):
        stratified_folds(labels, folds=1)


def test_bad_dates_are_named():
    frame = pl.DataFrame({"applied": ["2020-01-01", "someday"]})
    with pytest.raises(
        DataError, match=r"1 value\(s\) of date column 'applied' are not dates \(data row\(s\) 2\)"
    ):
        parse_dates(frame, "applied")


def test_identifiers_are_found_by_name_and_by_content():
    n = 100
    rng = np.random.default_rng(0)
    first = ["Alice", "Bruno", "Chen", "Dana", "Emeka"]
    frame = pl.DataFrame(
        {
            "customer_id": np.arange(n),
            "contact": [f"person{i}@mail.example.org" for i in range(n)],
            "col_a": [f"+1 (555) 010-{i:04d}" for i in range(n)],
            "who": [f"{first[i % 5]} Smith{chr(97 + i % 26)}" for i in range(n)],
            "lives_at": [f"{i + 1} Harbour Road, Leeds" for i in range(n)],
            "tax": [f"{i:03d}-45-{i:04d}" for i in range(n)],
            "SocialSecurityNumber": ["x"] * n,
            "income": rng.normal(50_000, 1_000, n),
            "purpose": rng.choice(["car", "home"], n),
            "loan_amount": rng.choice(np.arange(1_000, 2_000, 50), n),
            "region": rng.choice(["New York", "Los Angeles"], n),
        }
    )
    found = find_identifiers(frame)
    assert set(found) == {
        "customer_id",
        "contact",
        "col_a",
        "who",
        "lives_at",
        "tax",
        "SocialSecurityNumber",
    }
    assert "e-mail" in found["contact"] and "phone" in found["col_a"]
    assert "postal address" in found["lives_at"] and "national id" in found["tax"]
    assert find_identifiers(frame, skip={"contact"}).keys() == found.keys() - {"contact"}


def test_integer_row_numbers_are_identifiers_but_repeating_amounts_are_not():
    frame = pd.DataFrame({"row": np.arange(500) * 7, "amount": np.arange(500) % 97})
    assert set(find_identifiers(pl.from_pandas(frame))) == {"row"}


def test_infinite_or_absurd_amounts_are_refused_not_taken_as_missing():
    for bad in (float("inf"), -float("inf"), 1e300):
        frame = pl.DataFrame({"income": [1.0, 2.0, bad, 4.0]})
        with pytest.raises(
            DataError, match=r"'income' has 1 infinite or absurd .*data row\(s\) 3\)"
        ):
            numeric_values(frame, "income")
