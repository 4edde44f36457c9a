"""One training loop for every model: seeded, early-stopped, checkpointed, interruptible."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from deepfin.data.batches import Batches, call_model
from deepfin.errors import ConfigError, DataError, TrainingError
from deepfin.heap import keep_freed_buffers
from deepfin.training import distributed
from deepfin.training.batching import batch_count, epoch_batches
from deepfin.training.checkpoints import CHECKPOINT_STATE, load_checkpoint, save_checkpoint
from deepfin.training.config import History, TrainingConfig
from deepfin.training.evaluation import (
    LossFunction,
    evaluate_loss,
    outputs_and_targets,
    predict_batches,
)
from deepfin.training.optim import FlatGradients, RateSchedule, make_optimizer

log = logging.getLogger(__name__)


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when present (this rank's GPU under DDP), else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} was asked for, but this torch build has no CUDA or the machine no "
            "GPU; use --device cpu (or auto), or install a CUDA build of torch"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} was asked for, but there are {torch.cuda.device_count()} GPU(s)"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} was asked for, but MPS is not available here")
    return device


def fit_model(
    model: nn.Module,
    train: Batches,
    val: Batches | None,
    *,
    loss_fn: LossFunction,
    config: TrainingConfig,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    optimizer: torch.optim.Optimizer | None = None,  # DP-SGD passes a privatised one
    poisson_sampling: bool = False,  # each row joins each batch with chance batch_size / rows
    val_score: Callable[[torch.Tensor], float] | None = None,
) -> History:
    """Train `model` in place and leave it holding the best weights seen.

    In a process group (deepfin.training.distributed) each rank trains on its shard of the
    windows under DistributedDataParallel; the ranks agree on the losses, and only rank 0 shows
    progress and writes checkpoints.
    """
    if len(train) == 0:
        raise DataError(
            "no training examples (for windows: the training period is shorter than the lookback)"
        )
    if poisson_sampling and distributed.is_distributed():
        raise ConfigError("Poisson-sampled (DP-SGD) batches are not sharded; train in one process")
    device = select_device(config.device)
    model.to(device)
    train = train.to(device)
    own_optimizer = optimizer is None
    optimizer = make_optimizer(model, config) if optimizer is None else optimizer
    batches_per_epoch = batch_count(train, config.batch_size)
    # before resuming: a checkpoint's optimiser holds the rates of its last scheduled step
    schedule = RateSchedule(optimizer, config, config.epochs * batches_per_epoch)
    run = _resume(model, optimizer, checkpoint_dir) if resume else _Run(best=_copy_state(model))
    net = distributed.wrap_model(model, device)  # after resuming: DDP copies rank 0's weights
    # DDP and DP-SGD's optimiser manage the gradients themselves; elsewhere they share one buffer
    own_gradients = own_optimizer and not distributed.is_distributed() and not poisson_sampling
    grads = FlatGradients(model) if own_gradients and FlatGradients.fits(model) else None
    progress = _progress_bar(config.progress and distributed.is_main_process())
    task = progress.add_task("training", total=config.epochs * batches_per_epoch, status="")
    progress.update(task, completed=(run.next_epoch - 1) * batches_per_epoch)
    try:
        with progress, keep_freed_buffers():  # a step re-allocates the last step's buffers
            for epoch in range(run.next_epoch, config.epochs + 1):
                began = time.perf_counter()
                # a per-epoch seed makes a resumed run identical to an uninterrupted one
                torch.manual_seed(config.seed * 1_000_003 + epoch)
                schedule.first_step = (epoch - 1) * batches_per_epoch
                train_loss = _train_epoch(
                    net,
                    train,
                    optimizer,
                    loss_fn,
                    config,
                    progress,
                    task,
                    poisson_sampling,
                    grads,
                    schedule,
                )
                val_loss, score = (
                    _validation(model, val, loss_fn, val_score)
                    if val is not None
                    else (train_loss, None)
                )
                run.record(model, epoch, train_loss, val_loss, time.perf_counter() - began, score)
                progress.update(task, status=run.status(config.epochs))
                if not progress.console.is_terminal:  # a log file or a pipe gets a line an epoch
                    log.info("%s (%.0f s)", run.status(config.epochs), time.perf_counter() - began)
                if checkpoint_dir is not None and distributed.is_main_process():
                    save_checkpoint(
                        checkpoint_dir, model, optimizer, run.best, asdict(run.history), epoch
                    )
                _check_finite(model, run, epoch, train_loss, val_loss)
                if val is not None and run.should_stop(config.patience):
                    run.history.stopped = "early_stopping"
                    break
    except KeyboardInterrupt:
        run.history.stopped = "interrupted"
        log.warning(
            "interrupted: keeping the best weights so far (epoch %d)", run.history.best_epoch
        )
    except RuntimeError as error:
        if not distributed.is_distributed():
            raise
        # when a rank dies the others fail inside a collective with a cryptic socket error
        raise distributed.DistributedError(
            f"rank {distributed.rank()} stopped after {len(run.history.epochs)} epoch(s): "
            f"{error}; if another rank failed first its error is the cause; the checkpoint of "
            "the last completed epoch is intact: fix the cause and resume from it"
        ) from error
    finally:
        if grads is not None:
            grads.release()
    model.load_state_dict(run.best)
    return run.history


@dataclass
class _Run:
    """Where training stands: the history so far, the best weights, the epochs without gain."""

    best: dict[str, torch.Tensor]
    history: History = field(default_factory=History)
    next_epoch: int = 1
    bad_epochs: int = 0

    def record(
        self,
        model: nn.Module,
        epoch: int,
        train_loss: float,
        val_loss: float,
        seconds: float,
        score: float | None = None,
    ) -> None:
        """Add an epoch's losses; keep the weights when the validation loss is the best yet, or
        the validation score (higher is better, NaN never is) when there is one."""
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds}
        self.history.epochs.append(row if score is None else row | {"val_score": score})
        history = self.history
        if score is not None:
            history.selected_by = "val_score"
            best = history.best_score if history.best_score is not None else -math.inf
            better = score > best  # False for NaN: an undefined score never wins
        else:
            better = val_loss < history.best_loss
        if better:
            history.best_loss, history.best_epoch = val_loss, epoch
            history.best_score = score
            self.best, self.bad_epochs = _copy_state(model), 0
        else:
            self.bad_epochs += 1

    def should_stop(self, patience: int) -> bool:
        """Early stopping: `patience` epochs in a row without a better validation loss."""
        return bool(patience) and self.bad_epochs >= patience

    def status(self, epochs: int) -> str:
        """The progress bar's line after an epoch."""
        last, history = self.history.epochs[-1], self.history
        if "val_score" in last:
            best = history.best_score if history.best_score is not None else math.nan
            return (
                f"epoch {last['epoch']}/{epochs} train {last['train_loss']:.4f} "
                f"val {last['val_loss']:.4f} score {last['val_score']:.4f} "
                f"best {best:.4f}@{history.best_epoch}"
            )
        return (
            f"epoch {last['epoch']}/{epochs} train {last['train_loss']:.4f} "
            f"val {last['val_loss']:.4f} best {history.best_loss:.4f}@{history.best_epoch}"
        )


