"""A LightGBM model text is checked before LightGBM's (memory-unsafe) parser sees it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepfin.errors import RunFolderError
from deepfin.runs.booster import check_booster_text
from tests.runs.conftest import rehash

ROOT = Path(__file__).resolve().parents[2]


def _text(run: Path) -> str:
    return (run / "model.lgb.txt").read_text()


def _n_features(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["model_config"]["n_features"]


def _first_tree_field(text: str, field: str, value: str) -> str:
    """The text with tree 0's `field` array starting with `value` instead (same length kept)."""
    match = re.search(rf"^Tree=0\n(?:.*\n)*?{field}=(\S+)", text, re.M)
    assert match is not None
    first = match.group(1)
    assert len(first) == len(value), "keep the size tree_sizes records"
    return text[: match.start(1)] + value + text[match.end(1) :]


def test_the_text_lightgbm_wrote_passes(written):
    run = written["lightgbm"]
    check_booster_text(_text(run), n_features=_n_features(run), path=run / "model.lgb.txt")


def test_every_truncation_is_refused(written):
    run = written["lightgbm"]
    text, n = _text(run), _n_features(run)
    step = max(1, len(text) // 300)
    for cut in [*range(0, len(text) - 1, step), len(text) - 2]:
        with pytest.raises(RunFolderError, match="truncated or was altered"):
            check_booster_text(text[:cut], n_features=n, path=Path("model.lgb.txt"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("split_feature", "7", r"splits on a feature outside 0\.\.1"),
        ("left_child", "0", r"node 0 has a bad child 0"),  # a loop back to the root
        ("decision_type", "1", r"decision_type"),  # a categorical split, with no categories
        ("num_cat", "1", r"categorical or linear"),
    ],
)
def test_crafted_trees_are_refused(written, field, value, message):
    run = written["lightgbm"]
    crafted = _first_tree_field(_text(run), field, value)
    with pytest.raises(RunFolderError, match=message):
        check_booster_text(crafted, n_features=_n_features(run), path=Path("model.lgb.txt"))


def test_a_model_for_other_features_is_refused(written):
    run = written["lightgbm"]
    with pytest.raises(RunFolderError, match=r"max_feature_idx='1', not 4"):
        check_booster_text(_text(run), n_features=5, path=Path("model.lgb.txt"))


LOADER = """
import sys
from deepfin import load_run
from deepfin.errors import RunFolderError
for run in sys.argv[1:]:
    try:
        load_run(run)
    except RunFolderError as error:
        print("refused:", error)
    else:
        print("loaded:", run)
"""


def test_a_truncated_or_crafted_file_with_its_hash_updated_fails_cleanly_not_a_crash(copy_of):
    """LightGBM itself aborts the process on both; in a subprocess, so a crash shows as one."""
    intact = copy_of("lightgbm")
    truncated = Path(str(intact) + "_truncated")
    crafted = Path(str(intact) + "_crafted")
    for run, text in (
        (truncated, _text(intact)[:700]),
        (crafted, _first_tree_field(_text(intact), "split_feature", "9")),
    ):
        run.mkdir()
        for path in intact.iterdir():
            (run / path.name).write_bytes(path.read_bytes())
        (run / "model.lgb.txt").write_text(text)
        rehash(run)  # past the hash check: the text's own check must stop it
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(intact), str(truncated), str(crafted)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"loaded: {intact}"
    assert lines[1].startswith("refused:") and "runs past the end of the file" in lines[1]
    assert lines[2].startswith("refused:") and "splits on a feature outside" in lines[2]
