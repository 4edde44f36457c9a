"""`deepfin image train|predict`: a CNN for any labelled images from the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from deepfin.cli.common import (
    ConfigOption,
    console,
    format_value,
    guarded,
    table_destination,
    write_table,
)
from deepfin.cli.options import config_options
from deepfin.data.image_files import parse_size, read_images
from deepfin.models import IMAGE_MODELS
from deepfin.tasks.charts.config import ImageConfig, ImageDataConfig, load_image_config
from deepfin.tasks.charts.image_files import run_images
from deepfin.tasks.charts.images import ImageClassifier
from deepfin.tasks.forecasting.pipeline import new_run_dir
from deepfin.training import TrainingConfig

image_app = typer.Typer(help="A CNN for any labelled images.", no_args_is_help=True)
SHOWN = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro F1"),
    ("top_3_accuracy", "top-3 accuracy"),
    ("log_loss", "log loss"),
    ("ece", "ECE"),
)


@image_app.command()
@guarded
@config_options(
    ("data", ImageDataConfig),
    ("image", ImageConfig),
    ("training", TrainingConfig),
    help={
        "data.source": "A folder of class folders of images, an .npz (images, labels), or digits.",
        "data.test_data": "Test images of their own (else a stratified share of --data).",
        "data.resize": "HxW: resize every image (images of different sizes need it).",
        "image.model": f"One of {', '.join(IMAGE_MODELS)}.",
        "image.flip": "Mirror training images left-right at random.",
        "image.shift": "Shift training images by up to this many pixels at random.",
    },
)
def train(
    flags: dict[str, Any],
    config: ConfigOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Default runs/<time>-image-<model>.")] = None,
) -> None:
    """Train an image classifier beside a pixel logistic regression; save a run folder."""
    run = load_image_config(config, {k: v for k, v in flags.items() if v is not None})
    classifier = ImageClassifier(**dataclasses.asdict(run.image), training=run.training)
    folder = run_dir or new_run_dir(run.runs_dir, f"image-{run.image.model}")
    console.print(f"[bold]deepfin image[/bold] {run.image.model} on {escape(run.data.source)}")
    metrics = run_images(classifier, run.data, run_dir=folder, seed=run.training.seed)
    split = metrics["split"]
    shape = "x".join(map(str, metrics["image_shape"]))
    table = Table(
        title=f"test images ({split['test']}; trained on {split['train']}, {shape} pixels, "
        f"{len(metrics['classes'])} classes)"
    )
    table.add_column("model")
    for _, heading in SHOWN:
        table.add_column(heading, justify="right")
    table.add_column("McNemar p vs next", justify="right")
    for name, row in metrics["models"].items():
        test = next((v for k, v in row.items() if k.startswith("mcnemar_p")), None)
        cells = [format_value(row.get(key)) for key, _ in SHOWN]
        table.add_row(escape(name), *cells, format_value(test))
    console.print(table)
    if split["skipped"]:
        console.print(f"{split['skipped']} unreadable image file(s) skipped")
    console.print(f"run folder: {escape(str(folder))}")


@image_app.command()
@guarded
def predict(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by image train.")],
    data: Annotated[str, typer.Option("--data", help="Images: a folder of class folders or .npz.")],
    output: Annotated[Path | None, typer.Option(help=".csv or .parquet.")] = None,
    resize: Annotated[str | None, typer.Option(help="HxW: resize every image first.")] = None,
) -> None:
    """Label images with a saved run: the predicted class and its probability."""
    destination = table_destination(output or Path(run) / "labels.csv")
    classifier = ImageClassifier.load(run)
    predicted = classifier.predict(read_images(data, resize=parse_size(resize)))
    write_table(predicted, destination)
    console.print(predicted.head(5), markup=False)
    console.print(f"{predicted.height} image(s) labelled; written to {escape(str(destination))}")
