"""One writer per run folder: an exclusive lock on `<run>/.lock`, refused at once when held."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepfin.errors import InputFileError, RunFolderError
from deepfin.runs.atomic import refuse_link

LOCK = ".lock"
# folders this process holds: writing into one again from inside its lock is not a conflict
_held: dict[Path, int] = {}


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir`'s lock while writing it; a second process gets a RunFolderError at once.

    The lock is flock(2) on `.lock`, released by the kernel when the holder exits, crashes
    included, so a stale file never blocks anyone. The file stays (removing it would let two
    processes lock two different files of one name); it names its holder while held. A folder
    this lock created and nothing else filled (the run failed first) is removed again.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"the run folder {run_dir} is a file; give a folder for the run")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    descriptor = _open(run_dir / LOCK)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(descriptor)
        os.close(descriptor)
        raise RunFolderError(
            f"{run_dir} is being written by another process ({holder}); wait for it to finish, "
            "or write this run to another folder"
        ) from None
    os.ftruncate(descriptor, 0)
    command = " ".join(sys.argv) or sys.executable
    os.pwrite(descriptor, json.dumps({"pid": os.getpid(), "command": command}).encode(), 0)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        os.ftruncate(descriptor, 0)
        if created and [path.name for path in run_dir.iterdir()] == [LOCK]:
            (run_dir / LOCK).unlink()
            run_dir.rmdir()
        os.close(descriptor)  # closing the last descriptor releases the lock


def _open(path: Path) -> int:
    """The lock file's descriptor, created if need be; never through a link."""
    refuse_link(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o666)
    except OSError as error:
        refuse_link(path)
        raise InputFileError(f"cannot lock {path}: {error.strerror}") from error


def _holder(descriptor: int) -> str:
    """Who holds the lock, as its holder wrote it into the file."""
    try:
        saved = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except (OSError, ValueError):
        saved = {}
    if not isinstance(saved, dict) or "pid" not in saved:
        return "its process id is not recorded"
    return f"pid {saved['pid']}: {str(saved.get('command', '?'))[:200]}"
