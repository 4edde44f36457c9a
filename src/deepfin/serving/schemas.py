"""Request and response bodies, with the request rows' fields taken from each run's own
preprocessing: a credit run's feature names and categories, a price run's columns."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from deepfin.tasks.credit.estimator import CreditScorer


class Strict(BaseModel):
    """Unknown fields are refused by name (a 422), never ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    instances: ClassVar[str] = "rows"  # the field /invocations fills with its "instances"


class PriceRow(Strict):
    """One ticker's day; close always, the rest where the run's features or charts need them."""

    date: dt.date
    ticker: str = Field(default="series", min_length=1, max_length=64)
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float
    volume: float | None = None


class PricesRequest(Strict):
    """Recent days of one or more tickers, oldest first within each ticker."""

    rows: list[PriceRow] = Field(min_length=1)


class TextsRequest(Strict):
    """Texts to label."""

    instances: ClassVar[str] = "texts"
    texts: list[str] = Field(min_length=1)


class ReturnsRequest(Strict):
    """One series' recent days, oldest first: its daily log returns, or its closes."""

    instances: ClassVar[str] = "returns"
    returns: list[float] | None = Field(default=None, min_length=1)
    closes: list[float] | None = Field(default=None, min_length=2)

    @model_validator(mode="after")
    def one_of_them(self) -> ReturnsRequest:
        if (self.returns is None) == (self.closes is None):
            raise ValueError("send either returns or closes")
        return self


class ErrorBody(BaseModel):
    """What went wrong, as a code a program can branch on and a message a person can read."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every failure's body."""

    error: ErrorBody


class ModelInfo(BaseModel):
    """A served model: what it does, what it takes, how it scored, when and on what."""

    name: str
    task: str
    route: str
    model: str
    created: str | None
    data: dict[str, Any]
    metrics: dict[str, Any]
    input_schema: dict[str, Any]


def loan_request(name: str, scorer: CreditScorer) -> type[BaseModel]:
    """The body of a credit run's /score: rows of its own feature columns; categories are
    free text (an unseen one counts as the run's "other"), numbers may be missing."""
    fields: dict[str, Any] = {}
    for column in scorer.numeric_:
        fields[column] = (float | None, None)
    for column in scorer.categorical_:
        fields[column] = (str | int | float | bool | None, None)
    identifiers = set(scorer.excluded_identifiers_)

    def refuse_identifiers(cls: type[BaseModel], values: Any) -> Any:
        given = sorted(identifiers & set(values)) if isinstance(values, dict) else []
        if given:
            raise ValueError(
                f"{', '.join(given)}: identifier column(s), left out in training and refused here"
            )
        return values

    row = create_model(
        f"{_title(name)}Applicant",
        __base__=Strict,
        __validators__={"identifiers": model_validator(mode="before")(refuse_identifiers)},  # type: ignore[dict-item]
        **fields,
    )
    return create_model(
        f"{_title(name)}ScoreRequest",
        __base__=Strict,
        rows=(list[row], Field(min_length=1)),  # type: ignore[valid-type]
    )


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)
