"""Geometry against counts worked out by hand (no torch needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hpsearch.config import ConvBlock, ModelSpec
from hpsearch.errors import ConfigError, SpecError
from hpsearch.geometry import LayerInfo, count_flops, count_params, layer_table, summarize

MNIST = (1, 28, 28)


def fcn_000_final() -> ModelSpec:
    return ModelSpec(kind="fcn", hidden=[400, 400, 300, 100])


def cnn_003() -> ModelSpec:
    return ModelSpec(
        kind="cnn",
        convs=[
            ConvBlock(16, 3, padding="same", pool="avg", pool_size=2),
            ConvBlock(32, 3, padding="same", pool="avg", pool_size=2),
            ConvBlock(64, 3, padding="same", pool="none"),
        ],
        hidden=[64],
    )


def cnn_000_final() -> ModelSpec:
    return ModelSpec(
        kind="cnn",
        convs=[
            ConvBlock(10, 5, padding="same", pool="max", pool_size=4, pool_stride=2),
            ConvBlock(32, 5, padding="same", pool="max", pool_size=4, pool_stride=2),
            ConvBlock(120, 5, padding="valid", pool="none"),
        ],
        hidden=[64],
        activation="elu",
    )


def by_name(rows: list[LayerInfo]) -> dict[str, LayerInfo]:
    return {row.name: row for row in rows}


def test_fcn_000_final_by_hand():
    # Parameters, weights + biases per dense layer:
    #   784*400 + 400 = 314000;  400*400 + 400 = 160400;  400*300 + 300 = 120300
    #   300*100 + 100 =  30100;  100*10  + 10  =   1010         total 625810
    # FLOPs: multiply-accumulates 313600 + 160000 + 120000 + 30000 + 1000 = 624600,
    #   2 * 624600 = 1249200, plus bias adds 400 + 400 + 300 + 100 + 10 = 1210  -> 1250410
    rows = layer_table(fcn_000_final(), MNIST, 10)
    assert [r.name for r in rows] == [
        "flatten",
        "dense1",
        "dense_act1",
        "dense2",
        "dense_act2",
        "dense3",
        "dense_act3",
        "dense4",
        "dense_act4",
        "output",
    ]
    assert [r.params for r in rows if r.kind == "dense"] == [314000, 160400, 120300, 30100, 1010]
    assert by_name(rows)["flatten"].out_shape == (784,)
    assert by_name(rows)["output"].out_shape == (10,)
    assert summarize(fcn_000_final(), MNIST, 10) == (625810, 1250410)
    assert count_params(fcn_000_final(), MNIST, 10) == 625810
    assert count_flops(fcn_000_final(), MNIST, 10) == 1250410


def test_cnn_003_by_hand():
    # conv1  16 3x3 same on 1x28x28: params 16*1*9 + 16 = 160; out 16x28x28 = 12544
    #        MACs 12544 * 1*9 = 112896 -> FLOPs 2*112896 + 12544 = 238336;  avgpool 2 -> 16x14x14
    # conv2  32 3x3 same: params 32*16*9 + 32 = 4640; out 32x14x14 = 6272
    #        MACs 6272 * 16*9 = 903168 -> FLOPs 1806336 + 6272 = 1812608;   avgpool 2 -> 32x7x7
    # conv3  64 3x3 same: params 64*32*9 + 64 = 18496; out 64x7x7 = 3136
    #        MACs 3136 * 32*9 = 903168 -> FLOPs 1806336 + 3136 = 1809472;   no pool, flatten 3136
    # dense1 3136 -> 64: params 200704 + 64 = 200768; FLOPs 2*200704 + 64 = 401472
    # output 64 -> 10:   params 640 + 10 = 650;       FLOPs 2*640 + 10 = 1290
    # totals: params 224714, FLOPs 4263178
    rows = by_name(layer_table(cnn_003(), MNIST, 10))
    assert rows["conv1"].out_shape == (16, 28, 28)
    assert rows["pool1"].out_shape == (16, 14, 14)
    assert rows["conv2"].out_shape == (32, 14, 14)
    assert rows["pool2"].out_shape == (32, 7, 7)
    assert rows["act3"].out_shape == (64, 7, 7)
    assert "pool3" not in rows
    assert rows["flatten"].out_shape == (3136,)
    assert [rows[n].params for n in ("conv1", "conv2", "conv3", "dense1", "output")] == [
        160,
        4640,
        18496,
        200768,
        650,
    ]
    assert [rows[n].flops for n in ("conv1", "conv2", "conv3", "dense1", "output")] == [
        238336,
        1812608,
        1809472,
        401472,
        1290,
    ]
    assert summarize(cnn_003(), MNIST, 10) == (224714, 4263178)


def test_cnn_000_final_by_hand():
    # conv1  10 5x5 same: params 10*25 + 10 = 260; out 10x28x28 = 7840
    #        MACs 7840*25 = 196000 -> FLOPs 392000 + 7840 = 399840
    # pool1  max 4 stride 2: (28 - 4)//2 + 1 = 13 -> 10x13x13
    # conv2  32 5x5 same: params 32*10*25 + 32 = 8032; out 32x13x13 = 5408
    #        MACs 5408*250 = 1352000 -> FLOPs 2704000 + 5408 = 2709408
    # pool2  max 4 stride 2: (13 - 4)//2 + 1 = 5 -> 32x5x5
    # conv3  120 5x5 valid: (5 - 5)//1 + 1 = 1 -> 120x1x1; params 120*32*25 + 120 = 96120
    #        MACs 120*800 = 96000 -> FLOPs 192000 + 120 = 192120
    # dense1 120 -> 64: params 7680 + 64 = 7744; FLOPs 15360 + 64 = 15424
    # output 64 -> 10:  params 650; FLOPs 1290
    # totals: params 112806, FLOPs 3318082
    rows = by_name(layer_table(cnn_000_final(), MNIST, 10))
    assert rows["conv1"].out_shape == (10, 28, 28)
    assert rows["pool1"].out_shape == (10, 13, 13)
    assert rows["conv2"].out_shape == (32, 13, 13)
    assert rows["pool2"].out_shape == (32, 5, 5)
    assert rows["conv3"].out_shape == (120, 1, 1)
    assert rows["flatten"].out_shape == (120,)
    assert [rows[n].params for n in ("conv1", "conv2", "conv3", "dense1", "output")] == [
        260,
        8032,
        96120,
        7744,
        650,
    ]
    assert [rows[n].flops for n in ("conv1", "conv2", "conv3", "dense1", "output")] == [
        399840,
        2709408,
        192120,
        15424,
        1290,
    ]
    assert summarize(cnn_000_final(), MNIST, 10) == (112806, 3318082)
    assert rows["pool1"].detail == "max 4 stride 2"


def test_batch_norm_and_dropout_rows():
    # FCN 784 -> 32 -> 10 with batch norm and dropout:
    #   dense1 784*32 + 32 = 25120; dense_bn1 weight + bias 2*32 = 64 (running stats not counted);
    #   output 32*10 + 10 = 330   -> 25514 parameters.
    # FLOPs: 2*784*32 + 32 = 50208; output 2*320 + 10 = 650 -> 50858 (batch norm counts 0).
    spec = ModelSpec(kind="fcn", hidden=[32], batch_norm=True, dropout=0.25)
    rows = layer_table(spec, MNIST, 10)
    assert [(r.name, r.kind) for r in rows] == [
        ("flatten", "flatten"),
        ("dense1", "dense"),
        ("dense_bn1", "batch_norm"),
        ("dense_act1", "activation"),
        ("dropout1", "dropout"),
        ("output", "dense"),
    ]
    assert summarize(spec, MNIST, 10) == (25514, 50858)


def test_conv_batch_norm_and_valid_stride_2():
    # 3x12x12 input; conv 8 3x3 valid stride 2: (12 - 3)//2 + 1 = 5 -> 8x5x5
    #   params 8*3*9 + 8 = 224; bn1 2*8 = 16; MACs 200*27 = 5400 -> FLOPs 10800 + 200 = 11000
    # maxpool 2 (stride 2): (5 - 2)//2 + 1 = 2 -> 8x2x2, flatten 32
    # output 32 -> 4: params 132; FLOPs 256 + 4 = 260  -> totals (372, 11260)
    block = ConvBlock(8, 3, stride=2, padding="valid", pool="max", pool_size=2)
    spec = ModelSpec(kind="cnn", convs=[block], hidden=[], batch_norm=True)
    rows = by_name(layer_table(spec, (3, 12, 12), 4))
    assert list(rows) == ["conv1", "bn1", "act1", "pool1", "flatten", "output"]
    assert rows["conv1"].out_shape == (8, 5, 5)
    assert rows["bn1"].params == 16
    assert rows["pool1"].out_shape == (8, 2, 2)
    assert summarize(spec, (3, 12, 12), 4) == (372, 11260)


def test_non_square_input_and_overlapping_pool():
    # 2x10x7, conv 3 3x3 valid -> 3x8x5, avgpool 3 stride 1 -> 3x6x3
    spec = ModelSpec(
        kind="cnn", convs=[ConvBlock(3, 3, padding="valid", pool="avg", pool_size=3, pool_stride=1)]
    )
    rows = by_name(layer_table(spec, (2, 10, 7), 2))
    assert rows["conv1"].out_shape == (3, 8, 5)
    assert rows["pool1"].out_shape == (3, 6, 3)


def test_fcn_without_hidden_layers_is_logistic_regression():
    # 784*10 + 10 = 7850 parameters; 2*7840 + 10 = 15690 FLOPs
    rows = layer_table(ModelSpec(kind="fcn", hidden=[]), MNIST, 10)
    assert [r.name for r in rows] == ["flatten", "output"]
    assert summarize(ModelSpec(kind="fcn", hidden=[]), MNIST, 10) == (7850, 15690)


def test_valid_kernel_too_big_names_block_and_sizes():
    # 28 -> same 3x3: 28 -> max 4 (stride 4): 7 -> valid 5x5: 3 -> block 3 needs 5x5, got 3x3
    spec = ModelSpec(
        kind="cnn",
        convs=[
            ConvBlock(4, 3, pool="max", pool_size=4),
            ConvBlock(4, 5, padding="valid", pool="none"),
            ConvBlock(4, 5, padding="valid", pool="none"),
        ],
    )
    with pytest.raises(SpecError) as info:
        layer_table(spec, MNIST, 10)
    assert str(info.value) == (
        "conv block 3: 5x5 kernel with padding 'valid' needs an input of at least 5x5, got 3x3"
    )


def test_pool_too_big_names_block_and_sizes():
    # 6 -> same 3x3: 6 -> max 4 stride 2: (6 - 4)//2 + 1 = 2 -> block 2 pool needs 4x4, got 2x2
    spec = ModelSpec(
        kind="cnn",
        convs=[
            ConvBlock(4, 3, pool="max", pool_size=4, pool_stride=2),
            ConvBlock(4, 3, pool="max", pool_size=4, pool_stride=2),
        ],
    )
    with pytest.raises(SpecError) as info:
        layer_table(spec, (1, 6, 6), 10)
    assert str(info.value) == "conv block 2: max pool 4 with stride 2 needs at least 4x4, got 2x2"


def test_smallest_fitting_map_is_1x1_and_one_less_fails():
    # 1x4x5: conv 2 3x3 valid -> 2x3, avgpool 2 -> 1x1 (floor((2-2)/2)+1 = 1, floor((3-2)/2)+1 = 1)
    spec = ModelSpec(kind="cnn", convs=[ConvBlock(2, 3, padding="valid", pool="avg", pool_size=2)])
    assert by_name(layer_table(spec, (1, 4, 5), 3))["pool1"].out_shape == (2, 1, 1)
    # 1x3x5: conv -> 1x3, and the pool no longer fits instead of giving a 0x1 map
    with pytest.raises(
        SpecError, match=r"^conv block 1: avg pool 2 with stride 2 needs at least 2x2, got 1x3$"
    ):
        layer_table(spec, (1, 3, 5), 3)


def test_bad_input_shape_and_classes():
    spec = ModelSpec(kind="fcn", hidden=[])
    for shape in [(28, 28), (1, 0, 28), (1, 28.0, 28), (True, 28, 28), (1, 28, 28, 1)]:
        with pytest.raises(SpecError, match="input shape"):
            layer_table(spec, shape, 10)
    with pytest.raises(SpecError, match="number of classes"):
        layer_table(spec, MNIST, 0)


def test_spec_is_validated_first():
    with pytest.raises(ConfigError, match="padding 'same' needs stride 1"):
        layer_table(ModelSpec(kind="cnn", convs=[ConvBlock(stride=2)]), MNIST, 10)


def test_layer_names_are_unique():
    spec = cnn_000_final()
    spec.batch_norm, spec.dropout, spec.hidden = True, 0.5, [32, 16]
    names = [r.name for r in layer_table(spec, MNIST, 10)]
    assert len(names) == len(set(names))


def test_geometry_does_not_import_torch():
    code = "import sys, hpsearch.geometry; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_integer_like_shapes_are_accepted_as_ints():
    np = pytest.importorskip("numpy")
    rows = layer_table(cnn_003(), tuple(np.array(MNIST)), np.int64(10))
    assert rows[-1].out_shape == (10,)
    assert all(type(n) is int for row in rows for n in row.out_shape)