def _resume(
    model: nn.Module, optimizer: torch.optim.Optimizer, checkpoint_dir: Path | None
) -> _Run:
    """The run as the last checkpoint left it; a fresh run when there is none."""
    if checkpoint_dir is None or not (checkpoint_dir / CHECKPOINT_STATE).exists():
        return _Run(best=_copy_state(model))
    saved, best, next_epoch = load_checkpoint(checkpoint_dir, model, optimizer)
    # a checkpoint saved after an interruption still resumes where it stopped
    history = History(**(saved | {"stopped": "completed"}))
    log.info("resuming from epoch %d of %s", next_epoch, checkpoint_dir)
    return _Run(
        best=best,
        history=history,
        next_epoch=next_epoch,
        bad_epochs=next_epoch - 1 - history.best_epoch,
    )


def _check_finite(
    model: nn.Module, run: _Run, epoch: int, train_loss: float, val_loss: float
) -> None:
    """Stop on a NaN or infinite loss, keeping the best weights so far."""
    if math.isfinite(train_loss) and math.isfinite(val_loss):
        return
    model.load_state_dict(run.best)
    raise TrainingError(
        f"loss became non-finite at epoch {epoch} (train {train_loss}, validation {val_loss}); "
        "check the data for NaN, lower the learning_rate or enable grad_clip"
    )


