"""The run folder of a ChartClassifier, and a whole chart run: read, draw, split, fit, save."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import torch

from deepfin.data.chart_panel import ChartPanel, ChartSplit, split_charts
from deepfin.data.charts import ChartStyle
from deepfin.data.io import read_prices
from deepfin.errors import ConfigError, RunFolderError
from deepfin.models import DATA_SIZES, build_image_model, model_config
from deepfin.runs.files import CONFIG, RunFiles, open_run, read_weights, write_run
from deepfin.runs.folders import check_fresh_folder
from deepfin.tasks.charts.config import ChartConfig, ChartDataConfig
from deepfin.tasks.charts.estimator import ChartClassifier, ChartExamples, WindowLogistic
from deepfin.training import History

log = logging.getLogger(__name__)
TASK = "chart"
EXAMPLE_IMAGES = "examples.images"


def save_chart_classifier(classifier: ChartClassifier, run_dir: Path) -> Path:
    """Write the run folder: config, each net's weights, the logistic baseline, results."""
    classifier.check_is_fitted()
    assert classifier.logistic_ is not None and classifier.style_ is not None
    config = {
        **dataclasses.asdict(classifier.config),
        "training": dataclasses.asdict(classifier.training),
        "model_config": model_config(classifier.models_[0]),
        "style": dataclasses.asdict(classifier.style_),
        "horizon": classifier.horizon_,
    }
    files = RunFiles(
        config=config,
        preprocess={
            "logistic": classifier.logistic_.to_state(),
            "histories": [dataclasses.asdict(history) for history in classifier.histories_],
        },
        history=classifier.histories_[0],
        metrics=classifier.metrics_,
        predictions=classifier.predictions_,
    )
    for member, net in enumerate(classifier.models_):
        files.tensors |= {f"net{member}.{k}": v for k, v in net.state_dict().items()}
    examples = classifier.examples_
    if examples is not None:
        files.tensors[EXAMPLE_IMAGES] = torch.from_numpy(examples.images)
        files.preprocess["examples"] = {
            k: v for k, v in dataclasses.asdict(examples).items() if k != "images"
        }
    return write_run(run_dir, TASK, files)


def load_chart_classifier(run_dir: Path | str) -> ChartClassifier:
    """Rebuild a fitted ChartClassifier from its run folder."""
    return open_run(Path(run_dir), TASK, _classifier)


def _classifier(run_dir: Path, files: RunFiles) -> ChartClassifier:
    saved = files.config
    classifier = ChartClassifier.from_settings(saved, ChartConfig)
    try:
        classifier.style_ = ChartStyle(**saved["style"])
    except ConfigError as error:
        raise RunFolderError(f"{run_dir / CONFIG}: its chart style is invalid ({error})") from None
    classifier.horizon_ = int(saved["horizon"])
    sizes = saved["model_config"]
    if (sizes["height"], sizes["width"]) != (classifier.style_.height, classifier.style_.width):
        raise RunFolderError(
            f"{run_dir / CONFIG}: the net reads {sizes['height']}x{sizes['width']} images but "
            f"the style draws {classifier.style_.height}x{classifier.style_.width}; re-run it"
        )
    params = {k: v for k, v in sizes.items() if k not in DATA_SIZES["image"]}

    def build() -> Any:
        return build_image_model(
            classifier.config.model,
            in_channels=sizes["in_channels"],
            height=sizes["height"],
            width=sizes["width"],
            n_classes=sizes["n_classes"],
            params=params,
        )

    weights = read_weights(run_dir, files.hashes)
    described = f"model_config of {run_dir / CONFIG}"
    classifier.models_ = [
        weights.module(f"net{member}", build, described=described)
        for member in range(classifier.config.ensemble)
    ]
    preprocess = files.preprocess
    classifier.logistic_ = WindowLogistic.from_state(preprocess["logistic"])
    classifier.histories_ = [History(**history) for history in preprocess["histories"]]
    classifier.metrics_ = files.metrics
    classifier.predictions_ = files.predictions
    if "examples" in preprocess:
        images = weights.tensors().get(EXAMPLE_IMAGES)
        if images is None or images.dtype != torch.uint8 or images.ndim != 3:
            raise RunFolderError(f"{weights.path} lacks the example charts; re-run the training")
        classifier.examples_ = ChartExamples(images=images.numpy(), **preprocess["examples"])
    return classifier


def chart_split(data: ChartDataConfig) -> ChartSplit:
    """Read the prices, draw their charts' panel and split the labelled charts by date."""
    frame = read_prices(data.source)
    style = ChartStyle.of(
        data.window,
        moving_average=data.moving_average,
        volume=data.volume,
        line=data.style == "line",
    )
    panel = ChartPanel.from_frame(frame, style)
    test_start = dt.date.fromisoformat(data.test_start) if data.test_start else None
    return split_charts(
        panel,
        horizon=data.horizon,
        stride=data.days_between_charts,
        test_start=test_start,
        test_fraction=data.test_fraction,
        val_fraction=data.val_fraction,
    )


def run_charts(
    classifier: ChartClassifier, data: ChartDataConfig, *, run_dir: Path
) -> dict[str, Any]:
    """Read and split the charts, fit, evaluate on the test charts and save the run folder."""
    check_fresh_folder(run_dir)
    split = chart_split(data)
    for name, described in split.describe().items():
        log.info("%s charts: %s", name, described)
    classifier.fit(split.train, split.val)
    metrics = classifier.evaluate(split.test)
    metrics["split"] = split.describe()
    save_chart_classifier(classifier, run_dir)
    return metrics
