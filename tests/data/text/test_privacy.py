import pytest

from deepfin.data.text.privacy import iban_valid, luhn_valid, mask_personal_data, mask_texts


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to jane.doe+bank@mail.example.co.uk today", "write to [EMAIL] today"),
        ("pay GB82 WEST 1234 5698 7654 32 now", "pay [IBAN] now"),
        ("pay DE89370400440532013000 now", "pay [IBAN] now"),
        ("my card 4111 1111 1111 1111 is lost", "my card [CARD] is lost"),
        ("card 5500-0000-0000-0004 expired", "card [CARD] expired"),
        ("call +44 20 7946 0958 please", "call [PHONE] please"),
        ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
        ("customer 123456789 wrote", "customer [NUMBER] wrote"),
    ],
)
def test_planted_personal_data_is_replaced(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Net sales rose to EUR 100,000 in 2009 from EUR 95.5 mn in 2008 .",
        "The meeting is on 2020-01-15 and the report on 15.01.2020 .",
        "Shares traded between 10-20 EUR ; 2007 2008 2009 were weak .",
        "The dividend is $0.036724557 per share .",
        "card 4111 1111 1111 1112 fails its checksum",  # not a card number
        "GB82 WEST 1234 5698 7654 33 fails mod 97",
    ],
)
def test_amounts_dates_and_numbers_that_fail_their_checks_stay(text: str) -> None:
    assert mask_personal_data(text) == text


def test_checksums_and_counts() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82WEST")
    texts, counts = mask_texts(["a@b.com and c@d.org", "4111111111111111", "plain"])
    assert texts == ["[EMAIL] and [EMAIL]", "[CARD]", "plain"]
    assert counts == {"email": 2, "card": 1}
