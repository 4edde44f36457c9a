"""The one training loop: seeding, learning, early stopping, checkpoints, Ctrl-C, penalties."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from deepfin.data.windows import WindowDataset
from deepfin.errors import RunFolderError
from deepfin.models import build_model
from deepfin.training import (
    History,
    TrainingConfig,
    evaluate_loss,
    fit_model,
    predict_batches,
)
from deepfin.training.checkpoints import CHECKPOINT_STATE, CHECKPOINT_WEIGHTS

LOOKBACK, N_FEATURES, PHI = 5, 2, 0.9
loss_fn = nn.functional.mse_loss


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Run these tiny models on one CPU thread: with more, thread hand-offs dominate (100x)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ar1_windows(
    n_rows: int = 300, *, seed: int = 0, sign: float = 1.0, n_outputs: int = 1
) -> WindowDataset:
    """Windows over an AR(1) series: the target is the next value, PHI x the current one + noise.

    Features (N, 2) are the series and a pure-noise column; `sign=-1` flips the targets so that
    whatever a model learns from sign=+1 data makes it worse here.
    """
    generator = torch.Generator().manual_seed(seed)
    shocks = 0.5 * torch.randn(n_rows + 1, generator=generator)
    series = torch.zeros(n_rows + 1)
    for t in range(1, n_rows + 1):
        series[t] = PHI * series[t - 1] + shocks[t]
    noise = torch.randn(n_rows, generator=generator)
    features = torch.stack([series[:-1], noise], dim=1)  # (N, F)
    targets = (sign * series[1:]).unsqueeze(1).repeat(1, n_outputs)  # (N, O)
    ends = torch.arange(LOOKBACK - 1, n_rows)  # every complete window
    return WindowDataset(features, targets, ends, lookback=LOOKBACK)


def make_model(
    name: str = "lstm", *, seed: int = 0, n_outputs: int = 1, **params: Any
) -> nn.Module:
    """A small model with seeded initial weights."""
    torch.manual_seed(seed)
    return build_model(
        name,
        n_features=N_FEATURES,
        lookback=LOOKBACK,
        n_outputs=n_outputs,
        params={"hidden_size": 8, **params},
    )


def config(**changes: Any) -> TrainingConfig:
    """Fast CPU settings for tests, quiet unless asked."""
    settings: dict[str, Any] = {
        "epochs": 5,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "patience": 0,
        "device": "cpu",
        "progress": False,
    }
    return TrainingConfig(**(settings | changes))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Bitwise equality of two state dicts."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def losses(history: History) -> list[tuple[float, float]]:
    """(train_loss, val_loss) per epoch; the timings are left out."""
    return [(e["train_loss"], e["val_loss"]) for e in history.epochs]


def penalised_norm(model: nn.Module) -> float:
    """Norm of the weight matrices, the parameters the L1/L2 penalties act on."""
    weights = [p.detach().flatten() for n, p in model.named_parameters() if p.ndim > 1]
    assert weights
    return float(torch.cat(weights).norm())


# ------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_same_seed_gives_bitwise_identical_runs_and_another_seed_differs(name: str) -> None:
    train, val = ar1_windows(seed=0), ar1_windows(150, seed=1)
    runs = []
    for seed in (7, 7, 8):
        model = make_model(name, seed=0, dropout=0.2)  # dropout: the seed must cover it too
        history = fit_model(model, train, val, loss_fn=loss_fn, config=config(epochs=3, seed=seed))
        runs.append((model, history))
    (first, h1), (second, h2), (other, h3) = runs
    assert same_weights(first, second)
    assert losses(h1) == losses(h2)
    assert not same_weights(first, other)
    assert losses(h1) != losses(h3)


# -------------------------------------------------------------------------------- learning
def test_learns_the_planted_signal() -> None:
    train, val = ar1_windows(seed=0), ar1_windows(200, seed=1)
    model = make_model()
    history = fit_model(model, train, val, loss_fn=loss_fn, config=config(epochs=15))
    target_variance = float(val.targets[val.ends].var())
    # the best possible MSE is the shock variance, 1 - PHI^2 = 19% of the target's variance
    assert history.best_loss < 0.4 * target_variance
    assert history.best_loss < history.epochs[0]["val_loss"]
    assert evaluate_loss(model, val, loss_fn) == pytest.approx(history.best_loss, abs=1e-6)
    assert history.stopped == "completed"
    assert [e["epoch"] for e in history.epochs] == list(range(1, 16))


def test_without_validation_the_train_loss_decides_and_patience_never_stops() -> None:
    model = make_model()
    history = fit_model(
        model, ar1_windows(), None, loss_fn=loss_fn, config=config(epochs=4, patience=1)
    )
    assert len(history.epochs) == 4
    assert history.stopped == "completed"
    assert all(e["val_loss"] == e["train_loss"] for e in history.epochs)
    assert history.best_loss == min(e["train_loss"] for e in history.epochs)


# -------------------------------------------------------------------------- early stopping
def test_early_stopping_restores_the_best_epoch() -> None:
    # the validation targets are the negated training targets: learning makes them worse
    train, val = ar1_windows(seed=0), ar1_windows(150, seed=1, sign=-1.0)
    model = make_model()
    history = fit_model(model, train, val, loss_fn=loss_fn, config=config(epochs=40, patience=2))
    assert history.stopped == "early_stopping"
    assert len(history.epochs) == history.best_epoch + 2 < 40
    best_val = history.epochs[history.best_epoch - 1]["val_loss"]
    assert history.best_loss == best_val
    assert evaluate_loss(model, val, loss_fn) == pytest.approx(best_val, abs=1e-6)
    # and not the weights of the last epoch, which were worse
    assert history.epochs[-1]["val_loss"] > best_val + 1e-3


def test_a_validation_score_chooses_the_kept_epoch_and_nan_never_wins() -> None:
    train, val = ar1_windows(seed=0), ar1_windows(150, seed=1)
    scores, kept = iter([0.1, 0.5, float("nan"), 0.2, 0.3]), {}

    def score(outputs: torch.Tensor) -> float:
        assert outputs.shape == (len(val), 1)  # the validation outputs of this epoch
        value = next(scores)
        kept[value] = {k: v.clone() for k, v in model.state_dict().items()}
        return value

    model = make_model()
    history = fit_model(model, train, val, loss_fn=loss_fn, config=config(), val_score=score)
    assert (history.selected_by, history.best_epoch, history.best_score) == ("val_score", 2, 0.5)
    assert history.best_loss == history.epochs[1]["val_loss"]
    assert [row["val_score"] for row in history.epochs][1] == 0.5
    assert all(torch.equal(model.state_dict()[k], v) for k, v in kept[0.5].items())


# ---------------------------------------------------------------------- checkpoint + resume
def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    train, val = ar1_windows(seed=0), ar1_windows(150, seed=1)
    straight = make_model(seed=0, dropout=0.2)
    h_straight = fit_model(straight, train, val, loss_fn=loss_fn, config=config(epochs=6))

    first_half = make_model(seed=0, dropout=0.2)
    fit_model(
        first_half, train, val, loss_fn=loss_fn, config=config(epochs=3), checkpoint_dir=tmp_path
    )
    # a fresh model with other initial weights: everything must come from the checkpoint
    resumed = make_model(seed=123, dropout=0.2)
    h_resumed = fit_model(
        resumed,
        train,
        val,
        loss_fn=loss_fn,
        config=config(epochs=6),
        checkpoint_dir=tmp_path,
        resume=True,
    )
    assert losses(h_resumed) == losses(h_straight)
    assert [e["epoch"] for e in h_resumed.epochs] == list(range(1, 7))
    assert (h_resumed.best_epoch, h_resumed.best_loss) == (
        h_straight.best_epoch,
        h_straight.best_loss,
    )
    assert h_resumed.stopped == "completed"
    assert same_weights(resumed, straight)


def test_resume_keeps_counting_epochs_without_improvement(tmp_path: Path) -> None:
    train, val = ar1_windows(seed=0), ar1_windows(150, seed=1, sign=-1.0)
    straight = make_model()
    h_straight = fit_model(
        straight, train, val, loss_fn=loss_fn, config=config(epochs=40, patience=3)
    )
    assert h_straight.stopped == "early_stopping"
    # stop one epoch after the best, so the resumed run inherits one bad epoch
    fit_model(
        make_model(),
        train,
        val,
        loss_fn=loss_fn,
        config=config(epochs=h_straight.best_epoch + 1, patience=3),
        checkpoint_dir=tmp_path,
    )
    resumed = make_model()
    h_resumed = fit_model(
        resumed,
        train,
        val,
        loss_fn=loss_fn,
        config=config(epochs=40, patience=3),
        checkpoint_dir=tmp_path,
        resume=True,
    )
    assert h_resumed.stopped == "early_stopping"
    assert losses(h_resumed) == losses(h_straight)
    assert same_weights(resumed, straight)


def test_resume_without_a_checkpoint_starts_from_scratch(tmp_path: Path) -> None:
    train = ar1_windows()
    plain, fresh = make_model(), make_model()
    h_plain = fit_model(plain, train, None, loss_fn=loss_fn, config=config(epochs=2))
    h_fresh = fit_model(
        fresh,
        train,
        None,
        loss_fn=loss_fn,
        config=config(epochs=2),
        checkpoint_dir=tmp_path / "empty",
        resume=True,
    )
    assert losses(h_fresh) == losses(h_plain)
    assert same_weights(fresh, plain)


def test_checkpoint_files_are_plain_safetensors_and_json(tmp_path: Path) -> None:
    model = make_model()
    val = ar1_windows(150, seed=1)
    history = fit_model(
        model, ar1_windows(), val, loss_fn=loss_fn, config=config(epochs=3), checkpoint_dir=tmp_path
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [CHECKPOINT_WEIGHTS, CHECKPOINT_STATE]
    )
    assert not list(tmp_path.glob("*.partial"))

    raw = (tmp_path / CHECKPOINT_WEIGHTS).read_bytes()
    header_size = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{"  # a JSON header, not a pickle (b"\x80") or a torch zip (b"PK")
    assert json.loads(raw[8 : 8 + header_size])
    tensors = load_file(str(tmp_path / CHECKPOINT_WEIGHTS))
    state = json.loads((tmp_path / CHECKPOINT_STATE).read_text())

    assert state["epoch"] == 3
    assert state["history"]["epochs"] == [dict(e) for e in history.epochs]
    assert state["history"]["best_epoch"] == history.best_epoch
    names = model.state_dict().keys()
    assert {k for k in tensors if k.startswith("model.")} == {f"model.{k}" for k in names}
    assert {k for k in tensors if k.startswith("best.")} == {f"best.{k}" for k in names}
    assert any(k.startswith("optimizer.") and k.endswith(".exp_avg") for k in tensors)
    # the model was left holding the best weights, and those are the ones saved as best
    for name, value in model.state_dict().items():
        assert torch.equal(tensors[f"best.{name}"], value)


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = ar1_windows()
    fit_model(
        make_model(), train, None, loss_fn=loss_fn, config=config(epochs=2), checkpoint_dir=tmp_path
    )
    before = (tmp_path / CHECKPOINT_WEIGHTS).read_bytes()

    def crash_midway(
        tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str] | None = None
    ) -> None:
        Path(filename).write_bytes(b"half a file")  # as if the disk filled up
        raise OSError("disk full")

    monkeypatch.setattr("deepfin.training.checkpoints.save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        fit_model(
            make_model(),
            train,
            None,
            loss_fn=loss_fn,
            config=config(epochs=3),
            checkpoint_dir=tmp_path,
            resume=True,
        )
    assert (tmp_path / CHECKPOINT_WEIGHTS).read_bytes() == before
    assert load_file(str(tmp_path / CHECKPOINT_WEIGHTS))
    assert json.loads((tmp_path / CHECKPOINT_STATE).read_text())["epoch"] == 2


# --------------------------------------------------------------------------------- Ctrl-C
class InterruptOnCall(nn.Module):
    """Wraps a model; its forward raises KeyboardInterrupt on call number `interrupt_call`."""

    def __init__(self, inner: nn.Module, interrupt_call: int) -> None:
        super().__init__()
        self.inner = inner
        self.interrupt_call = interrupt_call
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.interrupt_call:
            raise KeyboardInterrupt
        return self.inner(x)


def test_ctrl_c_returns_the_best_weights_and_leaves_the_checkpoint_intact(tmp_path: Path) -> None:
    train, val = ar1_windows(seed=0), ar1_windows(150, seed=1, sign=-1.0)
    batch_size = 32
    calls_per_epoch = math.ceil(len(train) / batch_size) + 1  # training batches + one val pass
    model = InterruptOnCall(make_model(), interrupt_call=2 * calls_per_epoch + 4)  # in epoch 3
    history = fit_model(
        model,
        train,
        val,
        loss_fn=loss_fn,
        config=config(epochs=10, batch_size=batch_size),
        checkpoint_dir=tmp_path,
    )
    assert history.stopped == "interrupted"
    assert [e["epoch"] for e in history.epochs] == [1, 2]
    best_val = history.epochs[history.best_epoch - 1]["val_loss"]
    assert evaluate_loss(model, val, loss_fn) == pytest.approx(best_val, abs=1e-6)

    assert not list(tmp_path.glob("*.partial"))
    tensors = load_file(str(tmp_path / CHECKPOINT_WEIGHTS))
    state = json.loads((tmp_path / CHECKPOINT_STATE).read_text())
    assert state["epoch"] == 2
    for name, value in model.state_dict().items():
        assert torch.equal(tensors[f"best.{name}"], value)


def test_ctrl_c_in_the_first_epoch_keeps_the_initial_weights() -> None:
    model = InterruptOnCall(make_model(), interrupt_call=3)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit_model(model, ar1_windows(), None, loss_fn=loss_fn, config=config())
    assert history.stopped == "interrupted"
    assert history.epochs == []
    assert history.best_epoch == 0
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------ penalties, clipping, optim
@pytest.mark.parametrize("penalty", [{"l1": 0.01}, {"l2": 0.1}])
def test_weight_penalties_shrink_the_weights(penalty: dict[str, float]) -> None:
    train = ar1_windows()
    plain, penalised = make_model(), make_model()
    fit_model(plain, train, None, loss_fn=loss_fn, config=config(epochs=8))
    fit_model(penalised, train, None, loss_fn=loss_fn, config=config(epochs=8, **penalty))
    assert penalised_norm(penalised) < 0.8 * penalised_norm(plain)


def _gradient_norms_at_each_step(model: nn.Module, settings: TrainingConfig) -> list[float]:
    """Global gradient norm the optimiser sees at every step of one fit_model run."""
    norms: list[float] = []

    def record(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.stack([g.norm() for g in grads]).norm()))

    handle = register_optimizer_step_pre_hook(record)
    try:
        fit_model(model, ar1_windows(), None, loss_fn=loss_fn, config=settings)
    finally:
        handle.remove()
    return norms


def test_grad_clip_bounds_the_gradient_norm_the_optimiser_sees() -> None:
    clip = 0.05
    unclipped = _gradient_norms_at_each_step(make_model(), config(epochs=2, grad_clip=0))
    clipped = _gradient_norms_at_each_step(make_model(), config(epochs=2, grad_clip=clip))
    assert len(clipped) == len(unclipped) == 2 * math.ceil(len(ar1_windows()) / 32)
    assert max(unclipped) > 2 * clip
    assert max(clipped) <= clip * (1 + 1e-4)


def test_adam_and_adamw_both_train_and_differ_under_weight_decay() -> None:
    train = ar1_windows()
    trained = {}
    for optimizer in ("adam", "adamw"):
        model = make_model()
        settings = config(epochs=3, optimizer=optimizer, weight_decay=0.1)
        history = fit_model(model, train, None, loss_fn=loss_fn, config=settings)
        assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
        assert all(torch.isfinite(p).all() for p in model.parameters())
        trained[optimizer] = model
    assert not same_weights(trained["adam"], trained["adamw"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"learning_rate": -0.1}, "learning_rate=-0.1"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"l1": -1.0}, "l1=-1.0"),
        ({"grad_clip": -1.0}, "grad_clip=-1.0"),
        ({"patience": -1}, "patience=-1"),
        ({"optimizer": "sgd"}, r"unknown optimizer 'sgd'.*adam.*adamw"),
        ({"learning_rate": math.inf}, "learning_rate=inf"),
        ({"weight_decay": math.nan}, "weight_decay=nan"),
        ({"grad_clip": math.inf}, "grad_clip=inf"),
        ({"device": "tpu"}, "unknown device 'tpu'; choose auto, cpu, cuda, cuda:N or mps"),
        ({"device": "cuda:x"}, "unknown device 'cuda:x'"),
        ({"warmup_fraction": 1.0}, r"warmup_fraction=1.0.*warmup_fraction in \[0, 1\)"),
        ({"lr_schedule": "cosine"}, r"unknown lr_schedule 'cosine'.*constant.*linear"),
    ],
)
def test_training_config_rejects_bad_settings(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**changes)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_training_config_takes_every_device_torch_names(device: str) -> None:
    assert TrainingConfig(device=device).device == device


def test_training_config_defaults_are_valid() -> None:
    settings = TrainingConfig()
    assert settings.optimizer in ("adam", "adamw")
    assert settings.epochs >= 1 and settings.learning_rate > 0


# ------------------------------------------------------------------------------ failures
def test_non_finite_loss_raises_with_advice() -> None:
    train = ar1_windows()
    train.targets[50, 0] = float("nan")  # one bad target poisons the weights
    with pytest.raises(FloatingPointError, match=r"epoch 1.*lower the learning_rate"):
        fit_model(make_model(), train, None, loss_fn=loss_fn, config=config())


def test_empty_training_set_raises() -> None:
    data = ar1_windows()
    empty = WindowDataset(
        data.features, data.targets, torch.zeros(0, dtype=torch.long), lookback=LOOKBACK
    )
    with pytest.raises(ValueError, match=r"no training examples.*shorter than the lookback"):
        fit_model(make_model(), empty, None, loss_fn=loss_fn, config=config())


# ------------------------------------------------------------------------------ prediction
@pytest.mark.parametrize("start_in_training_mode", [True, False])
def test_predict_batches_runs_in_eval_mode_and_restores_the_mode(
    start_in_training_mode: bool,
) -> None:
    data = ar1_windows(4200, n_outputs=2)  # more windows than one evaluation batch holds
    model = make_model("gru", n_outputs=2, dropout=0.5)
    model.train(start_in_training_mode)
    modes: list[bool] = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))

    forecast = predict_batches(model, data)
    assert forecast.shape == (len(data), 2)
    assert forecast.dtype == torch.float32
    assert not forecast.requires_grad
    assert modes and not any(modes)
    assert model.training is start_in_training_mode
    # eval mode turns dropout off, so the batched result matches one pass over every window
    model.eval()
    with torch.no_grad():
        whole = model(data.inputs(torch.arange(len(data))))
    torch.testing.assert_close(forecast, whole)


def test_evaluate_loss_is_the_loss_over_every_window() -> None:
    data = ar1_windows(200)
    model = make_model()
    expected = loss_fn(predict_batches(model, data), data.targets[data.ends])
    assert evaluate_loss(model, data, loss_fn) == pytest.approx(float(expected), rel=1e-6)


# -------------------------------------------------------------------------------- progress
def test_progress_off_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    fit_model(make_model(), ar1_windows(), None, loss_fn=loss_fn, config=config(epochs=2))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_progress_on_does_not_crash(capsys: pytest.CaptureFixture[str]) -> None:
    val = ar1_windows(150, seed=1)
    history = fit_model(
        make_model(), ar1_windows(), val, loss_fn=loss_fn, config=config(epochs=2, progress=True)
    )
    capsys.readouterr()
    assert history.stopped == "completed"
    assert len(history.epochs) == 2


def test_resume_refuses_a_checkpoint_whose_files_disagree(tmp_path: Path) -> None:
    """Weights of one epoch with the state of another (a crash between the writes) is refused."""
    train, val = ar1_windows(seed=0), ar1_windows(seed=1)
    mse = nn.functional.mse_loss
    fit_model(
        make_model(), train, val, loss_fn=mse, config=config(epochs=2), checkpoint_dir=tmp_path
    )
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    state["epoch"] = 1
    (tmp_path / "checkpoint.json").write_text(json.dumps(state))
    with pytest.raises(RunFolderError, match="inconsistent"):
        fit_model(
            make_model(),
            train,
            val,
            loss_fn=mse,
            config=config(epochs=3),
            checkpoint_dir=tmp_path,
            resume=True,
        )


def test_gradients_in_one_buffer_clip_exactly_as_clip_grad_norm() -> None:
    from deepfin.training.optim import FlatGradients as _FlatGradients

    torch.manual_seed(0)
    model, twin = nn.Linear(5, 3), nn.Linear(5, 3)
    twin.load_state_dict(model.state_dict())
    grads = _FlatGradients(model)
    x = torch.randn(8, 5)
    for max_norm in (0.01, 100.0):  # one that clips, one that does not
        grads.zero()
        twin.zero_grad()
        (model(x) ** 2).sum().backward()
        (twin(x) ** 2).sum().backward()
        grads.clip(max_norm)
        nn.utils.clip_grad_norm_(twin.parameters(), max_norm)
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(ours.grad, theirs.grad)
    assert model.weight.grad.data_ptr() == grads.flat.data_ptr()  # still views of the buffer
    grads.release()
    assert model.weight.grad is None


def test_any_batches_train_in_the_same_loop_rows_and_tuples_of_inputs() -> None:
    # encoded rows (B, F) without fake windows, and inputs that travel as (values, mask)
    from deepfin.data.batches import TensorRows

    class Masked:
        """Token-like inputs with a mask: the model receives both."""

        def __init__(self, values: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor):
            self.values, self.mask, self.targets = values, mask, targets

        def __len__(self) -> int:
            return len(self.values)

        def batch(self, positions: torch.Tensor):
            return (self.values[positions], self.mask[positions]), self.targets[positions]

        def to(self, device: torch.device) -> Masked:
            return Masked(self.values.to(device), self.mask.to(device), self.targets.to(device))

    class MaskedMean(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(1, 1)

        def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            mean = (values * mask).sum(1, keepdim=True) / mask.sum(
                1, keepdim=True
            )  # (B, L) -> (B, 1)
            return self.head(mean)

    torch.manual_seed(0)
    x = torch.randn(512, 3)
    rows = TensorRows(x, 2.0 * x[:, :1] - x[:, 1:2])
    linear = nn.Linear(3, 1)
    fit_model(linear, rows, rows, loss_fn=loss_fn, config=config(epochs=40))
    assert evaluate_loss(linear, rows, loss_fn) < 0.01

    values = torch.randn(512, 6)
    mask = (torch.rand(512, 6) < 0.5).float()
    mask[:, 0] = 1.0
    target = 3.0 * (values * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
    data = Masked(values, mask, target)
    model = MaskedMean()
    fit_model(model, data, data, loss_fn=loss_fn, config=config(epochs=40))
    assert evaluate_loss(model, data, loss_fn) < 0.01


def test_the_rate_warms_up_then_decays_to_zero_and_a_resumed_run_follows_it(
    tmp_path: Path,
) -> None:
    train = ar1_windows(seed=0)
    schedule = {"warmup_fraction": 0.25, "lr_schedule": "linear", "batch_size": 59}
    rates: list[float] = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, *_: rates.append(optimizer.param_groups[0]["lr"])
    )
    try:
        fit_model(
            make_model(seed=0), train, None, loss_fn=loss_fn, config=config(epochs=4, **schedule)
        )
        straight = list(rates)
        rates.clear()
        fit_model(
            make_model(seed=0), train, None, loss_fn=loss_fn,
            config=config(epochs=2, **schedule), checkpoint_dir=tmp_path,
        )  # fmt: skip
        fit_model(
            make_model(seed=0), train, None, loss_fn=loss_fn,
            config=config(epochs=4, **schedule), checkpoint_dir=tmp_path, resume=True,
        )  # fmt: skip
    finally:
        handle.remove()
    steps = len(straight)  # 296 windows in batches of 59: 6 per epoch, 24 in all
    assert steps == 24
    base = config().learning_rate
    assert straight[:6] == pytest.approx([base * k / 6 for k in range(1, 7)])  # warm-up
    assert straight[6] == pytest.approx(base * 18 / 18)
    assert straight[-1] == pytest.approx(base / 18)  # the last step, just above zero
    assert all(a >= b for a, b in itertools.pairwise(straight[5:]))
    # the two-epoch run follows its own schedule; the resumed one picks up the four-epoch one
    assert rates[12:] == pytest.approx(straight[12:])


def test_a_frozen_parameter_is_left_alone_by_the_optimiser() -> None:
    model = make_model(seed=0)
    frozen = next(model.parameters())
    frozen.requires_grad_(False)
    before = frozen.detach().clone()
    fit_model(model, ar1_windows(seed=0), None, loss_fn=loss_fn, config=config(epochs=2))
    assert torch.equal(frozen, before)
