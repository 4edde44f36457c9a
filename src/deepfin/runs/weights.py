"""Weights of a run folder: the safetensors header checked against the model before it is built.

A config.json can describe a model of any size; building it first and checking the weights
after would let a crafted `hidden_size=40000` allocate gigabytes, or `num_layers=200000` build
for hours. So the model is first built on the "meta" device (shapes, no memory), with at most
as many tensors registered as the weights file holds; its state_dict's names and shapes must
be the header's; and what it would hold besides its weights (buffers rebuilt from the config)
is bounded. Only then is it built for real and the weights copied in.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from torch import nn
from torch.nn.modules import module as torch_module

from deepfin.errors import RunFolderError

# bytes per element of the dtypes safetensors writes
ITEM_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip
# what a model may hold beyond its stored weights: buffers it rebuilds from its config
MAX_DERIVED_BYTES = 256 << 20


@dataclass(frozen=True)
class Weights:
    """A safetensors file read once: its path, bytes, tensor shapes and metadata."""

    path: Path
    data: bytes
    shapes: dict[str, tuple[int, ...]]  # "prefix.name" -> shape, from the header
    sizes: dict[str, int]  # "prefix.name" -> bytes
    metadata: dict[str, str]
    _tensors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the file (parsed once)."""
        if not self._tensors:
            try:
                self._tensors.update(load_tensors(self.data))
            except Exception as error:  # safetensors raises its own error type, or others
                raise RunFolderError(
                    f"{self.path} is not a readable safetensors file ({error}); re-run or "
                    "restore it"
                ) from error
        return self._tensors

    def module(self, prefix: str, build: Callable[[], nn.Module], *, described: str) -> nn.Module:
        """The module `build()` makes, holding the tensors under `prefix.`; in eval mode.

        `described` says which config built it, for the messages (e.g. "model_config of
        config.json"). Nothing is allocated before the shapes agree.
        """
        stored = {
            k[len(prefix) + 1 :]: v for k, v in self.shapes.items() if k.startswith(prefix + ".")
        }
        with _at_most(2 * len(stored) + 16):  # non-persistent buffers register too
            try:
                with torch.device("meta"):
                    skeleton = build()
            except _TooManyTensors:
                raise RunFolderError(
                    f"the {described} describes a model of far more tensors than the "
                    f"{len(stored)} under '{prefix}.' in {self.path}; they do not belong "
                    "together; re-run or restore the run folder"
                ) from None
        self._check_shapes(prefix, stored, skeleton, described)
        total = sum(
            t.numel() * t.element_size() for t in [*skeleton.parameters(), *skeleton.buffers()]
        )
        stored_bytes = sum(v for k, v in self.sizes.items() if k.startswith(prefix + "."))
        if total > stored_bytes + MAX_DERIVED_BYTES:
            raise RunFolderError(
                f"the {described} describes a model of {total / 2**30:.1f} GiB while its "
                f"weights in {self.path} are {stored_bytes / 2**20:.1f} MiB; refusing to build "
                "it; re-run or restore the run folder"
            )
        module = build()
        state = {
            k[len(prefix) + 1 :]: v for k, v in self.tensors().items() if k.startswith(prefix + ".")
        }
        module.load_state_dict(state)
        broken = [name for name, value in state.items() if not torch.isfinite(value).all()]
        if broken:
            raise RunFolderError(
                f"{self.path} holds NaN or infinite weights ({', '.join(broken[:3])}); it would "
                "give NaN forecasts or scores: re-run the training or restore the file"
            )
        module.eval()
        return module

    def _check_shapes(
        self, prefix: str, stored: dict[str, tuple[int, ...]], skeleton: nn.Module, described: str
    ) -> None:
        expected = {name: tuple(value.shape) for name, value in skeleton.state_dict().items()}
        advice = "config.json and the weights do not belong together; re-run or restore them"
        for name, shape in expected.items():
            if name not in stored:
                raise RunFolderError(
                    f"{self.path} lacks tensor {prefix}.{name} that the {described} needs; {advice}"
                )
            if stored[name] != shape:
                raise RunFolderError(
                    f"{self.path}: tensor {prefix}.{name} has shape {list(stored[name])} but "
                    f"the {described} gives {list(shape)}; {advice}"
                )
        extra = sorted(set(stored) - set(expected))
        if extra:
            raise RunFolderError(
                f"{self.path} holds tensor {prefix}.{extra[0]} that the {described} has no "
                f"place for; {advice}"
            )


def parse_weights(path: Path, data: bytes) -> Weights:
    """A safetensors file's header, checked: 8-byte length, JSON, offsets inside the file."""

    def broken(why: str) -> RunFolderError:
        return RunFolderError(
            f"{path} is not a valid safetensors file ({why}); re-run or restore it"
        )

    if len(data) < 8:
        raise broken(f"{len(data)} bytes, truncated")
    length = int.from_bytes(data[:8], "little")
    if length > len(data) - 8:
        raise broken(f"the header claims {length} bytes; the file has {len(data) - 8}")
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, ValueError):
        raise broken("its header does not parse") from None
    if not isinstance(header, dict):
        raise broken("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    shapes: dict[str, tuple[int, ...]] = {}
    sizes: dict[str, int] = {}
    for name, entry in header.items():
        shape, nbytes = _entry(entry)
        if shape is None or entry["data_offsets"][1] > len(data) - 8 - length:
            raise broken(f"tensor {name}: bad or truncated entry")
        shapes[name], sizes[name] = shape, nbytes
    if not isinstance(metadata, dict):
        raise broken("its metadata is not a JSON object")
    return Weights(path, data, shapes, sizes, {str(k): str(v) for k, v in metadata.items()})


def _entry(entry: Any) -> tuple[tuple[int, ...] | None, int]:
    """A header entry's shape and byte count; (None, 0) when it is malformed."""
    if not isinstance(entry, dict) or entry.get("dtype") not in ITEM_SIZES:
        return None, 0
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not isinstance(offsets, list) or len(offsets) != 2:
        return None, 0
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape + offsets):
        return None, 0
    nbytes = math.prod(shape) * ITEM_SIZES[entry["dtype"]]
    if offsets[1] - offsets[0] != nbytes:
        return None, 0
    return tuple(shape), nbytes


class _TooManyTensors(Exception):
    """Raised inside a meta build that registers more tensors than the weights hold."""


@contextmanager
def _at_most(count: int) -> Iterator[None]:
    """Stop a module build in this thread once it registers more than `count` tensors."""
    owner, registered = threading.get_ident(), 0

    def hook(module: nn.Module, name: str, value: Any) -> None:
        nonlocal registered
        if threading.get_ident() == owner:
            registered += 1
            if registered > count:
                raise _TooManyTensors

    handles = [
        torch_module.register_module_parameter_registration_hook(hook),
        torch_module.register_module_buffer_registration_hook(hook),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
