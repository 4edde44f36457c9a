"""Adaptive batching: requests to one model that arrive while its calls are busy wait, and are
then answered together by one call. Nothing waits on a timer, so a lone request goes straight
through; under load a model call serves many requests at little more than one's cost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from deepfin.errors import DeepfinError

# each request's answer, or the error its own data raised
PredictMany = Callable[[list[BaseModel]], list[dict[str, Any] | DeepfinError]]
RunSync = Callable[[PredictMany, list[BaseModel]], Awaitable[list[dict[str, Any] | DeepfinError]]]


class Batcher:
    """At most `concurrency` calls of `predict_many` at once, each over the requests waiting
    (up to `max_rows` rows in all). It answers each request, or gives the error of that
    request's own data; a call that fails as a whole on data is retried request by request, so
    only the request at fault gets the error."""

    def __init__(
        self,
        predict_many: PredictMany,
        run_sync: RunSync,
        *,
        concurrency: int,
        max_rows: int,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self.predict_many, self.run_sync = predict_many, run_sync
        self.concurrency, self.max_rows = concurrency, max_rows
        self.observe = observe  # told each call's number of requests
        self.waiting: list[tuple[BaseModel, int, asyncio.Future[dict[str, Any]]]] = []
        self.running: set[asyncio.Task[None]] = set()

    async def submit(self, body: BaseModel, rows: int) -> dict[str, Any]:
        """`body`'s answer, from a call shared with the requests waiting beside it."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting.append((body, rows, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self.waiting and len(self.running) < self.concurrency:
            batch = [self.waiting.pop(0)]
            rows = batch[0][1]
            while self.waiting and rows + self.waiting[0][1] <= self.max_rows:
                rows += self.waiting[0][1]
                batch.append(self.waiting.pop(0))
            task = asyncio.get_running_loop().create_task(self._call(batch))
            self.running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self._start()

    async def _call(self, batch: list[tuple[BaseModel, int, asyncio.Future[Any]]]) -> None:
        live = [entry for entry in batch if not entry[2].done()]  # a caller may have gone
        if not live:
            return
        if self.observe is not None:
            self.observe(len(live))
        try:
            answers = await self.run_sync(self.predict_many, [body for body, _, _ in live])
        except DeepfinError as error:
            if len(live) == 1:
                _settle(live[0][2], error=error)
                return
            for entry in live:  # whose data was it? each alone
                await self._call([entry])
            return
        except Exception as error:  # every waiter hears of it, none hangs
            for _, _, future in live:
                _settle(future, error=error)
            return
        for (_, _, future), answer in zip(live, answers, strict=True):
            if isinstance(answer, DeepfinError):  # that request's own data failed
                _settle(future, error=answer)
            else:
                _settle(future, answer=answer)


def _settle(
    future: asyncio.Future[Any], *, answer: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller timed out or left
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)
