"""The models a service holds: each run folder loaded once at start-up, with its route, its
request body, and a prediction that takes a validated body and returns plain JSON."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel

from deepfin.errors import DataError, DeepfinError, RunFolderError
from deepfin.runs.files import CONFIG, read_json
from deepfin.runs.load import load_run
from deepfin.serving.batching import PredictMany
from deepfin.serving.schemas import PricesRequest, ReturnsRequest, TextsRequest, loan_request
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.risk.var_model import VarModel, returns_of_closes
from deepfin.tasks.text.estimator import TextClassifier

log = logging.getLogger(__name__)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# per task: the route's last part
ROUTES = {
    "forecast": "forecast",
    "credit": "score",
    "text": "classify",
    "chart": "charts",
    "risk": "var",
}


@dataclass
class ServedModel:
    """One loaded run: its name, task, route, request body and prediction."""

    name: str
    task: str
    model: str
    request: type[BaseModel]
    predict: Callable[[BaseModel], dict[str, Any]]
    info: dict[str, Any]
    predict_many: PredictMany | None = None  # several requests in one call, where rows are alone

    @property
    def route(self) -> str:
        """The model's prediction route."""
        return f"/models/{self.name}/{ROUTES[self.task]}"


def _prices(body: BaseModel) -> pl.DataFrame:
    assert isinstance(body, PricesRequest)
    frame = pl.DataFrame([row.model_dump() for row in body.rows])
    present = [c for c in ("open", "high", "low", "volume") if frame[c].null_count() < frame.height]
    missing = [c for c in present if frame[c].null_count()]
    if missing:
        raise DataError(f"some rows lack {', '.join(missing)}; give it on every row or on none")
    gone = [c for c in ("open", "high", "low", "volume") if c not in present]
    return frame.drop(gone).sort("ticker", "date", maintain_order=True)


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON rows (dates as ISO text, NaN as null)."""
    out = frame.with_columns(pl.col(pl.Date).cast(pl.String))
    out = out.with_columns(pl.col(pl.Float64).fill_nan(None))
    return out.to_dicts()


def forecast_model(forecaster: Forecaster) -> tuple[type[BaseModel], PredictMany, bool]:
    """Recent prices in; each ticker's forecast from its latest day out. Whether each ticker is
    forecast alone (no per-ticker scaling, no cross-section), so that the tickers of several
    requests can be forecast together."""
    config = forecaster.config
    alone = not config.scale_per_ticker and config.cross_section_norm == "none"

    def answer(forecasts: pl.DataFrame) -> dict[str, Any]:
        latest = forecasts.filter(pl.col("date") == pl.col("date").max().over("ticker"))
        return {"horizon": config.horizon, "forecasts": _rows(latest)}

    def predict_many(bodies: list[BaseModel]) -> list[dict[str, Any] | DeepfinError]:
        frames = [_prices(body) for body in bodies]
        if len(frames) == 1 or len({tuple(frame.columns) for frame in frames}) > 1:
            return [answer(forecaster.predict(frame)) for frame in frames]
        # each request's tickers under a name of their own, "<request>|<ticker>"
        tagged = pl.concat(
            frame.with_columns(pl.format("{}|{}", pl.lit(i), "ticker").alias("ticker"))
            for i, frame in enumerate(frames)
        )
        forecasts = forecaster.predict(tagged)
        request = forecasts["ticker"].str.extract(r"^(\d+)\|", 1).cast(pl.Int64)
        forecasts = forecasts.with_columns(pl.col("ticker").str.replace(r"^\d+\|", ""))
        answers: list[dict[str, Any] | DeepfinError] = []
        for i, frame in enumerate(frames):
            part = forecasts.filter(request == i)
            # a request with no complete window is forecast alone, to be refused as it would be
            try:
                answers.append(answer(part) if part.height else answer(forecaster.predict(frame)))
            except DeepfinError as error:
                answers.append(error)
        return answers

    return PricesRequest, predict_many, alone


def credit_model(name: str, scorer: CreditScorer) -> tuple[type[BaseModel], PredictMany]:
    """Applicants in; default probability, score, band and reason codes out. Each row is scored
    alone, so the rows of several requests are scored together."""
    request = loan_request(name, scorer)

    def predict_many(bodies: list[BaseModel]) -> list[dict[str, Any] | DeepfinError]:
        rows = [row.model_dump() for body in bodies for row in body.rows]  # type: ignore[attr-defined]
        columns = [*scorer.numeric_, *scorer.categorical_]
        as_text = set(scorer.categorical_)  # a category sent as 1 or true is the text "1"/"True"
        frame = pl.DataFrame(
            {
                c: [row[c] if row[c] is None or c not in as_text else str(row[c]) for row in rows]
                for c in columns
            },
            schema={
                **{c: pl.Float64 for c in scorer.numeric_},
                **{c: pl.String for c in scorer.categorical_},
            },
        )
        scores = _rows(scorer.score(frame))
        return [{"scores": part} for part in _parts(scores, bodies, "rows")]

    return request, predict_many


def text_model(classifier: TextClassifier) -> tuple[type[BaseModel], PredictMany]:
    """Texts in; label, probability and the runners-up (or a score) out. Each text is labelled
    alone, so the texts of several requests are labelled together."""

    def predict_many(bodies: list[BaseModel]) -> list[dict[str, Any] | DeepfinError]:
        texts = [text for body in bodies for text in body.texts]  # type: ignore[attr-defined]
        labelled = _rows(classifier.predict(pl.DataFrame({"text": texts})).drop("text"))
        return [{"labels": part} for part in _parts(labelled, bodies, "texts")]

    return TextsRequest, predict_many


def _parts(rows: list[Any], bodies: list[BaseModel], field: str) -> list[list[Any]]:
    """`rows` cut back into each body's share, in order."""
    parts, start = [], 0
    for body in bodies:
        size = len(getattr(body, field))
        parts.append(rows[start : start + size])
        start += size
    return parts


