"""Built models against the geometry table, an independent FLOP count and the init formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hpsearch import config, models
from hpsearch.config import ConvBlock, ModelSpec
from hpsearch.errors import SpecError, UnknownChoiceError
from hpsearch.geometry import layer_table, summarize
from hpsearch.models import ACTIVATIONS, INITS, PADDINGS, POOLS, build_model
from hpsearch.registry import Registry

# PyTorch warns that an even kernel with padding "same" copies the input; the spec allows it.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

SMALL = (3, 12, 12)
CLASSES = 5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_cnn(**overrides) -> ModelSpec:
    """A CNN that uses every kind of layer: conv, batch norm, pool, dense, dropout."""
    block = overrides.pop("block", ConvBlock(4, 3, pool="max", pool_size=2))
    fields = {"kind": "cnn", "convs": [block], "hidden": [8], "batch_norm": True, "dropout": 0.1}
    return ModelSpec(**{**fields, **overrides})


def check_forward_backward(spec: ModelSpec, input_shape=SMALL, num_classes=CLASSES) -> nn.Module:
    model = build_model(spec, input_shape, num_classes)
    logits = model(torch.randn(4, *input_shape))
    assert logits.shape == (4, num_classes)
    logits.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0
    return model


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_activation(activation):
    check_forward_backward(small_cnn(activation=activation))
    check_forward_backward(ModelSpec(kind="fcn", hidden=[6, 5], activation=activation), (1, 8, 8))


@pytest.mark.parametrize("init", list(INITS))
def test_every_init(init):
    check_forward_backward(small_cnn(init=init))


@pytest.mark.parametrize("pool", list(POOLS))
def test_every_pool(pool):
    model = check_forward_backward(small_cnn(block=ConvBlock(4, 3, pool=pool, pool_size=3, pool_stride=2)))
    assert ("pool1" in dict(model.named_children())) == (pool != "none")


@pytest.mark.parametrize("padding", list(PADDINGS))
def test_every_padding(padding):
    check_forward_backward(small_cnn(block=ConvBlock(4, 3, padding=padding, pool="none")))


SPECS = {
    "fcn": ModelSpec(kind="fcn", hidden=[16, 8]),
    "fcn-0-hidden": ModelSpec(kind="fcn", hidden=[]),
    "fcn-bn-dropout": ModelSpec(kind="fcn", hidden=[16, 8, 4], batch_norm=True, dropout=0.3),
    "cnn-same-max": ModelSpec(kind="cnn", convs=[ConvBlock(4, 3), ConvBlock(6, 5)], hidden=[8]),
    "cnn-bn-avg": ModelSpec(
        kind="cnn", convs=[ConvBlock(4, 3, pool="avg", pool_size=3, pool_stride=1)], batch_norm=True
    ),
    "cnn-valid-stride2": ModelSpec(
        kind="cnn",
        convs=[ConvBlock(5, 3, stride=2, padding="valid", pool="none"), ConvBlock(7, 2, padding="valid")],
        hidden=[],
    ),
    "cnn-even-same-kernel": ModelSpec(kind="cnn", convs=[ConvBlock(3, 4, pool="max", pool_size=4)]),
    "cnn-4-blocks-bn-dropout": ModelSpec(
        kind="cnn",
        convs=[
            ConvBlock(4, 3, pool="none"),
            ConvBlock(4, 3, padding="valid"),
            ConvBlock(6, 3),
            ConvBlock(8, 1),
        ],
        hidden=[12, 6, 4],
        batch_norm=True,
        dropout=0.2,
    ),
}


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("input_shape", [SMALL, (1, 13, 11)])
def test_model_matches_geometry_table(name, input_shape):
    # Same module names, same parameters per layer, and each layer's real output shape.
    spec = SPECS[name]
    table = layer_table(spec, input_shape, CLASSES)
    model = build_model(spec, input_shape, CLASSES)
    children = dict(model.named_children())
    assert list(children) == [row.name for row in table]
    x = torch.randn(2, *input_shape)
    for row in table:
        x = children[row.name](x)
        assert tuple(x.shape[1:]) == row.out_shape, row.name
        assert sum(p.numel() for p in children[row.name].parameters()) == row.params, row.name
    assert sum(p.numel() for p in model.parameters()) == summarize(spec, input_shape, CLASSES).params


def hooked_flops(model: nn.Module, input_shape) -> int:
    """Forward FLOPs per sample from the shapes the layers really produce: 2 * MACs + bias adds."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        outputs = output[0].numel()  # per sample
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = outputs * (module.in_channels // module.groups) * kh * kw
        else:
            macs = outputs * module.in_features
        total += 2 * macs + (outputs if module.bias is not None else 0)

    handles = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", list(SPECS))
def test_flops_match_hooked_count(name):
    model = build_model(SPECS[name], SMALL, CLASSES)
    assert hooked_flops(model, SMALL) == summarize(SPECS[name], SMALL, CLASSES).flops


def test_baseline_cnn_on_fashion_mnist_shape():
    # cnn-000-final: 28 -> 13 -> 5 -> 1x1x120, 112806 parameters (worked out in test_geometry).
    spec = ModelSpec(
        kind="cnn",
        convs=[
            ConvBlock(10, 5, pool="max", pool_size=4, pool_stride=2),
            ConvBlock(32, 5, pool="max", pool_size=4, pool_stride=2),
            ConvBlock(120, 5, padding="valid", pool="none"),
        ],
        hidden=[64],
        activation="elu",
    )
    model = build_model(spec, (1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == 112806
    assert hooked_flops(model, (1, 28, 28)) == 3318082
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_geometry_error_raises_before_any_module_is_built(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a module was constructed before the geometry check")

    spec = ModelSpec(kind="cnn", convs=[ConvBlock(4, 3), ConvBlock(4, 5, padding="valid")])
    monkeypatch.setattr(nn.Module, "__init__", refuse)
    with pytest.raises(SpecError, match="conv block 2: 5x5 kernel"):
        build_model(spec, (1, 6, 6), 10)  # 6 -> max pool 2 -> 3x3: a 5x5 kernel does not fit


def test_orthogonal_init_gives_orthonormal_rows():
    spec = ModelSpec(kind="fcn", hidden=[16], init="orthogonal")
    model = build_model(spec, (1, 4, 4), 3)  # 16 -> 16 (square) -> 3
    w = model.dense1.weight
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    assert torch.allclose(w.T @ w, torch.eye(16), atol=1e-5)
    out = model.output.weight  # 3 x 16: orthonormal rows
    assert torch.allclose(out @ out.T, torch.eye(3), atol=1e-5)


def test_normal_init_std_and_zero_biases():
    spec = ModelSpec(
        kind="cnn", convs=[ConvBlock(64, 5, pool="none")], hidden=[256], init="normal", init_std=0.2
    )
    model = build_model(spec, (16, 4, 4), 10)
    for layer in (model.conv1, model.dense1):  # 64*16*25 = 25600 and 1024*256 weights
        assert layer.weight.mean().abs().item() < 0.01
        assert layer.weight.std().item() == pytest.approx(0.2, rel=0.03)
    for layer in (model.conv1, model.dense1, model.output):
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


@pytest.mark.parametrize(
    ("activation", "gain"),
    [
        ("relu", math.sqrt(2)),
        ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))),
        ("tanh", 5 / 3),
        ("sigmoid", 1.0),
        ("selu", 1.0),  # LeCun normal, as PyTorch recommends for self-normalising nets
        ("elu", math.sqrt(2)),  # no PyTorch gain: falls back to relu
        ("gelu", math.sqrt(2)),
    ],
)
def test_kaiming_init_uses_the_activation_gain(activation, gain):
    # kaiming: std = gain / sqrt(fan_in); uniform bound = gain * sqrt(3 / fan_in)
    spec = ModelSpec(kind="fcn", hidden=[400], activation=activation, init="kaiming_normal")
    w = build_model(spec, (1, 20, 20), 2).dense1.weight  # fan_in 400, 160000 weights
    assert w.std().item() == pytest.approx(gain / math.sqrt(400), rel=0.02)
    conv_spec = ModelSpec(kind="cnn", convs=[ConvBlock(64, 3)], activation=activation, init="kaiming_uniform")
    conv = build_model(conv_spec, (32, 4, 4), 2).conv1.weight  # fan_in 32*9 = 288
    bound = gain * math.sqrt(3 / 288)
    assert conv.abs().max().item() <= bound
    assert conv.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_xavier_init_uses_fan_in_plus_fan_out():
    # xavier: std = sqrt(2 / (fan_in + fan_out)); uniform bound = sqrt(6 / (fan_in + fan_out))
    w = build_model(ModelSpec(kind="fcn", hidden=[300], init="xavier_normal"), (1, 10, 50), 2).dense1.weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / 800), rel=0.02)
    w = build_model(ModelSpec(kind="fcn", hidden=[300], init="xavier_uniform"), (1, 10, 50), 2).dense1.weight
    assert w.abs().max().item() <= math.sqrt(6 / 800)
    assert w.std().item() == pytest.approx(math.sqrt(2 / 800), rel=0.02)


