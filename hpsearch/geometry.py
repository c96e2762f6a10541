"""Shapes, parameter counts and FLOPs of a :class:`ModelSpec`, by formula (no torch).

:func:`layer_table` walks the layers in exactly the order and with exactly the
names that :func:`hpsearch.models.build_model` gives its ``nn.Sequential``, so
the search space, the constraints and the report can reason about a model
without building one, and an impossible spec fails here, with a reason, before
any module exists.

Conventions:
    * Shapes are per sample: ``(C, H, W)`` for feature maps, ``(features,)``
      after the flatten.
    * Parameters count every learnable tensor: conv and dense weights and
      biases (layers keep their bias even before batch norm) and the batch
      norm weight and bias. Batch norm running statistics are buffers, not
      parameters, and are not counted.
    * FLOPs are forward FLOPs per sample: 2 per multiply-accumulate in conv and
      dense layers (zero padding included, as the layer computes it) plus 1 per
      output element for the bias add. Activations, pooling, batch norm,
      dropout and flatten count 0.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from hpsearch.config import ConvBlock, ModelSpec
from hpsearch.errors import SpecError

__all__ = ["LayerInfo", "Summary", "count_flops", "count_params", "layer_table", "summarize"]


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the model, as :func:`hpsearch.models.build_model` names it.

    Attributes:
        name: Module name in the ``nn.Sequential`` (``"conv1"``, ``"bn1"``,
            ``"act1"``, ``"pool1"``, ``"flatten"``, ``"dense1"``, ``"dense_bn1"``,
            ``"dense_act1"``, ``"dropout1"``, ``"output"``).
        kind: ``"conv"``, ``"batch_norm"``, ``"activation"``, ``"pool"``,
            ``"flatten"``, ``"dense"`` or ``"dropout"`` (the output layer is ``"dense"``).
        out_shape: Output shape per sample.
        params: Learnable parameters in this layer.
        flops: Forward FLOPs per sample (see the module docstring).
        detail: Short human-readable settings, e.g. ``"16 3x3 same"`` or ``"max 4 stride 2"``.
    """

    name: str
    kind: str
    out_shape: tuple[int, ...]
    params: int
    flops: int
    detail: str = ""


class Summary(NamedTuple):
    """Totals over a :func:`layer_table`."""

    params: int
    flops: int


