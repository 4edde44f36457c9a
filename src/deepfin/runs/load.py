"""Open a run folder of any task: the task is read from its config.json, never guessed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deepfin.errors import RunFolderError
from deepfin.runs.files import read_task

if TYPE_CHECKING:
    from deepfin.tasks.charts.estimator import ChartClassifier
    from deepfin.tasks.charts.images import ImageClassifier
    from deepfin.tasks.credit.estimator import CreditScorer
    from deepfin.tasks.forecasting.estimator import Forecaster
    from deepfin.tasks.risk.var_model import VarModel
    from deepfin.tasks.text.estimator import TextClassifier


def load_run(
    run_dir: Path | str,
) -> Forecaster | CreditScorer | TextClassifier | ChartClassifier | ImageClassifier | VarModel:
    """The fitted estimator saved in `run_dir`; loading reads JSON and safetensors only."""
    run_dir = Path(run_dir)
    task = read_task(run_dir)
    # imported here: the tasks write run folders through this package, so it cannot import them
    if task == "forecast":
        from deepfin.tasks.forecasting.estimator import Forecaster

        return Forecaster.load(run_dir)
    if task == "credit":
        from deepfin.tasks.credit.estimator import CreditScorer

        return CreditScorer.load(run_dir)
    if task == "text":
        from deepfin.tasks.text.estimator import TextClassifier

        return TextClassifier.load(run_dir)
    if task == "chart":
        from deepfin.tasks.charts.estimator import ChartClassifier

        return ChartClassifier.load(run_dir)
    if task == "image":
        from deepfin.tasks.charts.images import ImageClassifier

        return ImageClassifier.load(run_dir)
    if task == "risk":
        from deepfin.tasks.risk.var_model import VarModel

        return VarModel.load(run_dir)
    if task in ("compare", "backtest"):
        inner = "<model>/" if task == "compare" else "last_fold_<model>/"
        raise RunFolderError(
            f"{run_dir} is a {task} folder of several models, not one fitted model; "
            f"open one of its model folders ({run_dir}/{inner})"
        )
    raise RunFolderError(f"{run_dir} was written by an unknown task {task!r}")
