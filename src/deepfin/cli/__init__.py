"""The `deepfin` command line: one module per command group."""

from deepfin.cli.app import app

__all__ = ["app"]