def _validation(
    model: nn.Module,
    val: Batches,
    loss_fn: LossFunction,
    val_score: Callable[[torch.Tensor], float] | None,
) -> tuple[float, float | None]:
    """The validation loss, and the score of the validation outputs (M, O) when there is one:
    a score to maximise (a panel's Rank IC, say) then chooses the kept epoch."""
    if val_score is None:
        return _validation_loss(model, val, loss_fn), None
    if distributed.is_distributed():  # each rank scores a share of the loss, all the score
        return _validation_loss(model, val, loss_fn), val_score(predict_batches(model, val))
    # one pass over the validation windows serves the loss and the score
    outputs, targets = outputs_and_targets(model, val, torch.arange(len(val)))
    return float(loss_fn(outputs, targets)), val_score(outputs)


def _validation_loss(model: nn.Module, val: Batches, loss_fn: LossFunction) -> float:
    """Loss over `val`; under DDP each rank scores a share and all get the same mean."""
    if not distributed.is_distributed():
        return evaluate_loss(model, val, loss_fn)
    share = torch.arange(distributed.rank(), len(val), distributed.world_size())
    # a mean loss times its count is a sum; the shares' sums give the exact overall mean
    loss_sum = 0.0
    if len(share):
        loss_sum = float(loss_fn(*outputs_and_targets(model, val, share))) * len(share)
    device = next(model.parameters()).device
    total, count = distributed.all_reduce_sum([loss_sum, len(share)], device)
    return total / count


def _train_epoch(
    model: nn.Module,
    train: Batches,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFunction,
    config: TrainingConfig,
    progress: Progress,
    task: Any,
    poisson_sampling: bool = False,
    grads: FlatGradients | None = None,
    schedule: RateSchedule | None = None,
) -> float:
    model.train()
    device = next(model.parameters()).device
    total, count = torch.zeros((), device=device), 0
    penalised = [p for name, p in model.named_parameters() if p.ndim > 1 and "weight" in name]
    batches, source = epoch_batches(
        train, config.batch_size, device=device, poisson_sampling=poisson_sampling
    )
    for index, (inputs, targets) in enumerate(source):
        if config.bf16:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = loss_fn(call_model(model, inputs), targets)
        else:
            loss = loss_fn(call_model(model, inputs), targets)
        objective = loss
        if config.l1:
            objective = objective + config.l1 * sum(p.abs().sum() for p in penalised)
        if config.l2:
            objective = objective + config.l2 * sum(p.pow(2).sum() for p in penalised)
        if grads is None:
            optimizer.zero_grad(set_to_none=True)
        else:
            grads.zero()
        objective.backward()
        if config.grad_clip and grads is not None:
            grads.clip(config.grad_clip)
        elif config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if schedule is not None and schedule.active:
            schedule.set(schedule.first_step + index)
        optimizer.step()
        total += loss.detach() * len(targets)
        count += len(targets)
        if index % 50 == 0:
            progress.update(task, advance=min(50, batches - index))
    total_sum, count_sum = distributed.all_reduce_sum([float(total), count], device)
    return total_sum / count_sum


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        disable=not enabled,
        transient=False,
    )


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}
