"""Columns that identify a person (names, e-mails, phones, national ids, addresses), found by
their name and by their content, so they are kept out of models and run folders."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection

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
# patterns over a whole value, with the least share of distinct values: a column is flagged
# when most sampled values match (capitalised words also name cities, which repeat)
VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$"), "e-mail addresses", 0.0),
    (re.compile(r"^\d{3}-\d{2}-\d{4}$"), "national id numbers", 0.0),
    (re.compile(r"^\+?(?=(?:\D*\d){7,15}\D*$)[\d\s().-]+$"), "phone numbers", 0.0),
    (
        re.compile(
            r"^\d+[a-z]?\s+.*\b(street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|"
            r"way|court|ct|place|pl|square|sq|strasse|str)\b",
            re.IGNORECASE,
        ),
        "postal addresses",
        0.0,
    ),
    (re.compile(r"^[A-Z][a-z'’-]+(?: [A-Z][a-z'’.-]*){1,3}$"), "personal names", 0.5),
)
MATCH_SHARE = 0.8  # share of sampled values that must match a pattern
UNIQUE_SHARE = 0.9  # text this unique per row identifies rows, not groups
MIN_ROWS_FOR_UNIQUENESS = 50  # fewer rows than this: uniqueness says nothing
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


def _reason_by_content(series: pl.Series) -> str | None:
    present = series.drop_nulls()
    if present.len() == 0:
        return None
    sample = present.head(SAMPLE)
    if series.dtype.is_integer():
        # amounts repeat somewhere in a sample this large; row and account numbers never do
        if sample.len() >= MIN_ROWS_FOR_UNIQUENESS and sample.n_unique() == sample.len():
            return "its integer values are all distinct, like a row or account number"
        return None
    if series.dtype not in (pl.String, pl.Categorical):
        return None
    text = sample.cast(pl.String).str.strip_chars()
    unique = text.n_unique() / text.len()
    for pattern, what, least_unique in VALUE_PATTERNS:
        share = sum(bool(pattern.match(value)) for value in text.to_list()) / text.len()
        if share >= MATCH_SHARE and unique >= least_unique:
            return f"its values look like {what}"
    numeric = text.cast(pl.Float64, strict=False).is_not_null().mean()
    if text.len() >= MIN_ROWS_FOR_UNIQUENESS and unique >= UNIQUE_SHARE and not numeric:
        return "its values are unique per row: free text or an identifier"
    return None


def find_identifiers(frame: pl.DataFrame, *, skip: Collection[str] = ()) -> dict[str, str]:
    """Columns that look like personal identifiers, each with the reason, by name then content."""
    found: dict[str, str] = {}
    for column in frame.columns:
        if column in skip:
            continue
        reason = _reason_by_name(column) or _reason_by_content(frame[column])
        if reason is not None:
            found[column] = reason
    return found
