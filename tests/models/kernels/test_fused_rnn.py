"""The fused LSTM/GRU kernels agree with nn.LSTM/nn.GRU, and fall back to them when they must."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from deepfin.models.kernels.fused_rnn import FusedGRU, FusedLSTM, extension

pytestmark = pytest.mark.skipif(extension() is None, reason="no C++ compiler for the kernels")

PAIRS = [(nn.LSTM, FusedLSTM), (nn.GRU, FusedGRU)]
# (batch, time, features, hidden, layers): the reference task, odd sizes that leave partial
# register tiles and row blocks, one row, and a stack
SHAPES = [(32, 30, 1, 50, 1), (33, 7, 5, 17, 1), (1, 4, 2, 3, 1), (9, 12, 6, 16, 3)]


def twins(
    reference: type[nn.RNNBase], fused: type[nn.RNNBase], features: int, hidden: int, layers: int
) -> tuple[nn.RNNBase, nn.RNNBase]:
    torch.manual_seed(0)
    ref = reference(features, hidden, layers, batch_first=True)
    twin = fused(features, hidden, layers, batch_first=True)
    twin.load_state_dict(ref.state_dict())  # same parameter names: checkpoints load as they are
    return ref, twin


def run(module: nn.RNNBase, x: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs and every gradient of a loss that uses the sequence and the final states."""
    x = x.detach().clone().requires_grad_()
    out, state = module(x)
    finals = state if isinstance(state, tuple) else (state,)
    loss = (out * weights).sum() + sum((s * (k + 2)).pow(2).sum() for k, s in enumerate(finals))
    loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return {
        "out": out.detach(),
        "dx": x.grad,
        **grads,
        **{f"final{k}": s for k, s in enumerate(finals)},
    }


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_outputs_and_gradients_match_torch(reference, fused, shape, threads) -> None:
    batch, time, features, hidden, layers = shape
    ref, twin = twins(reference, fused, features, hidden, layers)
    x = torch.randn(batch, time, features)
    weights = torch.randn(batch, time, hidden)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # two threads split the batch's rows between them
    try:
        expected, got = run(ref, x, weights), run(twin, x, weights)
    finally:
        torch.set_num_threads(before)
    for name, value in expected.items():
        scale = value.abs().max().item() + 1e-3
        assert (got[name] - value).abs().max().item() <= 2e-5 * scale + 2e-6, name


@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_training_with_dropout_between_layers_runs_fused(reference, fused) -> None:
    torch.manual_seed(0)
    module = fused(3, 8, 2, batch_first=True, dropout=0.5)
    out, _ = module(torch.randn(4, 6, 3))
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    module.eval()  # no dropout: deterministic, and equal to torch's own
    ref = reference(3, 8, 2, batch_first=True, dropout=0.5).eval()
    ref.load_state_dict(module.state_dict())
    x = torch.randn(4, 6, 3)
    torch.testing.assert_close(module(x)[0], ref(x)[0], atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_calls_the_kernels_do_not_cover_fall_back_to_torch(reference, fused) -> None:
    ref, twin = twins(reference, fused, 3, 8, 1)
    x = torch.randn(4, 6, 3)
    hx = torch.randn(1, 4, 8)
    state = (hx, torch.randn(1, 4, 8)) if reference is nn.LSTM else hx
    torch.testing.assert_close(twin(x, state)[0], ref(x, state)[0])  # an initial state
    torch.testing.assert_close(twin.double()(x.double())[0], ref.double()(x.double())[0])


def test_without_a_compiler_training_falls_back_with_a_warning(tmp_path) -> None:
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "import torch\n"
        "from deepfin.models.kernels.fused_rnn import FusedLSTM, extension\n"
        "assert extension() is None\n"
        "out, _ = FusedLSTM(2, 4, batch_first=True)(torch.randn(3, 5, 2))\n"
        "print(tuple(out.shape))\n"
    )
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "CXX": "/nonexistent/c++"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "(3, 5, 4)" in result.stdout
    assert "fused LSTM/GRU kernels unavailable" in result.stderr
    assert "Install a C++ compiler" in result.stderr


def test_the_switch_turns_the_kernels_off() -> None:
    code = "from deepfin.models.kernels.fused_rnn import extension; print(extension() is None)"
    env = {**os.environ, "DEEPFIN_FUSED_RNN": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "True", result.stderr


@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_a_second_backward_through_the_same_graph_is_refused(reference, fused) -> None:
    module = fused(2, 4, batch_first=True)
    out, _ = module(torch.randn(3, 5, 2))
    loss = out.sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="DEEPFIN_FUSED_RNN=0"):
        loss.backward()


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_a_gradient_shared_with_the_rest_of_the_graph_is_left_intact(reference, fused, batch):
    # time-major use of the output: its gradient is contiguous after the transpose, and
    # autograd hands the same tensor to the other branch of the sum
    ref, twin = twins(reference, fused, 2, 5, 1)
    x, weights, base = torch.randn(batch, 6, 2), torch.randn(6, batch, 5), torch.randn(6, batch, 5)
    grads = []
    for module in (ref, twin):
        scale = torch.ones(6, batch, 5, requires_grad=True)
        shared = base * scale
        out, _ = module(x)
        ((out.transpose(0, 1) + shared) * weights).sum().backward()
        grads.append(scale.grad)
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_second_derivatives_are_refused_not_silently_wrong(reference, fused) -> None:
    x = torch.randn(3, 4, 2, requires_grad=True)
    out, _ = fused(2, 5, batch_first=True)(x)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        grad.pow(2).sum().backward()


@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_packed_sequences_and_in_place_state_edits_behave_as_in_torch(reference, fused) -> None:
    ref, twin = twins(reference, fused, 2, 5, 1)
    x = torch.randn(3, 4, 2)
    packed = nn.utils.rnn.pack_padded_sequence(x, [4, 3, 2], batch_first=True)
    torch.testing.assert_close(twin(packed)[0].data, ref(packed)[0].data)
    out, state = twin(x)
    h_n = state[0] if isinstance(state, tuple) else state
    h_n.detach_()
    out.sum().backward()


@pytest.mark.parametrize("time", [1, 4, 5])  # the no-grad path alternates two cell buffers
@pytest.mark.parametrize(("reference", "fused"), PAIRS)
def test_inference_without_autograd_matches_torch(reference, fused, time) -> None:
    ref, twin = twins(reference, fused, 3, 20, 2)
    x = torch.randn(11, time, 3)
    with torch.no_grad():
        expected, got = ref(x), twin(x)
    torch.testing.assert_close(got[0], expected[0], atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(got[1], expected[1], atol=2e-6, rtol=1e-5)


def test_the_build_is_keyed_to_the_cpu_and_the_compiler(monkeypatch):
    from deepfin.models.kernels import fused_rnn

    first = fused_rnn.machine()
    assert first["cpu"] and first["cpu_flags"] and first["compiler"]
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    other = fused_rnn.machine()
    assert other["compiler"].endswith("not found") and other["compiler"] != first["compiler"]
    fused_rnn.build_directory.cache_clear()
    try:
        name, _ = fused_rnn.build_directory()
        monkeypatch.delenv("CXX")
        fused_rnn.build_directory.cache_clear()
        assert fused_rnn.build_directory()[0] != name  # another compiler, another library
    finally:
        fused_rnn.build_directory.cache_clear()
