"""LSTM and GRU layers that run a whole window in one C++ call on the CPU (nn.LSTM/nn.GRU API)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from deepfin.errors import ConfigError
from deepfin.runs.atomic import record_sha256, recorded_sha256_matches

log = logging.getLogger(__name__)

SOURCE = Path(__file__).parent / "csrc" / "recurrent.cpp"
# OpenMP: at::parallel_for is a header template, serial unless compiled with it
CFLAGS = ("-O3", "-fno-trapping-math", "-fno-math-errno", "-fopenmp", "-Wno-psabi")
# DEEPFIN_FUSED_RNN=0 keeps torch's own kernels (to compare, or where no compiler exists)
ENV_SWITCH = "DEEPFIN_FUSED_RNN"


def machine() -> dict[str, str]:
    """What a build is specific to: the CPU (architecture and instruction sets) and compiler."""
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):  # x86, then ARM
                flags = line.split(":", 1)[1].strip()
                break
    compiler = os.environ.get("CXX", "c++")
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        version = []
    return {
        "cpu": platform.machine() or "unknown",
        "cpu_flags": hashlib.sha256(flags.encode()).hexdigest()[:12],
        "compiler": f"{compiler}: {version[0] if version else 'not found'}",
    }


@functools.cache
def build_directory() -> tuple[str, Path]:
    """The library's name and folder: new source, flags, torch, Python, CPU or compiler: new."""
    key = hashlib.sha256(
        b"\0".join(
            [
                SOURCE.read_bytes(),
                " ".join(CFLAGS).encode(),
                torch.__version__.encode(),
                sys.version.encode(),
                *(value.encode() for value in machine().values()),
            ]
        )
    ).hexdigest()[:16]
    name = f"deepfin_recurrent_{key}"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch_extensions"
    return name, Path(os.environ.get("TORCH_EXTENSIONS_DIR", cache)) / "deepfin" / name


def switched_on() -> bool:
    """Whether DEEPFIN_FUSED_RNN leaves the kernels on (unset or 1) or turns them off (0)."""
    value = os.environ.get(ENV_SWITCH, "1").strip()
    if value not in ("0", "1"):
        raise ConfigError(
            f"{ENV_SWITCH}={value!r}: set it to 0 (torch's own LSTM and GRU) or 1 (the fused "
            "kernels, the default), or unset it"
        )
    return value == "1"


def status() -> dict[str, Any]:
    """Whether the kernels are switched on and built for this machine, and where; builds nothing."""
    name, directory = build_directory()
    built = directory / f"{name}.so"
    return {
        "enabled": switched_on(),
        "built": built.exists(),
        "library": str(built),
        **machine(),
    }


