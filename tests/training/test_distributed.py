"""Data-parallel training: 2 CPU ranks match 1 process, and a failing rank stops them all.

This file is also the rank program: `python tests/test_distributed.py OUT FAIL_AFTER` trains one
rank of the run that `launch` starts.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from deepfin.data.windows import WindowDataset
from deepfin.models import build_model
from deepfin.training import History, TrainingConfig, distributed, fit_model
from deepfin.training.checkpoints import CHECKPOINT_STATE, CHECKPOINT_WEIGHTS

WORLD = 2
BATCH_PER_RANK = 16
EPOCHS = 4
LOOKBACK = 5
TRAIN_WINDOWS = 256  # a multiple of WORLD * BATCH_PER_RANK: no rank pads its shard
# The 2-rank run averages two half-batch gradients where one process averages the whole batch:
# the same numbers summed in another order, so the runs differ by float rounding only (1e-7
# seen; weights and losses must agree to 1e-5).
TOLERANCE = 1e-5
NO_FAILURE = -1


def ar1_windows(n_windows: int, *, seed: int) -> WindowDataset:
    """Windows over an AR(1) series plus a noise column; the target is the next value."""
    generator = torch.Generator().manual_seed(seed)
    n_rows = n_windows + LOOKBACK - 1
    series = torch.zeros(n_rows + 1)
    shocks = 0.5 * torch.randn(n_rows + 1, generator=generator)
    for t in range(1, n_rows + 1):
        series[t] = 0.9 * series[t - 1] + shocks[t]
    features = torch.stack([series[:-1], torch.randn(n_rows, generator=generator)], dim=1)
    targets = series[1:].unsqueeze(1)  # (N, 1)
    return WindowDataset(features, targets, torch.arange(LOOKBACK - 1, n_rows), lookback=LOOKBACK)


class FailingLoss:
    """MSE that raises on one rank once it has trained on `fail_after` batches."""

    def __init__(self, *, fail_rank: int, fail_after: int) -> None:
        self.fail_rank, self.fail_after, self.batches = fail_rank, fail_after, 0

    def __call__(self, forecast: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if forecast.requires_grad:  # a training batch, not validation
            self.batches += 1
            if distributed.rank() == self.fail_rank and self.batches > self.fail_after >= 0:
                raise RuntimeError(f"injected failure on rank {self.fail_rank}")
        return nn.functional.mse_loss(forecast, target)


def train(
    *, batch_size: int, checkpoint_dir: Path | None = None, fail_after: int = NO_FAILURE
) -> tuple[nn.Module, History]:
    """The run both tests compare: a small LSTM, seeded, no early stop."""
    torch.manual_seed(0)
    model = build_model(
        "lstm", n_features=2, lookback=LOOKBACK, n_outputs=1, params={"hidden_size": 8}
    )
    config = TrainingConfig(
        epochs=EPOCHS,
        batch_size=batch_size,
        learning_rate=1e-2,
        patience=0,
        device="cpu",
        progress=False,
    )
    history = fit_model(
        model,
        ar1_windows(TRAIN_WINDOWS, seed=0),
        ar1_windows(100, seed=1),
        loss_fn=FailingLoss(fail_rank=1, fail_after=fail_after),
        config=config,
        checkpoint_dir=checkpoint_dir,
    )
    return model, history


def rank_main(out: Path, fail_after: int) -> None:
    """One rank: train, then write its history (and, on rank 0, the weights) to `out`."""
    torch.set_num_threads(1)
    with distributed.process_group():
        model, history = train(
            batch_size=BATCH_PER_RANK, checkpoint_dir=out / "checkpoint", fail_after=fail_after
        )
        rank = distributed.rank()
        (out / f"history{rank}.json").write_text(json.dumps(dataclasses.asdict(history)))
        if distributed.is_main_process():
            save_file(model.state_dict(), str(out / "weights.safetensors"))


def launch_ranks(out: Path, fail_after: int = NO_FAILURE) -> None:
    distributed.launch(WORLD, [sys.executable, __file__, str(out), str(fail_after)])


def losses(history: dict[str, Any]) -> list[float]:
    return [e[key] for e in history["epochs"] for key in ("train_loss", "val_loss")]


@pytest.mark.slow  # two ranks start, import torch and train: 15-30 s on two busy cores
def test_two_ranks_match_one_process_on_the_same_data(tmp_path: Path) -> None:
    launch_ranks(tmp_path)
    torch.set_num_threads(1)
    model, history = train(batch_size=WORLD * BATCH_PER_RANK)
    one = dataclasses.asdict(history)
    rank0, rank1 = (json.loads((tmp_path / f"history{r}.json").read_text()) for r in (0, 1))
    # the ranks agree exactly: they all-reduce the same sums, so early stopping agrees too
    assert losses(rank0) == losses(rank1)
    assert rank0["best_epoch"] == rank1["best_epoch"] == one["best_epoch"]
    assert losses(rank0) == pytest.approx(losses(one), rel=TOLERANCE, abs=TOLERANCE)
    weights = load_file(str(tmp_path / "weights.safetensors"))
    for name, value in model.state_dict().items():
        assert torch.allclose(weights[name], value, atol=TOLERANCE, rtol=0), name
    # only rank 0 writes the checkpoint, and it holds the last epoch
    state = json.loads((tmp_path / "checkpoint" / CHECKPOINT_STATE).read_text())
    assert state["epoch"] == EPOCHS


@pytest.mark.slow  # two ranks start, import torch and train: 15-30 s on two busy cores
def test_a_failing_rank_stops_all_ranks_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    batches_per_epoch = TRAIN_WINDOWS // (WORLD * BATCH_PER_RANK)
    fail_after = 2 * batches_per_epoch + 3  # in the middle of epoch 3
    began = time.perf_counter()
    with pytest.raises(distributed.DistributedError, match="rank 1 failed") as caught:
        launch_ranks(tmp_path, fail_after)
    assert "injected failure on rank 1" in str(caught.value)
    assert time.perf_counter() - began < 60  # nobody waited for the collective timeout
    assert not (tmp_path / "history0.json").exists()  # rank 0 stopped too
    checkpoint = tmp_path / "checkpoint"
    state = json.loads((checkpoint / CHECKPOINT_STATE).read_text())
    with safe_open(str(checkpoint / CHECKPOINT_WEIGHTS), framework="pt") as handle:
        weights_epoch = int((handle.metadata() or {})["epoch"])
    assert state["epoch"] == weights_epoch == 2
    # and it resumes: one process finishes the run from the checkpoint of epoch 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(
        "lstm", n_features=2, lookback=LOOKBACK, n_outputs=1, params={"hidden_size": 8}
    )
    history = fit_model(
        model,
        ar1_windows(TRAIN_WINDOWS, seed=0),
        None,
        loss_fn=nn.functional.mse_loss,
        config=TrainingConfig(epochs=EPOCHS, patience=0, device="cpu", progress=False),
        checkpoint_dir=checkpoint,
        resume=True,
    )
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]


def test_launch_stops_the_other_ranks_when_one_fails() -> None:
    # rank 1 fails at once; rank 0 would sleep a minute if it were not stopped
    program = "import os, sys, time; r = os.environ['RANK']; time.sleep(60) if r == '0' else "
    program += "sys.exit('rank one is broken')"
    began = time.perf_counter()
    with pytest.raises(distributed.DistributedError, match="rank 1 failed with exit code 1"):
        distributed.launch(WORLD, [sys.executable, "-c", program])
    assert time.perf_counter() - began < 30


def test_launch_gives_every_rank_its_environment(tmp_path: Path) -> None:
    program = (
        "import os, pathlib; e = os.environ; pathlib.Path(e['OUT'], e['RANK']).write_text("
        "' '.join(e[k] for k in ('WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'OMP_NUM_THREADS')))"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OUT", str(tmp_path))
        patch.delenv("OMP_NUM_THREADS", raising=False)
        distributed.launch(WORLD, [sys.executable, "-c", program], threads_per_rank=1)
    assert (tmp_path / "0").read_text() == "2 0 127.0.0.1 1"
    assert (tmp_path / "1").read_text() == "2 1 127.0.0.1 1"


def test_outside_a_process_group_everything_is_one_rank() -> None:
    order = torch.randperm(10)
    assert distributed.shard(order) is order
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (
        0,
        1,
        True,
    )
    assert distributed.all_reduce_sum([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
    with distributed.process_group():  # WORLD_SIZE unset: joins nothing
        assert not distributed.is_distributed()


@pytest.mark.parametrize(("world", "rank"), [(2, 0), (2, 1), (3, 2), (4, 3)])
def test_shards_are_equal_and_cover_every_window(
    monkeypatch: pytest.MonkeyPatch, world: int, rank: int
) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    order = torch.randperm(10)
    shards = []
    for index in range(world):
        monkeypatch.setattr(distributed, "rank", lambda index=index: index)
        shards.append(distributed.shard(order))
    assert {len(s) for s in shards} == {-(-10 // world)}  # ceil: every rank, as many batches
    assert set(torch.cat(shards).tolist()) == set(range(10))
    assert torch.equal(shards[rank][: 10 // world], order[rank::world][: 10 // world])


def test_strip_option_removes_both_spellings() -> None:
    argv = ["--model", "lstm", "--nproc", "2", "--epochs=3", "--nproc=4"]
    assert distributed.strip_option(argv, "--nproc") == ["--model", "lstm", "--epochs=3"]


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]), int(sys.argv[2]))
