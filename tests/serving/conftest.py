"""The run folders the service tests serve, trained once per session."""

from tests.serving.test_service import runs  # noqa: F401  (a fixture shared by both modules)