def test_default_init_keeps_pytorch_biases():
    model = build_model(ModelSpec(kind="fcn", hidden=[32]), (1, 8, 8), 4)
    assert model.dense1.bias.abs().sum() > 0
    bound = 1 / math.sqrt(64)  # PyTorch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert model.dense1.weight.abs().max().item() <= bound


def test_registries_match_config_names():
    assert tuple(ACTIVATIONS) == config.ACTIVATIONS
    assert tuple(INITS) == config.INITS
    assert tuple(POOLS) == config.POOLS
    assert tuple(PADDINGS) == config.PADDINGS
    with pytest.raises(AssertionError, match="activation registry"):
        models._check_names(Registry("activation", {"relu": nn.ReLU}), config.ACTIVATIONS)


def test_unknown_activation_lists_the_names():
    with pytest.raises(UnknownChoiceError) as info:
        ACTIVATIONS["swish"]
    assert "relu, leaky_relu, elu, selu, gelu, tanh, sigmoid" in str(info.value)
    with pytest.raises(UnknownChoiceError, match=r"swish.*relu, leaky_relu"):
        build_model(ModelSpec(kind="fcn", activation="swish"), (1, 8, 8), 2)


def test_model_is_a_plain_sequential_that_exports():
    spec = small_cnn()
    model = build_model(spec, SMALL, CLASSES).eval()
    assert type(model) is nn.Sequential
    x = torch.randn(2, *SMALL)
    exported = torch.export.export(model, (x,))
    assert torch.allclose(exported.module()(x), model(x), atol=1e-6)
