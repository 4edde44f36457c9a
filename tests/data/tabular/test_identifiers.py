"""Identifier detection by content when values repeat: phones, names, free text, account numbers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepfin.data.tabular.identifiers import find_identifiers
from tests.conftest import SHARED_DATA

N = 600
FIRST = ["Olivia", "Mateo", "Aiko", "Kwame", "Ingrid", "Ravi", "Lucia"]


def letters(number: int) -> str:
    return "".join(chr(97 + int(digit)) for digit in str(number))


def phones(n: int = N) -> np.ndarray:
    """Distinct 10-digit numbers (a UK number without its leading 0), one shared by two rows."""
    numbers = 7_700_900_000 + (np.arange(n) * 7_919) % 100_000
    numbers[1] = numbers[0]
    return numbers


def test_integer_phone_numbers_are_found_even_when_two_applicants_share_one():
    frame = pl.DataFrame({"callback": phones()})
    found = find_identifiers(frame)
    assert set(found) == {"callback"} and "phone" in found["callback"]
    # a gap makes pandas read them as floats: still whole numbers
    gappy = frame.to_pandas().astype(float)
    gappy.loc[5, "callback"] = np.nan
    assert set(find_identifiers(pl.from_pandas(gappy))) == {"callback"}
    # shared by households: each number held by two rows
    households = np.repeat(7_700_900_000 + np.arange(N // 2) * 7_919, 2)
    assert set(find_identifiers(pl.DataFrame({"reach": households}))) == {"reach"}


def test_amounts_with_many_digits_or_repeats_are_not_phone_numbers():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "income": rng.integers(20_000, 200_000, N),  # repeats; five or six digits
            # seven digits, but round: loan amounts in a small currency unit
            "loan_idr": rng.integers(1_000, 9_999, N) * 1_000,
            # not round, but spread over orders of magnitude (bills in cents, some zero)
            "bill_cents": np.where(
                rng.random(N) < 0.1, 0, np.exp(rng.normal(13, 1.5, N)).astype(np.int64)
            ),
            # negative: an amount (some zero, so not all distinct)
            "balance": np.where(rng.random(N) < 0.1, 0, rng.integers(-5_000_000, 9_000_000, N)),
            "months": rng.integers(1, 72, N),
        }
    )
    assert find_identifiers(frame) == {}


def test_names_under_neutral_headers_are_found_when_they_repeat():
    frame = pl.DataFrame(
        {
            # each holder on about three loans: a third of the values distinct
            "holder": [f"{FIRST[k % 7]} Vexlund{letters(k)}" for k in np.arange(N) % (N // 3)],
            # 25 guarantors on 24 loans each: each would pass the rare-category count
            "guarantor": [f"{FIRST[i % 25 % 7]} Tharimo{letters(i % 25)}" for i in range(N)],
        }
    )
    found = find_identifiers(frame)
    assert set(found) == {"holder", "guarantor"}
    assert "personal names" in found["guarantor"] and "25 distinct" in found["guarantor"]


def test_a_few_capitalised_levels_are_places_or_grades_not_names():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "grade": rng.choice(["Grade A", "Grade B", "Grade C"], N),
            "region": rng.choice(["New York", "Los Angeles", "San Diego", "Santa Fe"], N),
            "product": rng.choice([f"Gold Card {tier}" for tier in "ABCDEFGHIJ"], N),
            "zip3": [f"{rng.integers(900, 930)}xx" for _ in range(N)],  # 30 codes
        }
    )
    assert find_identifiers(frame) == {}


def test_high_cardinality_text_and_phone_text_are_found_when_values_repeat():
    frame = pl.DataFrame(
        {
            "client": [f"quorvath {letters(i // 2)}, {FIRST[i % 7].lower()}" for i in range(N)],
            "reach_at": [f"+44 20 7946 {i // 3:04d}" for i in range(N)],
        }
    )
    found = find_identifiers(frame)
    assert "mostly distinct" in found["client"] and "phone numbers" in found["reach_at"]


@pytest.mark.data
def test_real_features_of_taiwan_and_german_credit_are_not_identifiers():
    taiwan = SHARED_DATA / "taiwan_credit_default" / "UCI_Credit_Card.csv"
    german = SHARED_DATA / "german_credit" / "german.data"
    if not taiwan.exists() or not german.exists():
        pytest.skip(f"real-data test: {taiwan} or {german} is absent")
    assert set(find_identifiers(pl.read_csv(taiwan))) == {"ID"}
    names = [f"a{i:02d}" for i in range(1, 21)] + ["status"]
    frame = pl.read_csv(german, separator=" ", has_header=False, new_columns=names)
    assert find_identifiers(frame) == {}
