"""The contract every image model keeps: shapes, gradients, learning, layout, seeds, batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models import IMAGE_MODELS, build_image_model, model_config
from deepfin.models.vision.chart_cnn import ChartCNN

BATCH = 6
# (channels, height, width): the paper's 5- and 20-day charts, and 8x8 RGB-like images
SHAPES = [(1, 32, 15), (1, 64, 60), (3, 8, 8)]


def make(name: str, shape: tuple[int, int, int], seed: int = 0, **params: object) -> nn.Module:
    torch.manual_seed(seed)
    channels, height, width = shape
    return build_image_model(
        name, in_channels=channels, height=height, width=width, n_classes=3, params=params
    )


def images(shape: tuple[int, int, int], batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, *shape, generator=generator) > 0.8).float()


def cases() -> list[object]:
    return [
        pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape))}")
        for name in IMAGE_MODELS
        for shape in SHAPES
        if not (name == "chart_cnn" and shape[1] < 32)  # three 2x1 pools need some height
    ]


@pytest.mark.parametrize(("name", "shape"), cases())
def test_logits_shape_and_gradients_reach_every_parameter(name, shape) -> None:
    model = make(name, shape)
    logits = model(images(shape))
    assert logits.shape == (BATCH, 3) and logits.dtype == torch.float32
    logits.pow(2).mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}.{param_name}"


@pytest.mark.parametrize(("name", "shape"), cases())
def test_overfits_one_small_batch(name, shape) -> None:
    model = make(name, shape, dropout=0.0)
    x, y = images(shape, 12), torch.arange(12) % 3
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).all(), name


@pytest.mark.parametrize(("name", "shape"), cases())
def test_config_round_trip_and_seed_give_identical_outputs(name, shape) -> None:
    model = make(name, shape).eval()
    config = model_config(model)
    sizes = {key: config.pop(key) for key in ("in_channels", "height", "width", "n_classes")}
    rebuilt = build_image_model(name, **sizes, params=config)
    rebuilt.load_state_dict(model.state_dict())
    x = images(shape, 48)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model(x))
        # a row comes out the same alone as in its batch (batch norm in eval mode)
        torch.testing.assert_close(model(x[7:8]), model(x)[7:8], rtol=1e-5, atol=1e-5)
    assert torch.equal(make(name, shape, seed=3)(x), make(name, shape, seed=3)(x))


def test_the_chart_cnn_has_the_papers_layout_for_each_window() -> None:
    # 5-day charts: 2 blocks of 64 and 128 channels; 20-day: 3 blocks, the first strided (3, 1)
    # and dilated (2, 1); 60-day: 4 blocks, dilated (3, 1); the head reads 2 rows per day column
    for height, width, channels, stride, dilation, flat in [
        (32, 15, [64, 128], 1, 1, 128 * 8 * 15),
        (64, 60, [64, 128, 256], 3, 2, 256 * 2 * 60),
        (96, 180, [64, 128, 256, 512], 3, 3, 512 * 2 * 180),
    ]:
        model = build_image_model(
            "chart_cnn", in_channels=1, height=height, width=width, n_classes=2
        )
        assert isinstance(model, ChartCNN)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert [conv.out_channels for conv in convs] == channels
        assert convs[0].kernel_size == (5, 3)
        assert convs[0].stride == (stride, 1) and convs[0].dilation == (dilation, 1)
        pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
        assert all(pool.kernel_size == (2, 1) for pool in pools)
        slopes = {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)}
        assert slopes == {0.01}
        linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
        assert linear.in_features == flat
        dropout = next(m for m in model.modules() if isinstance(m, nn.Dropout))
        assert dropout.p == 0.5
        with torch.no_grad():
            model.eval()(torch.zeros(2, 1, height, width))  # the sizes chain


def test_xavier_initialisation_bounds_the_weights() -> None:
    model = make("chart_cnn", (1, 64, 60))
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1]
    fan_in, fan_out = 64 * 15, 128 * 15
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(conv.bias) == 0


def test_sizes_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"5 block\(s\) shrink a 16-pixel chart to nothing"):
        build_image_model(
            "chart_cnn", in_channels=1, height=16, width=15, n_classes=2, params={"blocks": 5}
        )
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_image_model("image_cnn", in_channels=1, height=8, width=8, n_classes=1)
    with pytest.raises(ConfigError, match="do not fit 8x8"):
        build_image_model(
            "image_cnn", in_channels=1, height=8, width=8, n_classes=2, params={"blocks": 4}
        )
