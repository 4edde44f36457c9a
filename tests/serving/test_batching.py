"""Adaptive batching: requests that wait while a model is busy are answered by one call, each
with its own answer; a request whose data fails the call gets the error alone; and through the
service, batched answers equal the in-process prediction of each request."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import polars as pl
import pytest

from deepfin import Forecaster, TextClassifier
from deepfin.errors import DataError
from deepfin.serving.app import create_app
from deepfin.serving.batching import Batcher
from deepfin.serving.guards import Limits
from deepfin.serving.models import load_models
from deepfin.serving.schemas import TextsRequest

calls: list[int] = []


def echo(bodies):
    """Each body's texts upper-cased; slow enough for requests to pile up; no "bad" text."""
    calls.append(len(bodies))
    time.sleep(0.01)
    if any("bad" in body.texts for body in bodies):
        raise DataError("a bad text")
    if any("crash" in body.texts for body in bodies):
        raise RuntimeError("the model broke")
    return [{"texts": [text.upper() for text in body.texts]} for body in bodies]


async def in_thread(function, argument):
    return await asyncio.to_thread(function, argument)


async def submit_all(batcher: Batcher, texts: list[list[str]]):
    bodies = [TextsRequest(texts=part) for part in texts]
    return await asyncio.gather(
        *(batcher.submit(body, len(body.texts)) for body in bodies), return_exceptions=True
    )


def test_waiting_requests_share_a_call_and_get_their_own_answers() -> None:
    calls.clear()
    seen: list[int] = []
    batcher = Batcher(echo, in_thread, concurrency=2, max_rows=7, observe=seen.append)
    texts = [[f"t{i}", f"u{i}"] if i % 3 else [f"v{i}"] for i in range(30)]
    answers = asyncio.run(submit_all(batcher, texts))
    assert answers == [{"texts": [text.upper() for text in part]} for part in texts]
    assert sum(calls) == 30 and len(calls) < 15 and max(calls) > 1
    assert seen == calls  # what /metrics counts
    # no call reads more than max_rows rows (a request is never split)
    assert all(size <= 7 for size in calls)
    assert not batcher.running and not batcher.waiting


def test_a_request_that_fails_the_call_gets_the_error_alone() -> None:
    calls.clear()
    batcher = Batcher(echo, in_thread, concurrency=1, max_rows=100)
    texts = [[f"t{i}"] for i in range(12)]
    texts[7] = ["bad"]
    answers = asyncio.run(submit_all(batcher, texts))
    assert isinstance(answers[7], DataError)
    assert all(answers[i] == {"texts": [f"T{i}"]} for i in range(12) if i != 7)
    texts[3] = ["crash"]  # an unexpected failure reaches every caller of that call; none hangs
    answers = asyncio.run(asyncio.wait_for(submit_all(batcher, texts), timeout=10))
    assert any(isinstance(answer, RuntimeError) for answer in answers)


def test_a_caller_that_left_does_not_stop_the_others() -> None:
    calls.clear()
    batcher = Batcher(echo, in_thread, concurrency=1, max_rows=100)

    async def scenario():
        first = asyncio.ensure_future(batcher.submit(TextsRequest(texts=["a"]), 1))
        gone = asyncio.ensure_future(batcher.submit(TextsRequest(texts=["b"]), 1))
        kept = asyncio.ensure_future(batcher.submit(TextsRequest(texts=["c"]), 1))
        await asyncio.sleep(0)
        gone.cancel()  # e.g. its timeout passed while it waited
        return await first, await kept

    assert asyncio.run(scenario()) == ({"texts": ["A"]}, {"texts": ["C"]})
    assert calls == [1, 1]  # the caller who left is not computed


