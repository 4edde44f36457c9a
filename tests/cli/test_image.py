"""`deepfin image train|predict` end to end on folders of PNGs, and their bad inputs."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from PIL import Image
from typer.testing import CliRunner

from deepfin.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["image", *args], catch_exceptions=False)


def stripes(root, per_class: int = 30, seed: int = 0):
    """Class folders of 12x12 PNGs: horizontal or vertical stripes under noise."""
    rng = np.random.default_rng(seed)
    for name in ("horizontal", "vertical"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (12, 12))
            if name == "horizontal":
                pixels[::3] += 160
            else:
                pixels[:, ::3] += 160
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_train_then_label_a_folder(tmp_path) -> None:
    folder = stripes(tmp_path / "train")
    (folder / "vertical" / "broken.png").write_bytes(b"not a png")
    result = invoke(
        "train", "--data", str(folder), "--epochs", "15", "--flip", "--run-dir",
        str(tmp_path / "run"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "pixel_logistic" in result.output and "1 unreadable image file(s) skipped" in result.output
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["models"]["image_cnn"]["accuracy"] >= 0.9
    new = stripes(tmp_path / "new", per_class=5, seed=1)
    result = invoke("predict", "--run", str(tmp_path / "run"), "--data", str(new))
    assert result.exit_code == 0, result.output
    labels = pl.read_csv(tmp_path / "run" / "labels.csv")
    assert (labels["predicted"] == labels["label"]).mean() >= 0.9


def test_one_class_and_mixed_sizes_are_one_error_line(tmp_path) -> None:
    (tmp_path / "one" / "cats").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "one" / "cats" / f"{i}.png")
    result = invoke("train", "--data", str(tmp_path / "one"), "--run-dir", str(tmp_path / "r1"))
    assert result.exit_code == 2 and "at least two classes" in result.output
    assert not (tmp_path / "r1" / "config.json").exists()
    folder = stripes(tmp_path / "mixed", per_class=10)
    Image.fromarray(np.zeros((20, 9), np.uint8)).save(folder / "vertical" / "big.png")
    result = invoke("train", "--data", str(folder), "--run-dir", str(tmp_path / "r2"))
    assert result.exit_code == 2 and "--resize HxW" in result.output
    result = invoke(
        "train", "--data", str(folder), "--resize", "12x12", "--epochs", "1",
        "--run-dir", str(tmp_path / "r3"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tiny = stripes(tmp_path / "tiny", per_class=3)
    result = invoke("train", "--data", str(tiny), "--run-dir", str(tmp_path / "r4"))
    assert result.exit_code == 2 and "fewer than one per class" in result.output
