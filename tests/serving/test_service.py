"""The real service, started as a subprocess on a free loopback port over run folders trained
here: every route against the in-process prediction, keys, limits, faults, errors as JSON."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

from deepfin import ChartClassifier, CreditScorer, Forecaster, TextClassifier, load_run
from deepfin.data.samples import load_prices
from deepfin.serving.keys import KeyStore
from deepfin.tasks.risk.var_model import returns_of_closes
from deepfin.training import TrainingConfig
from tests.tasks.risk.test_var_model import short_var_run
from tests.tasks.test_contract import charts, loans, prices, texts

FAST = TrainingConfig(epochs=2, batch_size=64, progress=False, seed=3)
DEEPFIN = str(Path(sys.executable).with_name("deepfin"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`deepfin serve` in a subprocess, waited for until /health answers."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [DEEPFIN, "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return  # it stopped: the caller reads why
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError(f"deepfin serve did not start:\n{self.stop()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        output, _ = self.process.communicate(timeout=30)
        return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    train, val, test = prices()
    Forecaster(model="linear", lookback=8, training=FAST).fit(train, val).save(root / "prices")
    test.write_parquet(root / "prices.parquet")
    train, val, test = loans()
    with_ids = [
        part.with_row_index("loan_id", offset=1000 * i) for i, part in enumerate((train, val, test))
    ]
    CreditScorer(model="logistic", baselines=(), training=FAST).fit(*with_ids[:2]).save(
        root / "loans"
    )
    test.write_parquet(root / "loans.parquet")
    train, val, _ = texts()
    TextClassifier(training=FAST).fit(train, val).save(root / "news")
    train, val, _ = charts()
    ChartClassifier(model_params={"channels": 8}, training=FAST).fit(train, val).save(
        root / "charts"
    )
    short_var_run(root / "risk")
    store = KeyStore.open(root / "keys.json")
    (root / "key").write_text(store.add("tester"))
    return {"root": root}


SERVED = ("prices", "loans", "news", "charts", "risk")


@pytest.fixture(scope="module")
def server(runs) -> Iterator[tuple[Server, httpx.Client]]:
    root = runs["root"]
    served = [arg for name in SERVED for arg in ("--run", str(root / name))]
    serving = Server(
        *served,
        "--keys-file", str(root / "keys.json"), "--max-rows", "400", "--max-body-bytes", "200000",
    )  # fmt: skip
    assert serving.process.poll() is None, serving.stop()
    key = (root / "key").read_text()
    with httpx.Client(base_url=serving.url, headers={"Authorization": f"Bearer {key}"}) as client:
        yield serving, client
    serving.stop()


def price_rows(frame: pl.DataFrame) -> list[dict]:
    return frame.with_columns(pl.col("date").cast(pl.String)).to_dicts()


def test_every_route_answers_as_the_run_does_in_process(runs, server) -> None:
    _, client = server
    root = runs["root"]
    frame = pl.read_parquet(root / "prices.parquet")
    answer = client.post("/models/prices/forecast", json={"rows": price_rows(frame)})
    assert answer.status_code == 200, answer.text
    mine = Forecaster.load(root / "prices").predict(frame)
    latest = mine.filter(pl.col("date") == pl.col("date").max().over("ticker"))
    served = pl.DataFrame(answer.json()["forecasts"])
    np.testing.assert_allclose(
        served["forecast_log_return"], latest["forecast_log_return"], atol=1e-6
    )

    applicants = pl.read_parquet(root / "loans.parquet").drop("default")
    answer = client.post("/models/loans/score", json={"rows": applicants.to_dicts()})
    assert answer.status_code == 200, answer.text
    scores = CreditScorer.load(root / "loans").score(applicants)
    served = pl.DataFrame(answer.json()["scores"])
    np.testing.assert_allclose(
        served["default_probability"], scores["default_probability"], atol=1e-6
    )
    assert served["band"].to_list() == scores["band"].to_list()
    assert served["increases_risk_1"].to_list() == scores["increases_risk_1"].to_list()

    messages = ["record profit this quarter", "shares plunge on losses", "/etc/passwd"]
    answer = client.post("/models/news/classify", json={"texts": messages})
    assert answer.status_code == 200, answer.text
    labels = TextClassifier.load(root / "news").predict(pl.DataFrame({"text": messages}))
    served = pl.DataFrame(answer.json()["labels"])
    assert served["predicted"].to_list() == labels["predicted"].to_list()
    np.testing.assert_allclose(served["probability"], labels["probability"], atol=1e-6)

    answer = client.post("/models/charts/charts", json={"rows": price_rows(frame)})
    assert answer.status_code == 200, answer.text
    up = ChartClassifier.load(root / "charts").predict(frame, latest=True)
    np.testing.assert_allclose(
        pl.DataFrame(answer.json()["up"])["up_probability"], up["up_probability"], atol=1e-6
    )

    closes = load_prices("sp500")["close"].to_numpy()[-300:]
    answer = client.post("/models/risk/var", json={"closes": closes.tolist()})
    assert answer.status_code == 200, answer.text
    tails = load_run(root / "risk").forecast(returns_of_closes(closes))
    served = pl.DataFrame(answer.json()["tails"])
    assert served["method"].to_list() == tails["method"].to_list()
    np.testing.assert_allclose(served["var"], tails["var"], rtol=1e-6)
    np.testing.assert_allclose(served["es"], tails["es"], rtol=1e-6)
    returns = returns_of_closes(closes).tolist()
    again = client.post("/invocations?model=risk", json={"instances": returns})
    assert again.status_code == 200, again.text
    assert again.json()["predictions"]["tails"] == answer.json()["tails"]

    answer = client.post("/invocations?model=news", json={"instances": messages})
    assert answer.status_code == 200
    assert [row["predicted"] for row in answer.json()["predictions"]] == labels[
        "predicted"
    ].to_list()


def test_the_model_list_and_the_docs(server) -> None:
    _, client = server
    listed = {model["name"]: model for model in client.get("/models").json()}
    assert set(listed) == set(SERVED)
    assert listed["risk"]["route"] == "/models/risk/var"
    assert listed["risk"]["data"]["fitted_through"] == "2018-12-31"
    assert 0 <= listed["risk"]["metrics"]["garch_t_0.99"]["kupiec_p"] <= 1
    assert listed["loans"]["route"] == "/models/loans/score"
    row_schema = next(iter(listed["loans"]["input_schema"]["$defs"].values()))
    assert set(row_schema["properties"]) == {"income", "grade"}
    assert listed["news"]["created"] is not None
    assert client.get("/docs").status_code == 200
    assert "/models/news/classify" in client.get("/openapi.json").json()["paths"]
    assert client.get("/ready").json() == {"ready": True, "models": len(SERVED)}
    assert client.get("/ping").status_code == 200


def test_keys_are_required_checked_and_revocable(runs, server) -> None:
    serving, _ = server
    body = {"texts": ["profit"]}
    bare = httpx.post(serving.url + "/models/news/classify", json=body)
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "unauthorized"
    assert bare.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(
        serving.url + "/models/news/classify", json=body, headers={"X-API-Key": "dfk_00_guess"}
    )
    assert wrong.status_code == 401
    store = KeyStore.open(runs["root"] / "keys.json")
    key = store.add("temporary")
    headers = {"X-API-Key": key}
    assert (
        httpx.post(serving.url + "/models/news/classify", json=body, headers=headers).status_code
        == 200
    )
    store.revoke("temporary")
    assert (
        httpx.post(serving.url + "/models/news/classify", json=body, headers=headers).status_code
        == 401
    )
    entries = (runs["root"] / "keys.json").read_text()
    assert key.split("_", 2)[2] not in entries  # only hashes are stored


def test_limits_and_bad_bodies_are_structured_errors(server) -> None:
    _, client = server
    cases = [
        (client.post("/models/news/classify", content=b"[" * 300_000,
                     headers={"content-type": "application/json"}), 413, "body_too_large"),
        (client.post("/models/news/classify", json={"texts": ["x"] * 401}), 413, "too_many_rows"),
        (client.post("/models/news/classify", json={"texts": ["x" * 6000]}), 422, "text_too_long"),
        (client.post("/models/loans/score", json={"rows": [{"income": 1.0, "salary": 3}]}), 422,
         "invalid_request"),
        (client.post("/models/loans/score", json={"rows": [{"income": 1.0, "loan_id": 7}]}), 422,
         "invalid_request"),
        (client.post("/models/prices/forecast", json={"rows": [{"date": "2020-01-02", "close": 5}]}),  # noqa: E501
         422, "unusable_input"),
        (client.post("/models/news/classify", content=b"{not json",
                     headers={"content-type": "application/json"}), 422, "invalid_request"),
        (client.post("/models/risk/var", json={"returns": [0.01] * 20}), 422, "unusable_input"),
        (client.post("/models/risk/var", json={"returns": [1.5] * 300}), 422, "unusable_input"),
        (client.post("/models/risk/var", json={"returns": [0.01], "closes": [1.0, 2.0]}), 422,
         "invalid_request"),
        (client.get("/models/nope/score"), 404, "not_found"),
        (client.get("/models/news/classify"), 405, "method_not_allowed"),
    ]  # fmt: skip
    for answer, status, code in cases:
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
        assert "Traceback" not in answer.text and "/tmp" not in answer.text
    unknown = cases[3][0].json()["error"]["message"]
    assert "salary" in unknown and "unknown field" in unknown
    assert "loan_id: identifier column" in cases[4][0].json()["error"]["message"]
    assert "at least 250 daily returns" in cases[7][0].json()["error"]["message"]
    assert "not percent" in cases[8][0].json()["error"]["message"]
    # a path given as a ticker is a name, never a file to open
    path_ticker = [
        {"date": f"2020-01-{d:02d}", "ticker": "../../etc/passwd", "close": 5.0 + d}
        for d in range(1, 29)
    ]
    answer = client.post("/models/prices/forecast", json={"rows": path_ticker})
    assert answer.status_code in (200, 422) and "root:" not in answer.text


def test_a_run_removed_after_start_keeps_serving_and_broken_runs_stop_start_up(
    runs, tmp_path
) -> None:
    copy = tmp_path / "news"
    shutil.copytree(runs["root"] / "news", copy)
    serving = Server("--run", str(copy), "--no-auth")
    try:
        shutil.rmtree(copy)
        answer = httpx.post(serving.url + "/models/news/classify", json={"texts": ["profit up"]})
        assert answer.status_code == 200
    finally:
        output = serving.stop()
    assert "WITHOUT authentication" in output
    broken = tmp_path / "broken"
    shutil.copytree(runs["root"] / "news", broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    failed = Server("--run", str(broken), "--no-auth")
    output = failed.stop()
    assert failed.process.returncode != 0 and "cannot serve" in output and "broken" in output
    skipping = Server(
        "--run", str(broken), "--run", str(runs["root"] / "news"), "--no-auth", "--skip-broken"
    )
    try:
        assert httpx.get(skipping.url + "/ready").json()["models"] == 1
    finally:
        skipping.stop()
    exposed = Server("--run", str(runs["root"] / "news"), "--no-auth", "--host", "0.0.0.0")
    output = exposed.stop()
    assert exposed.process.returncode != 0 and "loopback only" in output


def test_rate_limits_answer_429_with_retry_after_and_metrics_count(runs) -> None:
    from fastapi.testclient import TestClient

    from deepfin.serving.app import create_app
    from deepfin.serving.guards import Limits
    from deepfin.serving.models import load_models

    root = runs["root"]
    models = load_models([root / "news"])
    app = create_app(models, keys=KeyStore.open(root / "keys.json"), limits=Limits(rate="3/minute"))
    headers = {"X-API-Key": (root / "key").read_text()}
    with TestClient(app) as client:
        answers = [
            client.post("/models/news/classify", json={"texts": ["up"]}, headers=headers)
            for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        exposition = client.get("/metrics").text
    assert 'deepfin_requests_total{route="/models/{name}/classify"' not in exposition
    assert 'deepfin_requests_total{route="/models/news/classify",status="200"} 3.0' in exposition
    assert 'deepfin_requests_total{route="/models/news/classify",status="429"} 1.0' in exposition
    assert "deepfin_request_seconds_bucket" in exposition


def test_sigterm_lets_the_request_in_flight_finish(runs) -> None:
    import signal

    root = runs["root"]
    serving = Server("--run", str(root / "news"), "--no-auth")
    body = b'{"texts": ["profit up", "shares plunge"]}'
    head = (
        f"POST /models/news/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", serving.port)) as connection:
        connection.sendall(head + body[:10])  # the request has begun
        time.sleep(0.3)
        serving.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert serving.process.poll() is None  # it waits for the request
        connection.sendall(body[10:])
        answer = b""
        while b"}]}" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"predicted"' in answer
    serving.process.wait(timeout=30)  # it stops by itself once the answer is sent
    output = serving.stop()
    # uvicorn re-raises the signal once it has shut down, so the exit is by SIGTERM
    assert serving.process.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    with pytest.raises(httpx.TransportError):
        httpx.get(serving.url + "/health", timeout=1)
