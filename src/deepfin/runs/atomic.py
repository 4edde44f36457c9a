"""The one way a run folder is written and read: atomic, exclusive, and never through a link.

A write goes to a temporary file created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW) in the
destination's own folder, then takes the final name with os.replace, so a crash never leaves
half a file and nothing planted under a guessable name (a `.partial` symlink, say) is written
through. A final name that is a symlink is refused rather than replaced: whoever put it there
meant the write to land elsewhere, and the user should know. Reads refuse symlinks too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from deepfin.errors import InputFileError, RunFolderError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
_CHUNK = 1 << 20


def sha256(data: bytes) -> str:
    """The hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def record_sha256(path: Path) -> None:
    """Write `path`'s sha256 beside it, as `<name>.sha256`."""
    if path.exists():
        write_text(path.with_name(path.name + ".sha256"), sha256_file(path) + "\n")


def recorded_sha256_matches(path: Path) -> bool | None:
    """Whether `path` has the sha256 `record_sha256` wrote; None when none was recorded."""
    record = path.with_name(path.name + ".sha256")
    if not record.exists() or record.is_symlink():
        return None
    return record.read_text(errors="replace").strip() == sha256_file(path)


def refuse_link(path: Path) -> None:
    """Raise when `path` is a symlink: run-folder files are never written or read through one."""
    if os.path.islink(path):
        raise RunFolderError(
            f"{path} is a symbolic link (to {os.readlink(path)}); deepfin neither writes nor "
            "reads run files through links; remove the link and run again"
        )


def write_file(path: Path, write: Callable[[Path], object]) -> str:
    """Have `write(temporary_path)` write the file, then move it onto `path`; its sha256.

    For writers that take a path (polars, safetensors); the temporary file already exists,
    created exclusively by this process, when `write` opens it.
    """
    path = Path(path)
    refuse_link(path)
    partial, descriptor = _create_partial(path)
    os.close(descriptor)
    try:
        write(partial)
        digest = sha256_file(partial)
        _commit(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return digest


def write_bytes(path: Path, data: bytes) -> str:
    """Write `data` atomically to `path` (never through a link); its sha256."""
    path = Path(path)
    refuse_link(path)
    partial, descriptor = _create_partial(path)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        _commit(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return sha256(data)


def write_text(path: Path, text: str) -> str:
    """Write UTF-8 `text` atomically to `path` (never through a link); its sha256."""
    return write_bytes(path, text.encode("utf-8"))


def read_bytes(path: Path, *, missing: str | None = None) -> bytes:
    """A run file's content; a symlink or a missing file is a RunFolderError."""
    path = Path(path)
    try:
        descriptor = os.open(path, _READ)
    except FileNotFoundError:
        raise RunFolderError(missing or f"{path} is missing; re-run or restore it") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            refuse_link(path)
        raise InputFileError(f"cannot read {path}: {error.strerror}") from error
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()


def _create_partial(path: Path) -> tuple[Path, int]:
    """A new, empty file beside `path` that no one else created: its path and descriptor."""
    for _ in range(100):
        partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
        try:
            return partial, os.open(partial, _CREATE, 0o666)
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise InputFileError(f"cannot write {path}: its folder does not exist") from None
    raise InputFileError(f"cannot create a temporary file beside {path}")


def _commit(partial: Path, path: Path) -> None:
    """Give the written file its final name; a link planted there meanwhile is still refused."""
    refuse_link(path)
    os.replace(partial, path)