def layer_table(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[LayerInfo]:
    """List every layer of the model with its output shape, parameters and FLOPs.

    Args:
        spec: The model to describe; it is validated first.
        input_shape: One input sample as ``(channels, height, width)``.
        num_classes: Width of the output layer.

    Returns:
        One :class:`LayerInfo` per module of the built ``nn.Sequential``, in order.

    Raises:
        ConfigError: ``spec`` has a bad name or range (from ``spec.validate()``).
        SpecError: The input shape or class count is not positive, or a conv or
            pool window does not fit the feature map that reaches it.
    """
    spec.validate()
    shape, num_classes = _check_input(input_shape, num_classes)
    rows: list[LayerInfo] = []
    for index, block in enumerate(spec.convs, start=1):
        rows += _conv_rows(index, block, shape, spec)
        shape = rows[-1].out_shape
    features = shape[0] * shape[1] * shape[2]
    rows.append(LayerInfo("flatten", "flatten", (features,), 0, 0))
    for index, width in enumerate(spec.hidden, start=1):
        rows += _dense_rows(index, features, width, spec)
        features = width
    rows.append(_dense("output", features, num_classes))
    return rows


def summarize(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> Summary:
    """Total parameters and forward FLOPs per sample (arguments as :func:`layer_table`)."""
    rows = layer_table(spec, input_shape, num_classes)
    return Summary(sum(r.params for r in rows), sum(r.flops for r in rows))


def count_params(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> int:
    """Total learnable parameters (arguments as :func:`layer_table`)."""
    return summarize(spec, input_shape, num_classes).params


def count_flops(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> int:
    """Total forward FLOPs per sample (arguments as :func:`layer_table`)."""
    return summarize(spec, input_shape, num_classes).flops


def _check_input(input_shape: Sequence[int], num_classes: int) -> tuple[tuple[int, int, int], int]:
    """Return the input shape and class count as Python ints, or raise SpecError."""
    shape = tuple(_positive_int(n) for n in input_shape)
    if len(shape) != 3 or None in shape:
        raise SpecError(
            f"input shape must be 3 positive integers (channels, height, width), got {tuple(input_shape)}"
        )
    classes = _positive_int(num_classes)
    if classes is None:
        raise SpecError(f"number of classes must be a positive integer, got {num_classes!r}")
    return shape, classes  # type: ignore[return-value]


def _positive_int(value: object) -> int | None:
    """``value`` as an int if it is a positive integer (numpy integers too, bools not), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None
    return number if number >= 1 else None


def _conv_rows(index: int, block: ConvBlock, shape: tuple[int, ...], spec: ModelSpec) -> list[LayerInfo]:
    """Rows for conv block ``index``: conv -> [batch norm] -> activation -> [pool]."""
    channels, height, width = shape
    k = block.kernel
    if block.padding == "same":  # stride is 1 (ConvBlock.validate): PyTorch keeps H x W
        out_h, out_w = height, width
    else:
        if height < k or width < k:
            raise SpecError(
                f"conv block {index}: {k}x{k} kernel with padding 'valid' needs an input of "
                f"at least {k}x{k}, got {height}x{width}"
            )
        out_h, out_w = (height - k) // block.stride + 1, (width - k) // block.stride + 1
    out = (block.filters, out_h, out_w)
    outputs = block.filters * out_h * out_w
    macs = outputs * channels * k * k
    detail = f"{block.filters} {k}x{k} {block.padding}" + (
        f" stride {block.stride}" if block.stride != 1 else ""
    )
    params = block.filters * channels * k * k + block.filters
    rows = [LayerInfo(f"conv{index}", "conv", out, params, 2 * macs + outputs, detail)]
    if spec.batch_norm:
        rows.append(LayerInfo(f"bn{index}", "batch_norm", out, 2 * block.filters, 0))
    rows.append(LayerInfo(f"act{index}", "activation", out, 0, 0, spec.activation))
    if block.pool != "none":
        rows.append(_pool_row(index, block, out))
    return rows


def _pool_row(index: int, block: ConvBlock, shape: tuple[int, ...]) -> LayerInfo:
    """The pooling row of conv block ``index`` (no padding, floor mode, as PyTorch)."""
    channels, height, width = shape
    size, stride = block.pool_size, block.effective_pool_stride
    detail = f"{block.pool} {size} stride {stride}"
    if height < size or width < size:
        raise SpecError(
            f"conv block {index}: {block.pool} pool {size} with stride {stride} needs at least "
            f"{size}x{size}, got {height}x{width}"
        )
    out = (channels, (height - size) // stride + 1, (width - size) // stride + 1)
    return LayerInfo(f"pool{index}", "pool", out, 0, 0, detail)


def _dense_rows(index: int, in_features: int, width: int, spec: ModelSpec) -> list[LayerInfo]:
    """Rows for hidden dense layer ``index``: linear -> [batch norm] -> activation -> [dropout]."""
    out = (width,)
    rows = [_dense(f"dense{index}", in_features, width)]
    if spec.batch_norm:
        rows.append(LayerInfo(f"dense_bn{index}", "batch_norm", out, 2 * width, 0))
    rows.append(LayerInfo(f"dense_act{index}", "activation", out, 0, 0, spec.activation))
    if spec.dropout > 0:
        rows.append(LayerInfo(f"dropout{index}", "dropout", out, 0, 0, f"p={spec.dropout:g}"))
    return rows


def _dense(name: str, in_features: int, out_features: int) -> LayerInfo:
    """A linear layer with bias: 2 FLOPs per multiply-accumulate plus the bias adds."""
    params = in_features * out_features + out_features
    flops = 2 * in_features * out_features + out_features
    return LayerInfo(name, "dense", (out_features,), params, flops, f"{in_features}->{out_features}")
