"""config.json records every other file's sha256; a file changed afterwards is refused on load."""

from __future__ import annotations

import hashlib
import json

import pytest

from deepfin import load_run
from deepfin.errors import RunFolderError
from tests.runs.conftest import edit_config

FORECAST_FILES = (
    "model.safetensors",
    "preprocess.json",
    "history.csv",
    "training.json",
    "metrics.json",
    "predictions.parquet",
)


def test_config_records_the_sha256_of_every_file_it_wrote(written):
    for kind, expected in (("linear", FORECAST_FILES), ("lightgbm", ("model.lgb.txt",))):
        run = written[kind]
        files = json.loads((run / "config.json").read_text())["files"]
        assert set(expected) <= set(files)
        for name, digest in files.items():
            assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", FORECAST_FILES)
def test_a_file_changed_after_the_run_was_written_is_refused(copy_of, name):
    run = copy_of("linear")
    path = run / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit: still parses, perhaps, but is not what was written
    path.write_bytes(bytes(data))
    with pytest.raises(
        RunFolderError, match=rf"{name} was changed after the run was written \(sha256 differs\)"
    ):
        load_run(run)


def test_a_truncated_booster_is_caught_by_its_hash_first(copy_of):
    run = copy_of("lightgbm")
    path = run / "model.lgb.txt"
    path.write_text(path.read_text()[:500])
    with pytest.raises(RunFolderError, match=r"model\.lgb\.txt was changed after the run"):
        load_run(run)


def test_a_file_the_record_names_but_the_folder_lacks_is_refused(copy_of):
    run = copy_of("linear")
    (run / "preprocess.json").unlink()
    with pytest.raises(RunFolderError, match=r"preprocess\.json is missing"):
        load_run(run)


def test_a_file_the_run_did_not_write_is_not_read(copy_of):
    """Files left from an earlier save into the folder, or added since, are not part of the run."""
    run = copy_of("linear")
    edit_config(run, files={k: v for k, v in _files(run).items() if k != "metrics.json"})
    (run / "metrics.json").write_text("not even JSON")
    assert load_run(run).metrics_ is None
    edit_config(run, files={k: v for k, v in _files(run).items() if k != "model.safetensors"})
    with pytest.raises(RunFolderError, match=r"model\.safetensors is not among the files"):
        load_run(run)


def test_a_folder_without_hashes_still_opens_unchecked(copy_of):
    run = copy_of("lstm")
    config = json.loads((run / "config.json").read_text())
    del config["files"]  # as the writers before the hashes left it
    (run / "config.json").write_text(json.dumps(config))
    (run / "training.json").write_text(json.dumps(json.loads((run / "training.json").read_text())))
    assert load_run(run).model_ is not None


def test_an_edited_config_json_is_checked_by_its_values_not_a_hash(copy_of):
    """config.json is the record's home; what matters in it is validated when opened."""
    run = copy_of("linear")
    edit_config(run, note="added by hand")
    assert load_run(run).model_ is not None
    edit_config(run, files="not a map")
    with pytest.raises(RunFolderError, match=r"'files' is not a map"):
        load_run(run)
    config = json.loads((run / "config.json").read_text())
    del config["training"], config["files"]
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match=r"lacks or mangles an entry .*KeyError: 'training'"):
        load_run(run)
    (run / "config.json").write_text('{"task": "forecast", ')
    with pytest.raises(RunFolderError, match=r"config\.json is not valid JSON"):
        load_run(run)


def _files(run):
    return json.loads((run / "config.json").read_text())["files"]
