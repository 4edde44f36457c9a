"""schemathesis against the service's own OpenAPI schema, every route, bounded examples that
fit the schema and that break it: no 5xx answer, and every error a JSON body with a code and
a message."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from deepfin.serving.app import create_app
from deepfin.serving.guards import Limits
from deepfin.serving.keys import KeyStore
from deepfin.serving.models import load_models
from tests.serving.test_service import SERVED

EXAMPLES = 40  # per route; the summary is printed (pytest -s shows it)


@pytest.fixture(scope="module")
def served(runs):
    root = runs["root"]
    models = load_models([root / name for name in SERVED])
    keys = KeyStore.open(root / "keys.json")
    app = create_app(models, keys=keys, limits=Limits(rate="100000/minute", timeout_s=20))
    return app, (root / "key").read_text()


def test_no_server_errors_and_every_error_is_structured(served) -> None:
    app, key = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tried: dict[str, int] = {}
    for found in schema.get_all_operations():
        operation = found.ok()
        label = f"{operation.method.upper()} {operation.path}"
        fuzz(operation.as_strategy(), label, key, tried)
        if operation.body:  # a request body its schema constrains: send ones that break it
            negative = schemathesis.GenerationMode.NEGATIVE
            fuzz(operation.as_strategy(generation_mode=negative), label + " (invalid)", key, tried)
    print(f"schemathesis: {sum(tried.values())} examples over {len(tried)} routes, 0 failures")
    assert len(tried) >= 15 and all(count > 0 for count in tried.values()), tried


def fuzz(cases, label: str, key: str, tried: dict[str, int]) -> None:
    """Bounded examples of one route (valid ones, or ones its schema forbids), each checked."""

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        tried[label] = tried.get(label, 0) + 1
        assert response.status_code < 500, (label, response.status_code, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
            assert "Traceback" not in response.text

    check()
