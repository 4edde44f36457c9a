"""No run-folder write or read goes through a symlink: a planted link never redirects a write."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from deepfin import load_run
from deepfin.cli import app
from deepfin.errors import RunFolderError
from deepfin.report.html import Section, write_report
from deepfin.runs.atomic import read_bytes, write_bytes, write_file
from deepfin.runs.files import read_frame, read_json, write_frame, write_json, write_tensors
from deepfin.training.checkpoints import CHECKPOINT_STATE, CHECKPOINT_WEIGHTS, save_checkpoint
from tests.runs.conftest import prices

LINK_ERROR = r"is a symbolic link .*remove the link"


@pytest.fixture
def target(tmp_path):
    """A file outside the run folder that a planted link points at."""
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    return path


def plant(link, target):
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    return link


WRITERS = {
    "json": lambda path: write_json(path, {"a": 1}),
    "csv": lambda path: write_frame(path.with_suffix(".csv"), pl.DataFrame({"a": [1]})),
    "parquet": lambda path: write_frame(path.with_suffix(".parquet"), pl.DataFrame({"a": [1]})),
    "safetensors": lambda path: write_tensors(path, {"w": torch.zeros(2)}),
    "bytes": lambda path: write_bytes(path, b"x"),
    "report": lambda path: write_report(path, "t", [Section("s")]),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_every_writer_refuses_a_final_name_that_is_a_link(tmp_path, target, kind):
    name = {"csv": "out.csv", "parquet": "out.parquet"}.get(kind, "out.file")
    link = plant(tmp_path / "run" / name, target)
    with pytest.raises(RunFolderError, match=LINK_ERROR) as raised:
        WRITERS[kind](tmp_path / "run" / "out.file")
    assert str(link) in str(raised.value)
    assert target.read_text() == "keep me" and link.is_symlink()
    assert [p.name for p in (tmp_path / "run").iterdir() if "partial" in p.name] == []


@pytest.mark.parametrize("name", ["report.html", "run.json"])
def test_a_planted_partial_link_is_not_written_through(tmp_path, target, name):
    """The old writers wrote `<name>.partial` by name, so a link there redirected the write."""
    plant(tmp_path / "run" / f"{name}.partial", target)
    if name == "report.html":
        write_report(tmp_path / "run" / name, "t", [Section("s")])
    else:
        write_json(tmp_path / "run" / name, {"a": 1})
    assert target.read_text() == "keep me"
    assert (tmp_path / "run" / name).is_file() and not (tmp_path / "run" / name).is_symlink()


def test_a_write_that_fails_leaves_no_temporary_file_and_the_old_file(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old")

    def crash(partial):
        partial.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file(path, crash)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_reads_refuse_links(tmp_path, target):
    for name in ("a.json", "a.csv", "a.bin"):
        plant(tmp_path / name, target)
    with pytest.raises(RunFolderError, match=LINK_ERROR):
        read_json(tmp_path / "a.json")
    with pytest.raises(RunFolderError, match=LINK_ERROR):
        read_frame(tmp_path / "a.csv")
    with pytest.raises(RunFolderError, match=LINK_ERROR):
        read_bytes(tmp_path / "a.bin")


def test_loading_refuses_weights_behind_a_link_even_with_the_right_content(copy_of, tmp_path):
    run = copy_of("linear")
    outside = tmp_path / "elsewhere.safetensors"
    (run / "model.safetensors").rename(outside)  # the same bytes, so the sha256 still matches
    plant(run / "model.safetensors", outside)
    with pytest.raises(RunFolderError, match=LINK_ERROR):
        load_run(run)


def test_checkpoints_are_never_written_through_links(tmp_path, target):
    model = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    for name in (CHECKPOINT_WEIGHTS, CHECKPOINT_STATE):
        folder = tmp_path / name
        plant(folder / name, target)
        with pytest.raises(RunFolderError, match=LINK_ERROR):
            best = {k: v.clone() for k, v in model.state_dict().items()}
            save_checkpoint(folder, model, optimizer, best, {}, epoch=1)
    assert target.read_text() == "keep me"


def test_predict_and_report_refuse_links_in_the_run_folder(copy_of, tmp_path, target):
    run = copy_of("linear")
    prices().write_csv(tmp_path / "prices.csv")
    plant(run / "forecasts.csv", target)
    result = CliRunner().invoke(
        app, ["predict", "--run", str(run), "--data", str(tmp_path / "prices.csv")]
    )
    assert result.exit_code == 2 and "forecasts.csv is a symbolic link" in result.output
    plant(run / "report.html", target)
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 2 and "report.html is a symbolic link" in result.output
    assert target.read_text() == "keep me"
    # with the links gone both write their files
    (run / "forecasts.csv").unlink()
    (run / "report.html").unlink()
    result = CliRunner().invoke(
        app, ["predict", "--run", str(run), "--data", str(tmp_path / "prices.csv")]
    )
    assert result.exit_code == 0, result.output
    assert pl.read_csv(run / "forecasts.csv").height > 0
    assert CliRunner().invoke(app, ["report", str(run)]).exit_code == 0
    assert json.loads((run / "config.json").read_text())["task"] == "forecast"
