"""One training loop for every model: seeded, early-stopped, checkpointed, interruptible."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from deepfin.data.batches import Batches, Inputs, call_model, slice_inputs, values_per_example
from deepfin.training import distributed
from deepfin.training.checkpoints import CHECKPOINT_STATE, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OPTIMIZERS = ("adam", "adamw")
# evaluation batches small enough that a recurrent net's per-step buffers stay in cache
EVAL_BATCH = 256


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: optimiser, regularisation, stopping and reproducibility."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0  # decoupled for adamw, coupled (as L2 in the gradient) for adam
    l1: float = 0.0
    l2: float = 0.0
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    patience: int = 5  # epochs without validation improvement before stopping; 0: never stop
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    bf16: bool = False  # bfloat16 autocast of the forward pass: faster on GPUs with bf16 units

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "l1": self.l1 >= 0,
            "l2": self.l2 >= 0,
            "grad_clip": self.grad_clip >= 0,
            "patience": self.patience >= 0,
        }
        bad = [f"{name}={getattr(self, name)}" for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid training settings {bad}: epochs and batch_size must be >= 1, "
                "learning_rate > 0, the rest >= 0"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{self.optimizer}'; choose one of {OPTIMIZERS}")


@dataclass
class History:
    """Per-epoch losses, the epoch whose weights were kept, and why training stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = math.inf
    stopped: str = "completed"  # completed | early_stopping | interrupted


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when present (this rank's GPU under DDP), else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")
    return torch.device(name)


def _outputs_and_targets(
    model: nn.Module, data: Batches, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs (M, O) and targets (M, O) at `positions`, in eval mode without gradients."""
    device = next(model.parameters(), torch.empty(0)).device
    outputs, targets = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(positions), EVAL_BATCH):
            inputs, target = data.batch(positions[start : start + EVAL_BATCH])
            outputs.append(call_model(model, _to(inputs, device)).float().cpu())
            targets.append(target.float().cpu())
    model.train(was_training)
    if not outputs:
        return torch.zeros((0, 1)), torch.zeros((0, 1))
    return torch.cat(outputs), torch.cat(targets)


def _to(inputs: Inputs, device: torch.device) -> Inputs:
    if isinstance(inputs, tuple):
        return tuple(part.to(device) for part in inputs)
    return inputs.to(device)


def predict_batches(model: nn.Module, data: Batches) -> torch.Tensor:
    """Model outputs for every example of `data`, (M, O), in eval mode without gradients."""
    return _outputs_and_targets(model, data, torch.arange(len(data)))[0]


def evaluate_loss(model: nn.Module, data: Batches, loss_fn: LossFunction) -> float:
    """Mean loss over all examples of `data`."""
    outputs, targets = _outputs_and_targets(model, data, torch.arange(len(data)))
    return float(loss_fn(outputs, targets))


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
) -> History:
    """Train `model` in place and leave it holding the best weights seen.

    In a process group (deepfin.training.distributed) each rank trains on its shard of the
    windows under DistributedDataParallel; the ranks agree on the losses, and only rank 0 shows
    progress and writes checkpoints.
    """
    if len(train) == 0:
        raise ValueError(
            "no training examples (for windows: the training period is shorter than the lookback)"
        )
    if poisson_sampling and distributed.is_distributed():
        raise ValueError("Poisson-sampled (DP-SGD) batches are not sharded; train in one process")
    device = select_device(config.device)
    model.to(device)
    train = train.to(device)
    own_optimizer = optimizer is None
    optimizer = _make_optimizer(model, config) if optimizer is None else optimizer
    history = History()
    best_state = _copy_state(model)
    start_epoch = 1
    if resume and checkpoint_dir is not None and (checkpoint_dir / CHECKPOINT_STATE).exists():
        saved, best_state, start_epoch = load_checkpoint(checkpoint_dir, model, optimizer)
        # a checkpoint saved after an interruption still resumes where it stopped
        history = History(**(saved | {"stopped": "completed"}))
        log.info("resuming from epoch %d of %s", start_epoch, checkpoint_dir)
    net = distributed.wrap_model(model, device)  # after resuming: DDP copies rank 0's weights
    # DDP and DP-SGD's optimiser manage the gradients themselves; elsewhere they share one buffer
    own_gradients = own_optimizer and not distributed.is_distributed() and not poisson_sampling
    grads = _FlatGradients(model) if own_gradients and _FlatGradients.fits(model) else None
    main_process = distributed.is_main_process()
    bad_epochs = start_epoch - 1 - history.best_epoch
    batches_per_epoch = math.ceil(len(train) / distributed.world_size() / config.batch_size)
    progress = _progress_bar(config.progress and main_process)
    task = progress.add_task("training", total=config.epochs * batches_per_epoch, status="")
    progress.update(task, completed=(start_epoch - 1) * batches_per_epoch)
    try:
        with progress:
            for epoch in range(start_epoch, config.epochs + 1):
                began = time.perf_counter()
                # a per-epoch seed makes a resumed run identical to an uninterrupted one
                torch.manual_seed(config.seed * 1_000_003 + epoch)
                train_loss = _train_epoch(
                    net, train, optimizer, loss_fn, config, progress, task, poisson_sampling, grads
                )
                val_loss = _validation_loss(model, val, loss_fn) if val is not None else train_loss
                history.epochs.append(
                    {
                        "epoch": epoch,
                        "train_loss": train_loss,
                        "val_loss": val_loss,
                        "seconds": time.perf_counter() - began,
                    }
                )
                if val_loss < history.best_loss:
                    history.best_loss, history.best_epoch = val_loss, epoch
                    best_state, bad_epochs = _copy_state(model), 0
                else:
                    bad_epochs += 1
                progress.update(
                    task,
                    status=f"epoch {epoch}/{config.epochs} train {train_loss:.4f} "
                    f"val {val_loss:.4f} best {history.best_loss:.4f}@{history.best_epoch}",
                )
                if checkpoint_dir is not None and main_process:
                    save_checkpoint(
                        checkpoint_dir, model, optimizer, best_state, asdict(history), epoch
                    )
                if not math.isfinite(train_loss) or not math.isfinite(val_loss):
                    model.load_state_dict(best_state)
                    raise FloatingPointError(
                        f"loss became non-finite at epoch {epoch} (train {train_loss}, "
                        f"validation {val_loss}); check the data for NaN, lower the "
                        "learning_rate or enable grad_clip"
                    )
                if config.patience and bad_epochs >= config.patience and val is not None:
                    history.stopped = "early_stopping"
                    break
    except KeyboardInterrupt:
        history.stopped = "interrupted"
        log.warning("interrupted: keeping the best weights so far (epoch %d)", history.best_epoch)
    except RuntimeError as error:
        if not distributed.is_distributed():
            raise
        # when a rank dies the others fail inside a collective with a cryptic socket error
        raise distributed.DistributedError(
            f"rank {distributed.rank()} stopped after {len(history.epochs)} epoch(s): {error}; "
            "if another rank failed first its error is the cause; the checkpoint of the last "
            "completed epoch is intact: fix the cause and resume from it"
        ) from error
    finally:
        if grads is not None:
            grads.release()
    model.load_state_dict(best_state)
    return history


class _FlatGradients:
    """Every parameter's gradient as a view of one buffer: zeroing and clipping are one op each.

    On small nets the per-parameter Python of zero_grad and clip_grad_norm_ costs more than
    the arithmetic; autograd accumulates into the views in place.
    """

    def __init__(self, model: nn.Module) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        first = self.params[0]
        self.flat = torch.zeros(
            sum(p.numel() for p in self.params), dtype=first.dtype, device=first.device
        )
        offset = 0
        for p in self.params:
            p.grad = self.flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()

    @staticmethod
    def fits(model: nn.Module) -> bool:
        """Whether the trainable parameters can share one buffer (one dtype, one device)."""
        kinds = {(p.dtype, p.device) for p in model.parameters() if p.requires_grad}
        return len(kinds) == 1

    def zero(self) -> None:
        """Zero every gradient."""
        self.flat.zero_()

    def clip(self, max_norm: float) -> None:
        """Scale the gradients to a global norm of at most `max_norm`, as clip_grad_norm_."""
        norm = torch.linalg.vector_norm(self.flat)
        self.flat.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))

    def release(self) -> None:
        """Detach the parameters from the buffer."""
        for p in self.params:
            p.grad = None


def _validation_loss(model: nn.Module, val: Batches, loss_fn: LossFunction) -> float:
    """Loss over `val`; under DDP each rank scores a share and all get the same mean."""
    if not distributed.is_distributed():
        return evaluate_loss(model, val, loss_fn)
    share = torch.arange(distributed.rank(), len(val), distributed.world_size())
    # a mean loss times its count is a sum; the shares' sums give the exact overall mean
    loss_sum = 0.0
    if len(share):
        loss_sum = float(loss_fn(*_outputs_and_targets(model, val, share))) * len(share)
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
    grads: _FlatGradients | None = None,
) -> float:
    model.train()
    device = next(model.parameters()).device
    # under DDP every rank draws the same permutation and trains on its own share of it
    order = distributed.shard(torch.randperm(len(train), device=device))
    total, count = torch.zeros((), device=device), 0
    penalised = [p for name, p in model.named_parameters() if p.ndim > 1 and "weight" in name]
    batches = math.ceil(len(order) / config.batch_size)
    for index, (inputs, targets) in enumerate(
        _batches(train, order, config.batch_size, poisson_sampling)
    ):
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
        optimizer.step()
        total += loss.detach() * len(targets)
        count += len(targets)
        if index % 50 == 0:
            progress.update(task, advance=min(50, batches - index))
    total_sum, count_sum = distributed.all_reduce_sum([float(total), count], device)
    return total_sum / count_sum


def _batches(
    train: Batches, order: torch.Tensor, batch_size: int, poisson_sampling: bool
) -> Iterator[tuple[Inputs, torch.Tensor]]:
    """(inputs, targets) of each batch, in `order`; examples are gathered many batches at once."""
    if poisson_sampling:
        for _ in range(0, len(order), batch_size):
            # DP-SGD's privacy accounting assumes each row joins each batch independently
            chosen = torch.rand(len(train), device=order.device) < batch_size / len(train)
            positions = torch.nonzero(chosen).squeeze(1)
            if len(positions):  # empty with chance (1 - q)^rows: negligible for our sizes
                yield train.batch(positions)
        return
    # one gather per 64 batches (at most about a million values) instead of one per batch
    example_values = values_per_example(train.batch(order[:1])[0]) if len(order) else 1
    per_gather = batch_size * max(1, min(64, 2**20 // (batch_size * example_values)))
    for first in range(0, len(order), per_gather):
        inputs, targets = train.batch(order[first : first + per_gather])
        for start in range(0, len(targets), batch_size):
            stop = start + batch_size
            yield slice_inputs(inputs, start, stop), targets[start:stop]


def _make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # one fused kernel per step instead of a dozen small ops per parameter: on the small nets
    # of this library that is a tenth of each training step on a CPU
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return optimizer_class(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )


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