@functools.cache
def extension() -> ModuleType | None:
    """The compiled kernels (built once per machine, then cached), or None where they cannot be."""
    if not switched_on():
        return None
    name, directory = build_directory()
    built = directory / f"{name}.so"
    # import it directly: torch's loader costs seconds even when cached
    if built.exists() and library_intact(built):
        spec = importlib.util.spec_from_file_location(name, built)
        if spec is not None and spec.loader is not None:
            try:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
            except ImportError:  # half-written by a concurrent build: let torch's lock decide
                pass
    try:
        import ninja
        from torch.utils import cpp_extension

        # torch looks for the ninja binary on PATH; the pip package puts it beside itself
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        directory.mkdir(parents=True, exist_ok=True)
        log.warning(
            "compiling the fused LSTM/GRU kernels for this CPU (about a minute, once; cached "
            "in %s)",
            directory,
        )
        module = cpp_extension.load(
            name=name,
            sources=[str(SOURCE)],
            extra_cflags=list(CFLAGS),
            extra_ldflags=["-fopenmp"],
            build_directory=str(directory),
            verbose=False,
        )
        record_sha256(built)
        return module
    # a missing compiler or ninja must not stop training, only slow it; other errors show
    except (ImportError, OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        log.warning(
            "fused LSTM/GRU kernels unavailable (%s: %s); using torch's nn.LSTM/nn.GRU, which "
            "is slower on the CPU. Install a C++ compiler to enable them, or set %s=0 to "
            "silence this.",
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            ENV_SWITCH,
        )
        return None


def library_intact(library: Path) -> bool:
    """Whether the library still has the sha256 recorded when it was built; if not, remove it.

    A mismatch removes it and its object files, with a warning, so the caller rebuilds. One
    built before checksums were recorded is recorded as found (once) instead of rebuilt.
    """
    matches = recorded_sha256_matches(library)
    if matches is None:
        record_sha256(library)
    if matches is not False:
        return True
    log.warning("the fused LSTM/GRU kernels in %s fail their sha256; rebuilding", library.parent)
    for stale in [library, *library.parent.glob("*.o")]:
        stale.unlink(missing_ok=True)
    return False


def _once(ctx: Any) -> None:
    """The backward kernels overwrite the saved gates, so a graph is walked back only once."""
    if getattr(ctx, "spent", False):
        raise RuntimeError(
            "backward through a fused LSTM/GRU layer ran twice (retain_graph=True); set "
            f"{ENV_SWITCH}=0 to use torch's own kernels for that"
        )
    ctx.spent = True


class _LSTMLayer(torch.autograd.Function):
    """One LSTM layer over whole windows, batch first."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        keep: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ext = extension()
        assert ext is not None
        out, h_n, c_n, *saved = ext.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, keep)
        ctx.save_for_backward(w_ih, w_hh, *saved)
        return out, h_n, c_n

    @staticmethod
    @once_differentiable  # the kernels record no graph: a second derivative must fail loudly
    def backward(
        ctx: Any, grad_out: torch.Tensor, grad_hn: torch.Tensor | None, grad_cn: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        ext = extension()
        assert ext is not None
        _once(ctx)
        w_ih, w_hh, xh, gates, cs, tcs = ctx.saved_tensors
        dx, d_w_ih, d_w_hh, d_b = ext.lstm_backward(
            grad_out, grad_hn, grad_cn, w_ih, w_hh, xh, gates, cs, tcs, ctx.needs_input_grad[0]
        )
        return dx, d_w_ih, d_w_hh, d_b, d_b, None


class _GRULayer(torch.autograd.Function):
    """One GRU layer over whole windows, batch first."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        keep: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ext = extension()
        assert ext is not None
        out, h_n, *saved = ext.gru_forward(x, w_ih, w_hh, b_ih, b_hh, keep)
        ctx.save_for_backward(w_ih, w_hh, *saved)
        return out, h_n

    @staticmethod
    @once_differentiable  # the kernels record no graph: a second derivative must fail loudly
    def backward(
        ctx: Any, grad_out: torch.Tensor, grad_hn: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        ext = extension()
        assert ext is not None
        _once(ctx)
        w_ih, w_hh, x_tm, gi, gh, hs = ctx.saved_tensors
        grads = ext.gru_backward(
            grad_out, grad_hn, w_ih, w_hh, x_tm, gi, gh, hs, ctx.needs_input_grad[0]
        )
        return (*grads, None)


def _fused_ok(module: nn.RNNBase, x: torch.Tensor, hx: object) -> bool:
    """Whether the fused kernels cover this call; everything else goes to torch's own."""
    return (
        isinstance(x, torch.Tensor)  # not a PackedSequence
        and hx is None
        and x.dim() == 3
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and module.batch_first
        and module.bias
        and not module.bidirectional
        and module.proj_size == 0
        and not torch.is_autocast_enabled("cpu")
        and extension() is not None
    )


def _layers(module: nn.RNNBase, x: torch.Tensor, layer: Any) -> tuple[torch.Tensor, list]:
    """Run the stacked layers with dropout between them as nn.LSTM/nn.GRU do."""
    finals = []
    for k in range(module.num_layers):
        if k > 0 and module.dropout > 0 and module.training:
            x = F.dropout(x, module.dropout, training=True)
        weights = [getattr(module, f"{name}_l{k}") for name in ("weight_ih", "weight_hh")]
        biases = [getattr(module, f"{name}_l{k}") for name in ("bias_ih", "bias_hh")]
        # the per-step buffers are kept only when autograd will walk back through them
        keep = torch.is_grad_enabled() and any(t.requires_grad for t in [x, *weights, *biases])
        x, *state = layer.apply(x.contiguous(), *weights, *biases, keep)
        finals.append(state)
    return x, finals


class FusedLSTM(nn.LSTM):
    """nn.LSTM whose float32 CPU forward and backward run in the fused kernels when available."""

    def forward(self, x: torch.Tensor, hx: Any = None) -> Any:  # type: ignore[override]
        """Same inputs, outputs and weights as nn.LSTM."""
        if not _fused_ok(self, x, hx):
            return super().forward(x, hx)
        out, finals = _layers(self, x, _LSTMLayer)
        h_n, c_n = (torch.stack([state[k] for state in finals]) for k in (0, 1))  # (layers, B, H)
        return out, (h_n, c_n)


class FusedGRU(nn.GRU):
    """nn.GRU whose float32 CPU forward and backward run in the fused kernels when available."""

    def forward(self, x: torch.Tensor, hx: Any = None) -> Any:  # type: ignore[override]
        """Same inputs, outputs and weights as nn.GRU."""
        if not _fused_ok(self, x, hx):
            return super().forward(x, hx)
        out, finals = _layers(self, x, _GRULayer)
        return out, torch.stack([h for (h,) in finals])