def one(predict_many: PredictMany) -> Callable[[BaseModel], dict[str, Any]]:
    """The prediction of one request by a batch prediction."""

    def predict(body: BaseModel) -> dict[str, Any]:
        (answer,) = predict_many([body])
        if isinstance(answer, DeepfinError):
            raise answer
        return answer

    return predict


def chart_model(classifier: ChartClassifier) -> tuple[type[BaseModel], Callable[..., Any]]:
    """Recent prices in; each ticker's chance of a rise over the horizon out."""

    def predict(body: BaseModel) -> dict[str, Any]:
        predicted = classifier.predict(_prices(body), latest=True)
        return {"horizon": classifier.horizon_, "up": _rows(predicted)}

    return PricesRequest, predict


def var_model(model: VarModel) -> tuple[type[BaseModel], Callable[..., Any]]:
    """A series' recent returns (or closes) in; VaR and ES by method and level out."""

    def predict(body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, ReturnsRequest)
        if body.returns is not None:
            returns = np.array(body.returns)
        else:
            returns = returns_of_closes(np.array(body.closes))
        return {"horizon": model.horizon, "tails": _rows(model.forecast(returns))}

    return ReturnsRequest, predict


def served_model(name: str, run_dir: Path) -> ServedModel:
    """The run folder at `run_dir`, loaded and made ready to serve as `name`."""
    estimator = load_run(run_dir)
    saved = read_json(run_dir / CONFIG)
    task = str(saved["task"])
    many: PredictMany | None = None
    if isinstance(estimator, Forecaster):
        request, many, alone = forecast_model(estimator)
        predict = one(many)
        many = many if alone else None
        model = estimator.config.model
    elif isinstance(estimator, CreditScorer):
        request, many = credit_model(name, estimator)
        predict = one(many)
        model = estimator.config.model
    elif isinstance(estimator, TextClassifier):
        request, many = text_model(estimator)
        predict = one(many)
        model = estimator.model_name
    elif isinstance(estimator, ChartClassifier):
        request, predict = chart_model(estimator)
        model = estimator.config.model
    elif isinstance(estimator, VarModel):
        request, predict = var_model(estimator)
        model = ",".join(estimator.methods)
    else:
        raise RunFolderError(f"{run_dir} is a {task} run, which the service does not serve")
    metrics = getattr(estimator, "metrics_", None) or {}
    info = {
        "created": saved.get("created"),
        "data": metrics.get("split", {}) if isinstance(metrics, dict) else {},
        "metrics": _summary(metrics),
    }
    if isinstance(estimator, VarModel):
        info["data"] = {"series": estimator.series, "test": metrics.get("test"),
                        "fitted_through": estimator.fitted_through}  # fmt: skip
        info["metrics"] = _backtests(metrics, estimator.methods)
    return ServedModel(name, task, model, request, predict, info, many)


def _summary(metrics: Any) -> dict[str, Any]:
    """The first model's headline numbers (no per-class tables, confusion matrices, ...)."""
    if not isinstance(metrics, dict):
        return {}
    models = metrics.get("models", metrics)  # a forecast's metrics are keyed by model
    if isinstance(models, dict) and models:
        first = next(iter(models.values()))
        if isinstance(first, dict):
            return {
                k: v
                for k, v in first.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
            }
    return {}


def _backtests(metrics: dict[str, Any], methods: tuple[str, ...]) -> dict[str, Any]:
    """A VaR run's backtests of the served methods: breach rate and Kupiec's p per level."""
    rows = metrics.get("backtests", [])
    return {
        f"{row['method']}_{row['level']:g}": {
            "breach_rate": row.get("breach_rate"),
            "kupiec_p": row.get("kupiec_p"),
        }
        for row in rows if isinstance(row, dict) and row.get("method") in methods
    }  # fmt: skip


def load_models(
    runs: list[Path], *, names: list[str] | None = None, skip_broken: bool = False
) -> dict[str, ServedModel]:
    """Every run folder loaded once, named by its folder (or `names`); a folder that fails to
    load stops start-up with its name, unless `skip_broken` (then it is logged and left out)."""
    if not runs:
        raise DataError("no run folders to serve: give --run runs/<folder> (repeatable)")
    names = names or [Path(run).name for run in runs]
    if len(set(names)) != len(names):
        raise DataError(
            f"two runs share a folder name ({names}), which names their routes; rename one folder"
        )
    served: dict[str, ServedModel] = {}
    for name, run in zip(names, runs, strict=True):
        if not NAME.fullmatch(name):
            raise DataError(
                f"{name!r} (the run folder's name) cannot name a model in a URL; rename the folder "
                "with letters, digits, ., - and _ only"
            )
        try:
            served[name] = served_model(name, Path(run))
        except DeepfinError as error:
            if not skip_broken:
                raise RunFolderError(f"cannot serve {run}: {error}") from None
            log.warning("skipping %s: %s", run, error)
    if not served:
        raise RunFolderError("none of the run folders could be loaded; nothing to serve")
    return served
