"""ModelSpec -> ``nn.Module``, and the registries of the model's categorical choices.

Every categorical field of :class:`~hpsearch.config.ModelSpec` and
:class:`~hpsearch.config.ConvBlock` is a :class:`~hpsearch.registry.Registry`
here; at import each registry is checked against the torch-free name tuples in
:mod:`hpsearch.config`, so the search space and the builder cannot drift apart.

:func:`build_model` returns a plain ``nn.Sequential`` whose module names are
the names in :func:`hpsearch.geometry.layer_table`, so a row of the geometry
table and a module of the model can be matched by name.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from hpsearch import config
from hpsearch.config import ConvBlock, ModelSpec
from hpsearch.geometry import layer_table
from hpsearch.registry import Registry

__all__ = ["ACTIVATIONS", "INITS", "PADDINGS", "POOLS", "build_model", "init_weights"]

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry(
    "activation",
    {
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,  # negative slope 0.01, PyTorch's default
        "elu": nn.ELU,
        "selu": nn.SELU,
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    },
)

_LEAKY_SLOPE = nn.LeakyReLU().negative_slope

# Kaiming gain per activation. SELU uses "linear" (variance 1/fan_in, LeCun
# init): PyTorch's own calculate_gain docs say so for self-normalising nets.
# ELU and GELU have no gain in PyTorch; they are close enough to ReLU.
_KAIMING_NONLINEARITY = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "selu": "linear",
    "sigmoid": "sigmoid",
}


def _kaiming_args(spec: ModelSpec) -> dict[str, object]:
    nonlinearity = _KAIMING_NONLINEARITY.get(spec.activation, "relu")
    slope = _LEAKY_SLOPE if nonlinearity == "leaky_relu" else 0.0
    return {"a": slope, "nonlinearity": nonlinearity}


# Each init fills one weight tensor in place; spec supplies init_std and the activation.
INITS: Registry[Callable[[torch.Tensor, ModelSpec], None]] = Registry(
    "init",
    {
        "default": lambda weight, spec: None,  # keep PyTorch's per-layer initialisation
        "normal": lambda weight, spec: nn.init.normal_(weight, 0.0, spec.init_std),
        "xavier_normal": lambda weight, spec: nn.init.xavier_normal_(weight),
        "xavier_uniform": lambda weight, spec: nn.init.xavier_uniform_(weight),
        "kaiming_normal": lambda weight, spec: nn.init.kaiming_normal_(weight, **_kaiming_args(spec)),
        "kaiming_uniform": lambda weight, spec: nn.init.kaiming_uniform_(weight, **_kaiming_args(spec)),
        "orthogonal": lambda weight, spec: nn.init.orthogonal_(weight),
    },
)

# name -> (pool size, pool stride) -> module, or None for no pooling layer at all.
POOLS: Registry[Callable[[int, int], nn.Module | None]] = Registry(
    "pooling",
    {
        "max": lambda size, stride: nn.MaxPool2d(size, stride),
        "avg": lambda size, stride: nn.AvgPool2d(size, stride),
        "none": lambda size, stride: None,
    },
)

# name -> the ``padding`` argument of nn.Conv2d.
PADDINGS: Registry[str | int] = Registry("padding", {"same": "same", "valid": 0})


def _check_names(registry: Registry, names: tuple[str, ...]) -> None:
    """Raise AssertionError unless ``registry`` holds exactly ``names``, in order."""
    if tuple(registry) != names:
        raise AssertionError(
            f"{registry.kind} registry {tuple(registry)} does not match hpsearch.config {names}"
        )


_check_names(ACTIVATIONS, config.ACTIVATIONS)
_check_names(INITS, config.INITS)
_check_names(POOLS, config.POOLS)
_check_names(PADDINGS, config.PADDINGS)


def build_model(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> nn.Sequential:
    """Build the classifier a spec describes.

    FCN: flatten -> [linear -> (batch norm) -> activation -> (dropout)] per
    hidden width -> linear output. CNN: per conv block conv -> (batch norm) ->
    activation -> (pool), then flatten and the same dense stack.

    Args:
        spec: The model to build.
        input_shape: One input sample as ``(channels, height, width)``.
        num_classes: Width of the output layer.

    Returns:
        An ``nn.Sequential`` mapping ``(batch, C, H, W)`` to logits
        ``(batch, num_classes)``; its module names are those of
        :func:`hpsearch.geometry.layer_table`.

    Raises:
        ConfigError: ``spec`` has a bad name or range.
        SpecError: The geometry cannot work on ``input_shape`` (raised before
            any module is constructed).
    """
    table = layer_table(spec, input_shape, num_classes)
    layers: list[tuple[str, nn.Module]] = []
    channels = int(input_shape[0])
    for index, block in enumerate(spec.convs, start=1):
        layers += _conv_block(index, block, channels, spec)
        channels = block.filters
    layers.append(("flatten", nn.Flatten()))
    features = next(row.out_shape[0] for row in table if row.name == "flatten")
    for index, width in enumerate(spec.hidden, start=1):
        layers += _dense_layer(index, features, width, spec)
        features = width
    layers.append(("output", nn.Linear(features, num_classes)))
    model = nn.Sequential(OrderedDict(layers))
    init_weights(model, spec)
    return model


def init_weights(model: nn.Module, spec: ModelSpec) -> None:
    """Apply ``spec.init`` to every Conv2d/Linear weight and zero their biases.

    ``init="default"`` leaves PyTorch's initialisation (biases included) untouched.
    """
    if spec.init == "default":
        return
    init = INITS[spec.init]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                init(module.weight, spec)
                if module.bias is not None:
                    module.bias.zero_()


def _conv_block(index: int, block: ConvBlock, channels: int, spec: ModelSpec) -> list[tuple[str, nn.Module]]:
    """conv -> [batch norm] -> activation -> [pool], named as in the geometry table."""
    conv = nn.Conv2d(channels, block.filters, block.kernel, block.stride, PADDINGS[block.padding])
    layers: list[tuple[str, nn.Module]] = [(f"conv{index}", conv)]
    if spec.batch_norm:
        layers.append((f"bn{index}", nn.BatchNorm2d(block.filters)))
    layers.append((f"act{index}", ACTIVATIONS[spec.activation]()))
    pool = POOLS[block.pool](block.pool_size, block.effective_pool_stride)
    if pool is not None:
        layers.append((f"pool{index}", pool))
    return layers


def _dense_layer(index: int, in_features: int, width: int, spec: ModelSpec) -> list[tuple[str, nn.Module]]:
    """linear -> [batch norm] -> activation -> [dropout], named as in the geometry table."""
    layers: list[tuple[str, nn.Module]] = [(f"dense{index}", nn.Linear(in_features, width))]
    if spec.batch_norm:
        layers.append((f"dense_bn{index}", nn.BatchNorm1d(width)))
    layers.append((f"dense_act{index}", ACTIVATIONS[spec.activation]()))
    if spec.dropout > 0:
        layers.append((f"dropout{index}", nn.Dropout(spec.dropout)))
    return layers
