"""`deepfin doctor`: what is installed, whether the kernels are built, the device, where runs go."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

import torch
from rich.markup import escape
from rich.table import Table

from deepfin import __version__
from deepfin.cli.common import console
from deepfin.config import RunConfig
from deepfin.models.kernels.fused_rnn import ENV_SWITCH, status
from deepfin.training import select_device

PACKAGES = ("torch", "numpy", "polars", "pyarrow", "scipy", "lightgbm", "opacus", "safetensors")


def doctor() -> None:
    """Show the installation, the fused kernels, the device and threads, and the runs folder."""
    table = Table(title="deepfin doctor", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("deepfin", __version__)
    table.add_row("python", f"{platform.python_version()} ({platform.python_implementation()})")
    for package in PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        table.add_row(package, version)
    kernels = status()
    if not kernels["enabled"]:
        state = f"switched off ({ENV_SWITCH}=0): torch's nn.LSTM/nn.GRU"
    elif kernels["built"]:
        state = "built for this machine"
    else:
        state = "not built yet: compiled on the first LSTM/GRU forward (about a minute)"
    table.add_row("fused LSTM/GRU kernels", state)
    table.add_row("kernel library", escape(kernels["library"]))
    table.add_row("CPU", f"{kernels['cpu']} (instruction-set key {kernels['cpu_flags']})")
    table.add_row("compiler", kernels["compiler"])
    device = select_device("auto")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    table.add_row("device (auto)", f"{device} ({gpus} CUDA device(s))")
    table.add_row("threads", str(torch.get_num_threads()))
    table.add_row("runs folder", escape(str(Path(RunConfig().runs_dir).resolve())))
    console.print(table)
