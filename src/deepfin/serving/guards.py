"""What guards the service: request limits, the errors every failure becomes, the body-size
gate, per-key rate limits, and the Prometheus counters."""

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError

from deepfin.errors import ConfigError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
DRAIN_BYTES = 16 << 20
log = logging.getLogger("deepfin.serving")
access = logging.getLogger("deepfin.serving.access")


@dataclass(frozen=True)
class Limits:
    """What one request may ask: its body's bytes, rows, text lengths, time; and the threads
    that run the models."""

    max_body_bytes: int = 1 << 20
    max_rows: int = 10_000
    max_text_chars: int = 5_000
    timeout_s: float = 30.0
    workers: int = 2
    rate: str = "600/minute"  # per API key, a moving window (the `limits` notation)


class ServiceError(Exception):
    """A failure with its HTTP status and a code."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = {"WWW-Authenticate": "Bearer", **headers} if status == 401 else headers


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """The JSON body every failure has."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers or None
    )


class BodyLimit:
    """Refuses request bodies over `limit` bytes (413) before the app reads them."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ServiceError(413, "body_too_large", self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request bodies are limited to {self.limit} bytes; send fewer rows per request"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # read (and drop) a moderate excess first: a client still sending when the answer
        # comes sees its connection reset instead of the 413
        drained, more = 0, True
        while more and drained <= DRAIN_BYTES:
            message = await receive()
            drained += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
        await error_response(413, "body_too_large", self._message())(scope, receive, send)


class AccessLog:
    """Times, counts (at /metrics) and logs every request as one JSON line: method, route
    template, status, milliseconds, key name; never a body, a query string or a path's values.
    A failure the app let through is answered as JSON, with only its type logged."""

    def __init__(self, app: Any, metrics: "ServiceMetrics") -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, status = time.perf_counter(), 0

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ServiceError as error:  # raised by the body limit while the body is read
            if status:
                raise
            status = error.status
            await error_response(error.status, error.code, error.message)(scope, receive, send)
        except Exception as error:  # a fault: its type is logged, never a traceback or values
            log.error("internal error on %s: %s", scope.get("path"), type(error).__name__)
            if status:
                raise
            status = 500
            failure = error_response(500, "internal_error", "the service failed on this request")
            await failure(scope, receive, send)
        template = getattr(scope.get("route"), "path", "unmatched")
        seconds = time.perf_counter() - began
        self.metrics.observe(template, status, seconds)
        entry = {
            "method": scope.get("method"),
            "route": template,
            "status": status,
            "ms": round(1000 * seconds, 3),
            "key": scope.get("state", {}).get("key"),
        }
        access.info(json.dumps(entry))


class RateLimit:
    """Requests per API key in a moving window; over it, a 429 with Retry-After."""

    def __init__(self, rate: str) -> None:
        try:
            self.item = parse(rate)
        except ValueError:
            raise ConfigError(
                f"rate must read like 600/minute or 20/second; got {rate!r}"
            ) from None
        self.window = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> None:
        """Count one request of `key`, or refuse it."""
        if not self.window.hit(self.item, key):
            reset = self.window.get_window_stats(self.item, key).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise ServiceError(
                429, "rate_limited", f"over {self.item} for this key; retry in {wait} s",
                **{"Retry-After": str(wait)},
            )  # fmt: skip


class ServiceMetrics:
    """Request counts and latency histograms per route template and status, and the requests
    each batched model call answered, in their own registry (several apps in one process never
    share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "deepfin_requests", "Requests by route and status", ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "deepfin_request_seconds", "Request latency by route", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )  # fmt: skip
        self.batch = Histogram(
            "deepfin_batch_requests", "Requests answered by one model call, by model", ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry,
        )  # fmt: skip

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        """The exposition format."""
        return bytes(generate_latest(self.registry))


def validation_message(error: RequestValidationError | ValidationError) -> str:
    """Each problem by the field it is in (never the value that was sent)."""
    problems = []
    for detail in error.errors()[:10]:
        where = ".".join(str(part) for part in detail.get("loc", ()) if part != "body")
        kind = detail.get("type", "")
        text = "unknown field: not an input of this model" if kind == "extra_forbidden" else ""
        problems.append(f"{where or 'body'}: {text or detail.get('msg', 'invalid')}")
    return "; ".join(problems)
