"""Contract every forecasting model keeps: shapes, gradients, learning, persistence, causality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from deepfin.errors import NotFittedError
from deepfin.models import FORECAST_MODELS, MODELS, NEURAL_MODELS, build_model, model_config
from deepfin.models.forecasting.baselines import NaiveForecaster
from deepfin.models.forecasting.cnn import CNNForecaster

BATCH, LOOKBACK, N_FEATURES = 5, 12, 3

# every neural model with its defaults, plus the hybrid's one-path ablations; the long path
# alone gets daily steps: a block mean cannot tell the order of two days in one block by design
NEURAL_CASES = [pytest.param(name, {}, id=name) for name in NEURAL_MODELS] + [
    pytest.param("hybrid", {"paths": "short"}, id="hybrid-short"),
    pytest.param("hybrid", {"paths": "long", "long_step": 1}, id="hybrid-long"),
]
TREE_MODELS = [name for name in FORECAST_MODELS if MODELS[name].fit == "trees"]
# the baselines too, so a model added to the registry is checked without editing this file;
# tree models are grown, not built with weights: they keep the contract of their own below
ALL_CASES = NEURAL_CASES + [
    pytest.param(name, {}, id=name)
    for name in FORECAST_MODELS
    if name not in NEURAL_MODELS and name not in TREE_MODELS
]


def make(name: str, params: dict[str, Any], n_outputs: int = 1) -> nn.Module:
    """Build `name` at the test sizes."""
    return build_model(
        name, n_features=N_FEATURES, lookback=LOOKBACK, n_outputs=n_outputs, params=params
    )


def windows(batch: int = BATCH) -> torch.Tensor:
    """Random windows (B, T, F)."""
    return torch.randn(batch, LOOKBACK, N_FEATURES)


@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize(("name", "params"), ALL_CASES)
def test_output_shape_and_dtype(name: str, params: dict[str, Any], n_outputs: int) -> None:
    torch.manual_seed(0)
    out = make(name, params, n_outputs)(windows())
    assert out.shape == (BATCH, n_outputs)
    assert out.dtype == torch.float32


@pytest.mark.parametrize(("name", "params"), NEURAL_CASES)
def test_gradients_reach_every_parameter(name: str, params: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = make(name, params, n_outputs=2)
    model(windows()).pow(2).mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}.{param_name} got no gradient"
        assert param.grad.abs().sum() > 0, f"{name}.{param_name} got an all-zero gradient"


@pytest.mark.parametrize(("name", "params"), NEURAL_CASES)
def test_overfits_one_small_batch(name: str, params: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = make(name, params)
    x, y = windows(16), torch.randn(16, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = nn.functional.mse_loss(model(x), y).item()
    loss = start
    for _ in range(300):
        optimizer.zero_grad()
        batch_loss = nn.functional.mse_loss(model(x), y)
        batch_loss.backward()
        optimizer.step()
        loss = batch_loss.item()
        if loss < 0.05 * start:
            break
    assert loss < 0.05 * start, f"{name}: MSE {start:.4f} -> {loss:.4f}, wanted < 5% of start"


@pytest.mark.parametrize(("name", "params"), ALL_CASES)
def test_safetensors_round_trip_gives_identical_outputs(
    name: str, params: dict[str, Any], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = make(name, params, n_outputs=2).eval()
    if isinstance(model, NaiveForecaster):  # give its buffers something worth saving
        model.set_forecast(constant=torch.tensor([0.5, -1.0]), source_feature=1)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))

    torch.manual_seed(1)  # a different initialisation, so only the loaded weights can match
    config = model_config(model)
    sizes = {key: config.pop(key) for key in ("n_features", "lookback", "n_outputs")}
    rebuilt = build_model(name, **sizes, params=config)
    rebuilt.load_state_dict(load_file(str(path)))
    rebuilt.eval()

    x = windows()
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize(("name", "params"), NEURAL_CASES)
def test_fixed_seed_gives_identical_training_step(name: str, params: dict[str, Any]) -> None:
    def one_step() -> dict[str, torch.Tensor]:
        torch.manual_seed(123)
        model = make(name, params)
        x, y = windows(8), torch.randn(8, 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        return {key: value.detach().clone() for key, value in model.state_dict().items()}

    first, second = one_step(), one_step()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), f"{name}.{key} differs between runs"


@pytest.mark.parametrize(("name", "params"), NEURAL_CASES)
def test_output_reads_the_whole_window(name: str, params: dict[str, Any]) -> None:
    # the oldest step must matter, else the lookback is partly wasted
    torch.manual_seed(0)
    model = make(name, params).eval()
    x = windows()
    perturbed = x.clone()
    perturbed[:, 0, :] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(perturbed))


@pytest.mark.parametrize(("name", "params"), NEURAL_CASES)
def test_output_depends_on_the_order_of_steps(name: str, params: dict[str, Any]) -> None:
    # self-attention without positions would be blind to swapping two older steps
    torch.manual_seed(0)
    model = make(name, params).eval()
    x = windows()
    swapped = x.clone()
    swapped[:, [0, 1], :] = x[:, [1, 0], :]
    with torch.no_grad():
        assert not torch.allclose(model(x), model(swapped))


@pytest.mark.parametrize("step", [0, 5, LOOKBACK - 2])
def test_cnn_features_never_read_the_future(step: int) -> None:
    torch.manual_seed(0)
    model = build_model("cnn", n_features=N_FEATURES, lookback=LOOKBACK, n_outputs=1).eval()
    assert isinstance(model, CNNForecaster)
    x = windows()
    future_changed = x.clone()
    future_changed[:, step + 1 :, :] = torch.randn(BATCH, LOOKBACK - step - 1, N_FEATURES)
    with torch.no_grad():
        before, after = model.sequence_features(x), model.sequence_features(future_changed)
    assert before.shape == (BATCH, 32, LOOKBACK)
    torch.testing.assert_close(before[:, :, : step + 1], after[:, :, : step + 1])
    # and the test can fail: the step right after does see the change
    assert not torch.allclose(before[:, :, step + 1], after[:, :, step + 1])


def test_cnn_receptive_field_is_exact() -> None:
    torch.manual_seed(0)
    params = {"kernel_size": 2, "num_levels": 2}
    model = make("cnn", params).eval()
    assert isinstance(model, CNNForecaster)
    field = model.config.receptive_field  # 1 + 2 * (2 - 1) * (1 + 2) = 7
    assert field == 7
    x = windows()
    inside, outside = x.clone(), x.clone()
    inside[:, LOOKBACK - field, :] += 1.0
    outside[:, LOOKBACK - field - 1, :] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(inside))
        assert torch.equal(model(x), model(outside))


@pytest.mark.parametrize(("name", "params"), ALL_CASES)
def test_a_row_does_not_depend_on_the_other_rows(name: str, params: dict[str, Any]) -> None:
    # the fused kernels split a batch's rows between threads: each row must come out the same
    # alone, in any order, and whatever else shares its batch
    torch.manual_seed(0)
    model = make(name, params).eval()
    batch = windows(48)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            together = model(batch)
            order = torch.randperm(48)
            shuffled = model(batch[order])
            alone = torch.cat([model(batch[i : i + 1]) for i in (0, 17, 47)])
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(shuffled, together[order], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone, together[[0, 17, 47]], rtol=1e-5, atol=1e-6)


def test_the_contract_holds_on_torchs_own_kernels_too(tmp_path: Path) -> None:
    # the fused kernels stand in for nn.LSTM/nn.GRU: the same contract without them
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEEPFIN_FUSED_RNN": "0"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "not torchs_own_kernels"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout


def grown(name: str) -> nn.Module:
    """A tree model grown on windows whose target is a function of their last row."""
    model = make(name, {"n_estimators": 20, "min_child_samples": 5})
    x = windows(200)
    y = x[:, -1, 0] - 0.5 * x[:, -1, 1]
    model.fit(model.rows(x), y.numpy(), seed=0)  # type: ignore[operator]
    return model


@pytest.mark.parametrize("name", TREE_MODELS)
def test_a_tree_model_forecasts_windows_learns_and_round_trips_as_text(name: str) -> None:
    torch.manual_seed(0)
    with pytest.raises(NotFittedError, match="fit"):
        make(name, {})(windows())
    model = grown(name)
    x = windows(64)
    out = model(x)
    assert out.shape == (64, 1) and out.dtype == torch.float32
    target = x[:, -1, 0] - 0.5 * x[:, -1, 1]
    assert torch.corrcoef(torch.stack([out[:, 0], target]))[0, 1] > 0.8
    # rows stand alone, as for every model
    torch.testing.assert_close(model(x[[5]]), out[[5]])
    config = model_config(model)
    sizes = {key: config.pop(key) for key in ("n_features", "lookback", "n_outputs")}
    rebuilt = build_model(name, **sizes, params=config)
    rebuilt.load_text(model.to_text())  # type: ignore[operator]
    assert torch.equal(rebuilt(x), out)
    assert not list(model.parameters())  # nothing for an optimiser: the trees are the model
