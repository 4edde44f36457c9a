"""Personal data out of customer messages before anything is learned or saved.

E-mail addresses, IBANs (mod-97 checked), card numbers (Luhn checked), phone numbers and long
digit runs become placeholders. The order matters: an IBAN or a card number is a digit run too,
and is named as what it is first. Amounts, dates and years stay: "EUR 100,000" and "2009" are
what financial text is about.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# a phone number: + and a country code, or an area code in brackets, or groups joined by - or .
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|\d{2,4}(?:[.-]\d{2,4}){2,3})(?![\w-])"
)
DIGIT_RUN = re.compile(r"(?<![.,\d])\d{7,}")  # account and reference numbers, not decimals
PLACEHOLDERS = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}
PLACEHOLDERS["number"] = "[NUMBER]"


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616's mod-97 check of an IBAN (spaces allowed)."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def mask_personal_data(text: str, counts: Counter[str] | None = None) -> str:
    """`text` with personal data replaced by placeholders; `counts` tallies them by kind."""
    tally: Counter[str] = Counter() if counts is None else counts

    def replace(
        kind: str, check: Callable[[str], bool] | None = None
    ) -> Callable[[re.Match[str]], str]:
        def substitute(match: re.Match[str]) -> str:
            found = match.group(0)
            if check is not None and not check(found):
                return found
            tally[kind] += 1
            return PLACEHOLDERS[kind]

        return substitute

    def digits(found: str) -> str:
        return re.sub(r"\D", "", found)

    text = EMAIL.sub(replace("email"), text)
    text = IBAN.sub(replace("iban", iban_valid), text)
    text = CARD.sub(replace("card", lambda found: luhn_valid(digits(found))), text)
    # 9 to 15 digits: a date (2020-01-15) or a price range is shorter
    text = PHONE.sub(replace("phone", lambda found: 9 <= len(digits(found)) <= 15), text)
    return DIGIT_RUN.sub(replace("number"), text)


def mask_texts(texts: list[str]) -> tuple[list[str], dict[str, int]]:
    """Every text masked, and how many of each kind were replaced."""
    counts: Counter[str] = Counter()
    return [mask_personal_data(text, counts) for text in texts], dict(counts)
