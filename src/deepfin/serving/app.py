"""The FastAPI application over the loaded models: health, readiness, the model list, one
prediction route per model, SageMaker-style /invocations and /ping; every failure a JSON body
with a code and a message, never a traceback, a file path or a request's values."""

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
)
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from deepfin.errors import DeepfinError
from deepfin.serving.batching import Batcher
from deepfin.serving.guards import (
    AccessLog,
    BodyLimit,
    Limits,
    RateLimit,
    ServiceError,
    ServiceMetrics,
    error_response,
    validation_message,
)
from deepfin.serving.keys import KeyStore
from deepfin.serving.models import ServedModel
from deepfin.serving.schemas import ErrorResponse, ModelInfo, PricesRequest, TextsRequest

log = logging.getLogger("deepfin.serving")


def create_app(
    models: dict[str, ServedModel], *, keys: KeyStore | None, limits: Limits | None = None
) -> FastAPI:
    """The service over `models`; `keys` None serves without authentication."""
    limits = limits or Limits()
    app = FastAPI(
        title="deepfin",
        summary="Read-only predictions from saved deepfin runs.",
        responses={code: {"model": ErrorResponse} for code in (401, 413, 422, 429, 500, 504)},
    )
    metrics = ServiceMetrics()
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    app.add_middleware(AccessLog, metrics=metrics)  # outside the body limit: it logs its 413s
    limiter = anyio.CapacityLimiter(limits.workers)
    rate = RateLimit(limits.rate)

    async def caller(request: Request) -> str:  # async: no thread for a cached key check
        name: str | None = "anonymous"
        if keys is not None:
            header = request.headers.get("authorization", "")
            presented = header[7:].strip() if header.lower().startswith("bearer ") else None
            name = keys.check(presented or request.headers.get("x-api-key"))
        if name is None:
            raise ServiceError(
                401, "unauthorized", "a valid API key is required (Bearer or X-API-Key)"
            )
        request.state.key = name
        rate.hit(name)
        return name

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, **error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_message(error))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = "no such route" if error.status_code == 404 else str(error.detail)
        return error_response(error.status_code, codes.get(error.status_code, "error"), message)

    async def in_thread(function: Callable[[Any], Any], argument: Any) -> Any:
        return await anyio.to_thread.run_sync(function, argument, limiter=limiter)

    batchers = {
        name: Batcher(
            served.predict_many,
            in_thread,
            concurrency=limits.workers,
            max_rows=limits.max_rows,
            observe=metrics.batch.labels(name).observe,
        )
        for name, served in models.items()
        if served.predict_many is not None
    }

    async def run(served: ServedModel, body: BaseModel) -> dict[str, Any]:
        rows = _check_size(body, limits)
        batcher = batchers.get(served.name)
        try:
            with anyio.fail_after(limits.timeout_s):
                if batcher is not None:
                    return await batcher.submit(body, rows)
                return dict(await in_thread(served.predict, body))
        except TimeoutError:
            raise ServiceError(
                504, "timeout", f"the model took over {limits.timeout_s:g} s"
            ) from None
        except DeepfinError as error:
            raise ServiceError(422, "unusable_input", str(error)) from None

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, Any]:
        """Readiness: every model is loaded (they are, before the service starts)."""
        return {"ready": True, "models": len(models)}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus metrics: requests, latency and errors per route."""
        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        """SageMaker's health check."""
        return {"status": "ok"}

    @app.get("/models", response_model=list[ModelInfo])
    def list_models(_: str = Depends(caller)) -> list[dict[str, Any]]:
        """The served models: task, route, input schema, headline metrics, creation, data."""
        return [
            {
                "name": served.name,
                "task": served.task,
                "route": served.route,
                "model": served.model,
                "input_schema": served.request.model_json_schema(),
                **served.info,
            }
            for served in models.values()
        ]

    for served in models.values():
        app.add_api_route(
            served.route,
            _endpoint(served, run, caller),
            methods=["POST"],
            summary=f"{served.task}: {served.model}",
            name=f"{served.name} {served.task}",
        )

    @app.post("/invocations")
    async def invocations(request: Request, _: str = Depends(caller)) -> dict[str, Any]:
        """SageMaker-style: {"instances": [...]} (rows, or texts) -> {"predictions": [...]};
        with several models, name one with ?model=NAME."""
        name = request.query_params.get("model")
        if name is None and len(models) == 1:
            name = next(iter(models))
        if name not in models:
            raise ServiceError(
                404, "unknown_model", f"name a served model with ?model= (one of {sorted(models)})"
            )
        served = models[name]
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError(422, "invalid_request", "the body is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise ServiceError(422, "invalid_request", 'send {"instances": [...]}')
        field = getattr(served.request, "instances", "rows")
        try:
            body = served.request.model_validate({field: payload["instances"]})
        except ValidationError as error:
            raise ServiceError(422, "invalid_request", validation_message(error)) from None
        result = await run(served, body)
        return {"predictions": next(iter(result.values())) if len(result) == 1 else result}

    return app


def _check_size(body: BaseModel, limits: Limits) -> int:
    """The rows (or texts, or returns) of `body`, refused past the limits."""
    given = [getattr(body, name, None) for name in ("rows", "texts", "returns", "closes")]
    rows: list[Any] = next((got for got in given if got), [])
    if len(rows) > limits.max_rows:
        raise ServiceError(
            413, "too_many_rows", f"at most {limits.max_rows} rows per request; got {len(rows)}"
        )
    if isinstance(body, TextsRequest):
        longest = max(len(text) for text in body.texts)
        if longest > limits.max_text_chars:
            raise ServiceError(
                422,
                "text_too_long",
                f"texts are limited to {limits.max_text_chars} characters; one has {longest}",
            )
    if isinstance(body, PricesRequest):
        tickers = {row.ticker for row in body.rows}
        if len(tickers) > limits.max_rows:
            raise ServiceError(413, "too_many_rows", "too many tickers in one request")
    return len(rows)


def _endpoint(
    served: ServedModel,
    run: Callable[[ServedModel, BaseModel], Awaitable[dict[str, Any]]],
    caller: Callable[..., Awaitable[str]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The route's function, its body typed with the model's own request schema."""

    async def endpoint(body: BaseModel, key: str) -> dict[str, Any]:
        return await run(served, body)

    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=served.request),
            inspect.Parameter(
                "key", inspect.Parameter.KEYWORD_ONLY, default=Depends(caller), annotation=str
            ),
        ]
    )
    endpoint.__doc__ = f"{served.task} with {served.model} (run {served.name})."
    return endpoint
