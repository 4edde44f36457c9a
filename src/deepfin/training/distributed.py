"""Data-parallel training across processes: the process group, rank helpers and a local launcher."""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deepfin.errors import ConfigError, DeepfinError

TIMEOUT_ENV = "DEEPFIN_DIST_TIMEOUT_S"
# a collective that waits this long means a rank is gone; long enough for a slow epoch's
# validation on another rank, short enough that a lost rank does not hang the run for 30 minutes
DEFAULT_TIMEOUT_S = 300
STOP_GRACE_S = 5.0  # how long stopped ranks get to exit before they are killed
INTERRUPT_GRACE_S = 60.0  # after Ctrl-C: time for rank 0 to save the run folder
ERROR_TAIL_LINES = 20
T = TypeVar("T")


class DistributedError(DeepfinError, RuntimeError):
    """A rank of a multi-process run failed; the message says which one and why."""


def is_distributed() -> bool:
    """Whether this process is one of several ranks of an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank; 0 outside a process group."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks; 1 outside a process group."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0, the one rank that writes files and prints."""
    return rank() == 0


def local_rank() -> int:
    """This process's index on its machine, as set by the launcher (0 when not launched)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def timeout_s() -> float:
    """Seconds a collective may wait for the other ranks before failing."""
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


@contextmanager
def process_group() -> Iterator[None]:
    """Join the process group the launcher described in the environment; leave it on exit.

    Outside a launch (WORLD_SIZE unset or 1) this does nothing, so one code path serves both.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout_s()))
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` under DistributedDataParallel inside a process group; `model` itself otherwise."""
    if not is_distributed():
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shard(order: torch.Tensor) -> torch.Tensor:
    """This rank's share of `order`: every world_size-th item, wrapped so all shards are equal.

    Equal shards give every rank the same number of batches, which DDP needs: a rank with one
    batch more would wait forever for the others in its gradient all-reduce.
    """
    world = world_size()
    if world == 1:
        return order
    per_rank = math.ceil(len(order) / world)
    repeats = math.ceil(per_rank * world / len(order))
    padded = order.repeat(repeats)[: per_rank * world]
    return padded[rank() :: world]


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sums of `values` over all ranks; `values` itself outside a process group."""
    if not is_distributed():
        return list(values)
    # NCCL reduces only tensors on the GPU; gloo only on the CPU
    if dist.get_backend() != "nccl":
        device = torch.device("cpu")
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_from_main(value: T) -> T:
    """Rank 0's `value` on every rank (a run folder name, say); `value` outside a group."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


# ------------------------------------------------------------------------------ launching
def strip_option(argv: Sequence[str], name: str) -> list[str]:
    """`argv` without the option `name` and its value (`--name V` or `--name=V`)."""
    kept: list[str] = []
    skip_next = False
    for item in argv:
        if skip_next:
            skip_next = False
        elif item == name:
            skip_next = True
        elif not item.startswith(name + "="):
            kept.append(item)
    return kept


def launch(nproc: int, command: Sequence[str], *, threads_per_rank: int | None = None) -> None:
    """Run `command` as `nproc` local ranks of one process group; raise if any rank fails.

    Rank 0 keeps the terminal; the other ranks' error output is kept and shown only if they
    fail. When one rank fails the others are stopped at once, so nothing waits on a lost rank.
    """
    if nproc < 1:
        raise ConfigError(f"nproc must be >= 1, got {nproc}")
    # one rank per core: torch would otherwise start a thread per core in every rank, and
    # ranks x threads > cores makes each collective wait on a descheduled thread
    threads = threads_per_rank or max(1, (os.cpu_count() or 1) // nproc)
    base_env = os.environ.copy()
    base_env.setdefault("OMP_NUM_THREADS", str(threads))
    base_env |= {
        "WORLD_SIZE": str(nproc),
        "LOCAL_WORLD_SIZE": str(nproc),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
    }
    with tempfile.TemporaryDirectory(prefix="deepfin-ranks-") as log_dir:
        logs = [Path(log_dir) / f"rank{index}.log" for index in range(nproc)]
        processes = []
        for index, log_path in enumerate(logs):
            env = base_env | {"RANK": str(index), "LOCAL_RANK": str(index)}
            with log_path.open("w") as log_file:  # the child keeps its own handle open
                stderr = None if index == 0 else log_file  # rank 0 writes to the terminal
                processes.append(subprocess.Popen(list(command), env=env, stderr=stderr))
        _wait_all(processes, logs)


def launch_forecast(nproc: int, argv: Sequence[str]) -> None:
    """Run `deepfin forecast ARGV` as `nproc` ranks of one data-parallel training."""
    launch(nproc, [*_deepfin_command(), "forecast", *argv])


def _wait_all(processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    try:
        while True:
            codes = [process.poll() for process in processes]
            failed = [index for index, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                _stop(processes)
                index = failed[0]
                raise DistributedError(_failure_message(index, codes[index], logs[index]))
            if all(code == 0 for code in codes):
                return
            time.sleep(0.05)
    except KeyboardInterrupt:
        # the terminal sent Ctrl-C to every rank too: let them keep their best weights and save
        _stop(processes, send=None, grace_s=INTERRUPT_GRACE_S)
        raise


def _stop(
    processes: list[subprocess.Popen[bytes]],
    *,
    send: int | None = signal.SIGTERM,
    grace_s: float = STOP_GRACE_S,
) -> None:
    """Send `send` to the ranks still running, wait up to `grace_s`, then kill the rest."""
    for process in processes:
        if send is not None and process.poll() is None:
            process.send_signal(send)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _failure_message(index: int, code: int | None, log_path: Path) -> str:
    where = "its traceback is above"
    if index > 0:
        lines = log_path.read_text(errors="replace").strip().splitlines()[-ERROR_TAIL_LINES:]
        where = "its last output:\n" + "\n".join(lines) if lines else "it printed nothing"
    return (
        f"rank {index} failed with exit code {code}; the other ranks were stopped and the "
        f"last checkpoint (written after the last completed epoch) is intact; {where}"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _deepfin_command() -> list[str]:
    # the console script installed beside this interpreter, so the ranks run the same install
    beside = Path(sys.executable).with_name("deepfin")
    found = str(beside) if beside.exists() else shutil.which("deepfin")
    if found is None:
        raise DistributedError(
            "cannot find the `deepfin` command to start the ranks; install the package "
            "(pip install -e .) or launch the ranks yourself with torchrun"
        )
    return [found]
