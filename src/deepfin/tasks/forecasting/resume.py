"""Where a forecast run is written: a fresh folder, or the checkpoint of the run it resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepfin.config import RunConfig
from deepfin.errors import RunFolderError
from deepfin.runs.files import RUN, read_json
from deepfin.runs.folders import check_fresh_folder

# what a resumed run may change: how long and where it trains, not what it learns from
RESUMABLE = {"epochs", "patience", "progress", "device"}


def check_run_dir(run_dir: Path, *, resume: bool) -> None:
    """A new run needs a new (or empty) folder; a resumed one its checkpoint."""
    if not resume:
        check_fresh_folder(run_dir, resumable=True)
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"the run folder {run_dir} is a file; give a folder for the run")
    if not (run_dir / "checkpoint").is_dir() or not (run_dir / RUN).exists():
        raise RunFolderError(
            f"{run_dir} has no checkpoint to resume from; run without --resume to start afresh"
        )


def check_resumed_settings(run_dir: Path, config: RunConfig, split: dict[str, str]) -> None:
    """A resumed run learns from the same data with the same settings as the one it continues.

    `split`: the dates of each part now, as run.json records them (in place of the fractions).
    """
    saved = read_json(run_dir / RUN)
    now = config.to_dict() | {"split": split}
    changed = [
        f"{section}.{key}: {saved.get(section, {}).get(key)!r} -> {value!r}"
        for section, values in now.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if not (section == "training" and key in RESUMABLE)
        and _plain(saved.get(section, {}).get(key)) != _plain(value)
    ]
    if changed:
        raise RunFolderError(
            f"--resume continues the run in {run_dir} with its own settings, but these differ: "
            f"{'; '.join(changed)}; resume with the same settings (only "
            f"{', '.join(sorted(RESUMABLE))} may change) or start a new run"
        )


def _plain(value: Any) -> Any:
    """A setting as JSON keeps it: tuples are lists."""
    return json.loads(json.dumps(value, default=str))