def send_all(app, route: str, field: str, bodies: list) -> tuple[list[httpx.Response], float]:
    """Every body posted at once through the app; the answers, and the model calls made."""

    async def send():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            answers = await asyncio.gather(*(client.post(route, json={field: b}) for b in bodies))
            return answers, (await client.get("/metrics")).text

    answers, exposition = asyncio.run(send())
    count = exposition.split("deepfin_batch_requests_count{")[1].split("} ")[1].split()[0]
    return answers, float(count)


def test_batched_answers_through_the_service_equal_the_run_in_process(runs) -> None:
    root, task = runs["root"], "news"
    models = load_models([root / task])
    app = create_app(models, keys=None, limits=Limits(rate="100000/minute"))
    rng = np.random.default_rng(0)
    words = ["profit", "loss", "record", "plunge", "dividend", "cuts", "beats", "misses"]
    requests = [
        [" ".join(rng.choice(words, 4)) for _ in range(int(rng.integers(1, 4)))] for _ in range(40)
    ]

    answers, calls_made = send_all(app, f"/models/{task}/classify", "texts", requests)
    classifier = TextClassifier.load(root / task)
    for texts, answer in zip(requests, answers, strict=True):
        assert answer.status_code == 200, answer.text
        mine = classifier.predict(pl.DataFrame({"text": texts}))
        served = pl.DataFrame(answer.json()["labels"])
        assert served["predicted"].to_list() == mine["predicted"].to_list()
        np.testing.assert_allclose(served["probability"], mine["probability"], atol=1e-6)
    assert calls_made < len(requests)  # some calls answered several requests


def test_batched_forecasts_equal_each_request_forecast_alone(runs) -> None:
    root = runs["root"]
    models = load_models([root / "prices"])
    assert models["prices"].predict_many is not None  # no per-ticker scaling, no cross-section
    app = create_app(models, keys=None, limits=Limits(rate="100000/minute"))
    frame = pl.read_parquet(root / "prices.parquet")
    tickers = frame["ticker"].unique(maintain_order=True).to_list()
    bodies = []
    for i in range(24):
        part = frame.filter(pl.col("ticker").is_in(tickers[i % 2 :: 2][: 1 + i % 3]))
        part = part.filter(pl.col("date") <= part["date"].unique().sort()[-1 - i % 8])
        bodies.append(part.with_columns(pl.col("date").cast(pl.String)).to_dicts())
    bodies[5] = bodies[5][:3]  # too few days for a window: refused, alone

    answers, calls_made = send_all(app, "/models/prices/forecast", "rows", bodies)
    forecaster = Forecaster.load(root / "prices")
    for i, (rows, answer) in enumerate(zip(bodies, answers, strict=True)):
        if i == 5:
            assert answer.status_code == 422 and "no complete window" in answer.text
            continue
        assert answer.status_code == 200, answer.text
        mine = forecaster.predict(pl.DataFrame(rows).with_columns(pl.col("date").str.to_date()))
        mine = mine.filter(pl.col("date") == pl.col("date").max().over("ticker"))
        served = pl.DataFrame(answer.json()["forecasts"])
        assert served["ticker"].to_list() == mine["ticker"].to_list()
        assert served["date"].to_list() == mine["date"].cast(pl.String).to_list()
        np.testing.assert_allclose(
            served["forecast_log_return"], mine["forecast_log_return"], atol=1e-6
        )
    assert calls_made < len(bodies)


def test_run_folders_that_cannot_name_a_route_are_refused_with_the_fix(runs, tmp_path) -> None:
    import shutil

    spaced = tmp_path / "a b [1]" / "my news"
    shutil.copytree(runs["root"] / "news", spaced)
    with pytest.raises(DataError, match="rename the folder"):
        load_models([spaced])
    twin = tmp_path / "other" / "news"
    shutil.copytree(runs["root"] / "news", twin)
    with pytest.raises(DataError, match="rename one folder"):
        load_models([runs["root"] / "news", twin])
    shutil.move(spaced, spaced.with_name("my_news"))  # the folder above may hold spaces
    assert set(load_models([spaced.with_name("my_news")])) == {"my_news"}
