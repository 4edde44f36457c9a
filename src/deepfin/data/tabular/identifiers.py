"""Columns that identify a person (names, e-mails, phones, national ids, addresses), found by
their name and by their content, so they are kept out of models and run folders."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection

import numpy as np
import polars as pl

# tokens of a column name (split on punctuation and camelCase) that mark a personal identifier
NAME_TOKENS: dict[str, str] = {
    "name": "a person's name",
    "firstname": "a person's name",
    "lastname": "a person's name",
    "surname": "a person's name",
    "fullname": "a person's name",
    "email": "an e-mail address",
    "mail": "an e-mail address",
    "phone": "a phone number",
    "mobile": "a phone number",
    "telephone": "a phone number",
    "tel": "a phone number",
    "ssn": "a national id",
    "passport": "a national id",
    "nin": "a national id",
    "iban": "an account number",
    "address": "a postal address",
    "street": "a postal address",
    "dob": "a date of birth",
    "birthdate": "a date of birth",
    "id": "an identifier",
}
# adjacent name tokens, joined, that mark one too ("national_id", "SocialSecurityNumber")
NAME_PHRASES: dict[str, str] = {
    "firstname": "a person's name",
    "lastname": "a person's name",
    "socialsecurity": "a national id",
    "nationalid": "a national id",
    "taxid": "a national id",
    "accountnumber": "an account number",
    "cardnumber": "an account number",
    "dateofbirth": "a date of birth",
    "birthdate": "a date of birth",
}
# patterns over a whole value: a column is flagged when most sampled values match, however
# often they repeat (two applicants may share a phone)
VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$"), "e-mail addresses"),
    (re.compile(r"^\d{3}-\d{2}-\d{4}$"), "national id numbers"),
    (re.compile(r"^\+?(?=(?:\D*\d){7,15}\D*$)[\d\s().-]+$"), "phone numbers"),
    (
        re.compile(
            r"^\d+[a-z]?\s+.*\b(street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|"
            r"way|court|ct|place|pl|square|sq|strasse|str)\b",
            re.IGNORECASE,
        ),
        "postal addresses",
    ),
)
# two to four capitalised words: "Olivia Smith"; also cities and products, told apart by count
PERSON_NAME = re.compile(r"^[A-Z][a-z'’-]+(?: [A-Z][a-z'’.-]*){1,3}$")
MATCH_SHARE = 0.8  # share of sampled values that must match a pattern
UNIQUE_SHARE = 0.5  # half the values distinct: most values are held by one or two rows
NAME_LEVELS = 20  # fewer distinct capitalised names: places or products ("New York")
MIN_ROWS_FOR_UNIQUENESS = 50  # fewer rows than this: uniqueness says nothing
NUMBER_DIGITS = 7  # phone numbers stored as integers (leading zero lost), account numbers
ROUND_SHARE = 0.3  # amounts often end in 0; the last digit of a phone number does 1 time in 10
SAMPLE = 2_000


def _name_tokens(column: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column)
    return [token for token in re.split(r"[^a-z0-9]+", spaced.lower()) if token]


def _reason_by_name(column: str) -> str | None:
    tokens = _name_tokens(column)
    for token in tokens:
        if token in NAME_TOKENS:
            return f"its name suggests {NAME_TOKENS[token]}"
    for first, second in itertools.pairwise(tokens):
        if first + second in NAME_PHRASES:
            return f"its name suggests {NAME_PHRASES[first + second]}"
    return None


def _whole_numbers(series: pl.Series) -> np.ndarray | None:
    """Integers, or floats that are all whole (an integer column with a gap, read by pandas)."""
    if series.dtype.is_integer():
        return series.cast(pl.Int64).to_numpy()
    if series.dtype.is_float():
        values = series.to_numpy()
        values = values[np.isfinite(values)]
        if values.size and (values == np.round(values)).all() and np.abs(values).max() < 2**62:
            return values.astype(np.int64)
    return None


def _reason_by_numbers(values: np.ndarray) -> str | None:
    if values.size < MIN_ROWS_FOR_UNIQUENESS:
        return None
    distinct = np.unique(values).size
    # amounts repeat somewhere in a sample this large; row and account numbers never do
    if distinct == values.size:
        return "its integer values are all distinct, like a row or account number"
    digits = np.array([len(str(abs(value))) for value in values.tolist()])
    common = int(np.bincount(digits).argmax())
    if (
        values.min() >= 0
        and common >= NUMBER_DIGITS
        and (digits == common).mean() >= MATCH_SHARE
        and distinct / values.size >= UNIQUE_SHARE
        and (values % 10 == 0).mean() < ROUND_SHARE
    ):
        return f"its values are {common}-digit numbers, like phone or account numbers"
    return None


def _reason_by_text(text: pl.Series) -> str | None:
    values = text.to_list()
    for pattern, what in VALUE_PATTERNS:
        if sum(bool(pattern.match(value)) for value in values) / len(values) >= MATCH_SHARE:
            return f"its values look like {what}"
    levels = text.n_unique()
    unique = levels / text.len()
    names = sum(bool(PERSON_NAME.match(value)) for value in values) / len(values)
    if names >= MATCH_SHARE and (unique >= UNIQUE_SHARE or levels >= NAME_LEVELS):
        return f"its values look like personal names, {levels} distinct"
    numeric = text.cast(pl.Float64, strict=False).is_not_null().mean()
    if text.len() >= MIN_ROWS_FOR_UNIQUENESS and unique >= UNIQUE_SHARE and not numeric:
        return f"its values are mostly distinct, {levels} in {text.len()}: free text or an id"
    return None


def _reason_by_content(series: pl.Series) -> str | None:
    sample = series.drop_nulls().head(SAMPLE)
    if sample.len() == 0:
        return None
    numbers = _whole_numbers(sample)
    if numbers is not None:
        return _reason_by_numbers(numbers)
    if series.dtype in (pl.String, pl.Categorical):
        return _reason_by_text(sample.cast(pl.String).str.strip_chars())
    return None


def find_identifiers(frame: pl.DataFrame, *, skip: Collection[str] = ()) -> dict[str, str]:
    """Columns that look like personal identifiers, each with the reason, by name then content.

    By name: a token of the column name (split on punctuation and camelCase) in `NAME_TOKENS`
    ("email", "phone", "ssn", "id", ...), or two adjacent tokens in `NAME_PHRASES`
    ("national_id", "AccountNumber"). By content, over the first `SAMPLE` (2,000) present
    values, however often they repeat:

    - text where at least `MATCH_SHARE` (80 %) of values are e-mail addresses, national id
      numbers (123-45-6789), phone numbers (7 to 15 digits with + ( ) - . or spaces) or
      postal addresses (a house number, then a street word);
    - personal names: 80 % of values are two to four capitalised words ("Olivia Smith"), with
      at least half of them distinct or at least `NAME_LEVELS` (20) distinct; fewer repeating
      values are read as places or products ("New York", "Gold Card", "Grade A");
    - high-cardinality text: at least 50 rows, at least `UNIQUE_SHARE` (half) of the values
      distinct and none of them a number (free text, names in any spelling, codes);
    - whole numbers (integers, or floats that are all whole) with at least 50 rows that are
      all distinct (row or account numbers), or that look like phone or account numbers: none
      negative, 80 % with one digit count of at least `NUMBER_DIGITS` (7), at least half
      distinct, and fewer than `ROUND_SHARE` (30 %) multiples of 10. Amounts fail one of
      these: their digit counts spread over orders of magnitude, or they end in round figures.
    """
    found: dict[str, str] = {}
    for column in frame.columns:
        if column in skip:
            continue
        reason = _reason_by_name(column) or _reason_by_content(frame[column])
        if reason is not None:
            found[column] = reason
    return found
