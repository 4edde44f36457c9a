"""`deepfin serve`: saved runs behind one read-only HTTP API; `deepfin serve keys`: its keys."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from deepfin.cli.common import console, guarded
from deepfin.errors import ConfigError

serve_app = typer.Typer(help="Serve saved runs over HTTP (read-only).", invoke_without_command=True)
keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
serve_app.add_typer(keys_app, name="keys")


def default_keys_file() -> Path:
    """$XDG_CONFIG_HOME/deepfin/keys.json (~/.config/deepfin/keys.json)."""
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return home / "deepfin" / "keys.json"


KeysOption = Annotated[
    Path | None, typer.Option("--keys-file", help="Default ~/.config/deepfin/keys.json.")
]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@serve_app.callback()
@guarded
def serve(
    ctx: typer.Context,
    run: Annotated[
        list[Path] | None, typer.Option("--run", help="A run folder to serve (repeatable).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    keys_file: KeysOption = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without API keys (loopback only).")
    ] = False,
    skip_broken: Annotated[
        bool, typer.Option(help="Leave out run folders that fail to load, instead of stopping.")
    ] = False,
    workers: Annotated[int, typer.Option(min=1, help="Threads running the models.")] = 2,
    torch_threads: Annotated[int, typer.Option(min=1, help="Threads inside each model call.")] = 1,
    max_rows: Annotated[int, typer.Option(min=1, help="Rows (or texts) per request.")] = 10_000,
    max_body_bytes: Annotated[int, typer.Option(min=1024)] = 1 << 20,
    max_text_chars: Annotated[int, typer.Option(min=1)] = 5_000,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds a model call may take.")] = 30.0,
    rate: Annotated[str, typer.Option(help="Requests per key, e.g. 600/minute.")] = "600/minute",
) -> None:
    """Serve run folders: GET /health /ready /models /docs, POST /models/<name>/<task>."""
    if ctx.invoked_subcommand is not None:
        return
    import torch
    import uvicorn

    from deepfin.serving.app import Limits, create_app
    from deepfin.serving.keys import KeyStore
    from deepfin.serving.models import load_models

    if no_auth and not _loopback(host):
        raise ConfigError(
            f"--no-auth serves anyone who can reach {host}; it is allowed on loopback only "
            "(127.0.0.1, ::1): create a key with `deepfin serve keys add NAME` instead"
        )
    keys = None
    if not no_auth:
        keys = KeyStore.open(keys_file or default_keys_file())
        if not keys.active():
            raise ConfigError(
                f"no API keys in {keys.path}: create one with `deepfin serve keys add NAME` "
                "(or serve on loopback with --no-auth)"
            )
    else:
        console.print("[yellow]warning:[/yellow] serving WITHOUT authentication (--no-auth)")
    torch.set_num_threads(torch_threads)
    models = load_models(list(run or []), skip_broken=skip_broken)
    limits = Limits(
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        max_text_chars=max_text_chars,
        timeout_s=timeout,
        workers=workers,
        rate=rate,
    )
    app = create_app(models, keys=keys, limits=limits)
    for served in models.values():
        console.print(f"  {escape(served.route)}  ({served.task}, {escape(served.model)})")
    logging.getLogger("deepfin.serving").setLevel(logging.INFO)
    # the access log is one plain JSON line per request on stderr, not a console message
    lines = logging.StreamHandler(sys.stderr)
    lines.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("deepfin.serving.access")
    access.handlers, access.propagate = [lines], False
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,  # deepfin's own access log: route templates, never query strings
        log_level="warning",
        timeout_graceful_shutdown=30,
    )


@keys_app.command("add")
@guarded
def add_key(name: str, keys_file: KeysOption = None) -> None:
    """Create a key for NAME and print it once (only its hash is stored)."""
    from deepfin.serving.keys import KeyStore

    store = KeyStore.open(keys_file or default_keys_file())
    key = store.add(name)
    console.print(f"key for {escape(name)} (shown once; store it now):")
    print(key)  # plain stdout, so a script can capture it


@keys_app.command("revoke")
@guarded
def revoke_key(name: str, keys_file: KeysOption = None) -> None:
    """Refuse NAME's key from now on (a running service notices within a request)."""
    from deepfin.serving.keys import KeyStore

    KeyStore.open(keys_file or default_keys_file()).revoke(name)
    console.print(f"revoked {escape(name)}")


@keys_app.command("list")
@guarded
def list_keys(keys_file: KeysOption = None) -> None:
    """The keys' names, creation and revocation times (never the keys)."""
    from deepfin.serving.keys import KeyStore

    store = KeyStore.open(keys_file or default_keys_file())
    for name, entry in sorted(store.entries.items()):
        state = f"revoked {entry['revoked']}" if entry.get("revoked") else "active"
        console.print(f"{escape(name)}  created {entry.get('created')}  {state}")
