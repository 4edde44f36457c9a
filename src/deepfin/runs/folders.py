"""A run is written into a folder of its own: never a file, never a folder holding another run."""

from __future__ import annotations

from pathlib import Path

from deepfin.errors import RunFolderError
from deepfin.runs.lock import LOCK


def check_fresh_folder(run_dir: Path, *, resumable: bool = False) -> None:
    """Refuse a run folder that is a file or already holds files (its lock file aside).

    `resumable`: the task can continue a run (`--resume`), so the message offers it.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"the run folder {run_dir} is a file; give a folder for the run")
    if run_dir.exists() and any(path.name != LOCK for path in run_dir.iterdir()):
        raise RunFolderError(
            f"{run_dir} already holds files of another run; give a new --run-dir or remove that "
            "folder" + (", or continue its training with --resume" if resumable else "")
        )
