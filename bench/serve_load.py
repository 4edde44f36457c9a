"""The service under load: requests/s and p50/p95/p99 latency per route at 1, 8 and 32
concurrent clients, beside the same model called in-process, in the same run.

Four runs are trained first (in a temporary folder): an LSTM forecaster (lookback 30) on the
arch package's S&P 500 index, a logistic credit scorer on simulated applicants, MiniLM
(frozen, with a trained head) on generated headlines, and a VaR run (historical, GJR-GARCH
normal and t, FHS at 99% and 97.5%) on the same index. The server runs as a subprocess on
loopback with an API key, two model threads and one torch thread each. Each client is a
keep-alive connection over asyncio streams (httpx's async client spent about 5 ms of the same
two cores on each request, more than most models) sending one request at a time for a
bounded time: a single ticker's forecast (its last 60 days), one applicant's score with
reason codes, one sentence's label, the index's VaR from its last 500 returns; and GET
/ping, which runs no model: the floor of the HTTP stack and the clients on this machine.

    python bench/serve_load.py [--seconds 8]      # table on stdout, JSON in bench/results/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl
from synthetic import RESULTS

from deepfin import CreditScorer, Forecaster, TextClassifier, load_sample
from deepfin.serving.keys import KeyStore
from deepfin.serving.models import load_models
from deepfin.tasks.risk.config import load_var_config
from deepfin.tasks.risk.pipeline import run_var
from deepfin.training import TrainingConfig

CONCURRENCY = (1, 8, 32)
WORDS = {
    "positive": ["profit rises", "record sales", "beats forecasts", "raises dividend"],
    "negative": ["loss widens", "shares plunge", "misses forecasts", "cuts jobs"],
    "neutral": ["annual meeting", "board appoints", "files report", "opens office"],
}


def train_runs(root: Path) -> dict[str, tuple[str, dict]]:
    """The four runs, and one request body for each route."""
    quiet = TrainingConfig(epochs=3, progress=False)
    prices = load_sample("sp500")
    forecaster = Forecaster(model="lstm", lookback=30, training=quiet)
    forecaster.fit(prices.head(3000), prices.slice(3000, 500)).save(root / "forecast")
    recent = prices.tail(60).with_columns(pl.col("date").cast(pl.String))
    rows = recent.select("date", "ticker", "open", "high", "low", "close", "volume").to_dicts()

    rng = np.random.default_rng(0)
    n = 3000
    income, grade = rng.normal(size=n), rng.choice(["A", "B", "C"], n)
    odds = -1.2 * income + 0.8 * (grade == "C") - 1.0
    loans = pl.DataFrame(
        {"income": income, "grade": grade, "default": (rng.random(n) < 1 / (1 + np.exp(-odds)))}
    ).with_columns(pl.col("default").cast(pl.Int64))
    CreditScorer(model="logistic", baselines=(), training=quiet).fit(loans[:2500]).save(
        root / "credit"
    )

    texts, labels = [], []
    for _ in range(300):
        label = str(rng.choice(list(WORDS)))
        texts.append(f"Company {rng.integers(100)} {rng.choice(WORDS[label])} in quarter")
        labels.append(label)
    frame = pl.DataFrame({"text": texts, "label": labels})
    TextClassifier(model="minilm").fit(frame[:240], frame[240:]).save(root / "text")

    overrides = {"walk_forward.test_start": "2018-06-01", "walk_forward.refit_every": 126}
    run_var(
        load_var_config(overrides={**overrides, "training.progress": False}), run_dir=root / "var"
    )
    closes = prices["close"].tail(501).to_list()
    return {
        "forecast": ("/models/forecast/forecast", {"rows": rows}),
        "credit": ("/models/credit/score", {"rows": [{"income": 0.3, "grade": "B"}]}),
        "text": ("/models/text/classify", {"texts": ["Company 7 raises dividend after sales"]}),
        "var": ("/models/var/var", {"closes": closes}),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def drive(
    port: int, route: str, body: dict | None, key: str, clients: int, seconds: float
) -> tuple[np.ndarray, int]:
    """Latencies (s) of `clients` clients, each a keep-alive connection sending one request at
    a time for `seconds`. The requests are written as bytes once and the answers read by
    their Content-Length, so the clients cost little of the two cores the server runs on."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{'GET' if body is None else 'POST'} {route} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    request = head + payload
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def one_client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - began)
                errors += not status.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return np.asarray(latencies), errors


def in_process(root: Path, name: str, body: dict, seconds: float) -> np.ndarray:
    """Latencies (s) of the same prediction called directly, one at a time."""
    served = load_models([root / name])[name]
    request = served.request.model_validate(body)
    latencies = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        began = time.perf_counter()
        served.predict(request)
        latencies.append(time.perf_counter() - began)
    return np.asarray(latencies)


def row(label: str, latencies: np.ndarray, seconds: float, errors: int = 0) -> dict[str, float]:
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000
    return {
        "setting": label,
        "requests_per_s": latencies.size / seconds,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        bodies = train_runs(root)
        key = KeyStore.open(root / "keys.json").add("bench")
        port = free_port()
        deepfin = str(Path(sys.executable).with_name("deepfin"))
        command = [deepfin, "serve", "--port", str(port), "--keys-file", str(root / "keys.json")]
        command += ["--rate", "10000000/minute"]  # the load is the point, not the key's quota
        for name in bodies:
            command += ["--run", str(root / name)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            for name, (route, body) in [*bodies.items(), ("ping", ("/ping", None))]:
                results[name] = []
                if body is not None:
                    latencies = in_process(root, name, body, args.seconds)
                    results[name].append(row("in-process", latencies, args.seconds))
                asyncio.run(drive(port, route, body, key, 1, 1.0))  # warm-up
                for clients in CONCURRENCY:
                    latencies, errors = asyncio.run(
                        drive(port, route, body, key, clients, args.seconds)
                    )
                    results[name].append(
                        row(f"{clients} client(s)", latencies, args.seconds, errors)
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
    heads = ("req/s", "p50 ms", "p95 ms", "p99 ms")
    print(
        f"{'route':9s} | {'setting':12s} | " + " | ".join(f"{h:>8s}" for h in heads) + " | errors"
    )
    print("-" * 76)
    for name, rows in results.items():
        for entry in rows:
            print(
                f"{name:9s} | {entry['setting']:12s} | {entry['requests_per_s']:8.1f} | "
                f"{entry['p50_ms']:8.2f} | {entry['p95_ms']:8.2f} | {entry['p99_ms']:8.2f} | "
                f"{entry['errors']}"
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "serve_load.json"
    out.write_text(json.dumps({"seconds": args.seconds, "results": results}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
