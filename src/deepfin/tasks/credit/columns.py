"""Which columns of a loan table become features, and which are kept out of the model."""

from __future__ import annotations

import logging

import polars as pl

from deepfin.data.tabular.encoding import infer_columns
from deepfin.data.tabular.identifiers import find_identifiers
from deepfin.errors import DataError
from deepfin.tasks.credit.config import CreditConfig

log = logging.getLogger(__name__)


def feature_columns(
    frame: pl.DataFrame, config: CreditConfig
) -> tuple[list[str], list[str], dict[str, str]]:
    """Numeric and categorical features, and the identifier-like columns refused (with why).

    Features are all columns but the target, the date, the dropped and sensitive ones, and
    those that look like personal identifiers (unless `allow_columns` names them).
    """
    named = [*config.drop, *config.allow_columns, *config.sensitive]
    named += [config.date_col] if config.date_col else []
    absent = sorted(set(named) - set(frame.columns))
    if absent:
        raise DataError(f"column(s) {absent} named in the options are not in the data")
    exclude = {config.target, *config.drop, *config.sensitive}
    exclude |= {config.date_col} if config.date_col else set()
    identifiers = find_identifiers(frame, skip={*exclude, *config.allow_columns})
    if identifiers:
        log.warning(
            "refused as features, they look like personal identifiers: %s; "
            "allow one with allow_columns (CLI: --allow-column NAME)",
            "; ".join(f"{column} ({why})" for column, why in identifiers.items()),
        )
    refused = exclude | set(identifiers)
    numeric, categorical = infer_columns(
        frame,
        exclude=sorted(refused),
        numeric=[c for c in config.numeric if c not in refused],
        categorical=[c for c in config.categorical if c not in refused],
    )
    return numeric, categorical, identifiers
