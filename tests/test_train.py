"""The trainer on tiny synthetic data: registries, reproducibility, stopping, divergence."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hpsearch import config
from hpsearch.config import ConvBlock, ModelSpec, TrainConfig
from hpsearch.errors import ConfigError, SpecError, UnknownChoiceError
from hpsearch.synthetic import make_dataset
from hpsearch.train import OPTIMIZERS, SCHEDULES, fit, fused_on, prepared_split, resolve_device

FCN = ModelSpec(kind="fcn", hidden=[32])
CNN = ModelSpec(kind="cnn", hidden=[32], convs=[ConvBlock(8, kernel=3, pool="max")] * 2)


@pytest.fixture(scope="module")
def data():
    return make_dataset(n_train=1000, n_test=100, val_size=200, shape=(28, 28), seed=0)


def test_registries_match_config_names():
    assert tuple(OPTIMIZERS) == config.OPTIMIZERS
    assert tuple(SCHEDULES) == config.SCHEDULES


@pytest.mark.parametrize("spec", [FCN, CNN], ids=["fcn", "cnn"])
def test_fit_learns_and_reports_every_epoch(data, spec):
    seen = []
    result = fit(
        spec,
        TrainConfig(epochs=4, batch_size=32, lr=3e-3),
        data,
        device="cpu",
        on_epoch=seen.append,
        eval_test=True,
    )
    assert result.status == "completed"
    assert [e.epoch for e in result.epochs] == [1, 2, 3, 4] == [e.epoch for e in seen]
    assert result.val_acc > 0.5  # chance is 0.1
    assert result.test_acc is not None and result.test_acc > 0.4
    assert all(e.seconds > 0 and e.train_loss > 0 for e in result.epochs)
    assert result.params == sum(p.numel() for p in result.model.parameters())


def test_same_seed_same_run_on_cpu(data):
    cfg = TrainConfig(epochs=2, batch_size=64, seed=7)
    spec = dataclasses.replace(FCN, dropout=0.3)
    a, b = (fit(spec, cfg, data, device="cpu") for _ in range(2))
    assert [e.val_loss for e in a.epochs] == [e.val_loss for e in b.epochs]
    other = fit(spec, dataclasses.replace(cfg, seed=8), data, device="cpu")
    assert [e.val_loss for e in other.epochs] != [e.val_loss for e in a.epochs]


def test_splits_are_converted_once_per_dataset_and_reused_unchanged(data):
    """The trials of a study share one Dataset: the second fit trains on the same tensors."""
    cfg = TrainConfig(epochs=1, batch_size=64, seed=3)
    fresh = make_dataset(n_train=1000, n_test=100, val_size=200, shape=(28, 28), seed=0)
    first = fit(FCN, cfg, fresh, device="cpu", eval_test=True)
    x_train, _ = prepared_split(fresh, "train", torch.device("cpu"))
    assert set(fresh.prepared) == {("train", "cpu"), ("val", "cpu"), ("test", "cpu")}
    second = fit(FCN, cfg, fresh, device="cpu", eval_test=True)
    assert prepared_split(fresh, "train", torch.device("cpu"))[0] is x_train
    assert [e.val_loss for e in second.epochs] == [e.val_loss for e in first.epochs]
    assert second.test_acc == first.test_acc
    expected = (fresh.x_train.float() / 255 - fresh.mean) / fresh.std
    assert torch.equal(x_train, expected)


@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
@pytest.mark.parametrize("schedule", config.SCHEDULES)
def test_every_optimizer_and_schedule_trains(data, optimizer, schedule):
    momentum = 0.9 if optimizer in ("sgd", "rmsprop") else 0.0
    cfg = TrainConfig(
        optimizer=optimizer,
        schedule=schedule,
        lr=1e-2,
        momentum=momentum,
        epochs=2,
        batch_size=64,
        nesterov=optimizer == "sgd",
        l1=1e-6,
        label_smoothing=0.1,
        weight_decay=1e-4,
    )
    result = fit(FCN, cfg, data, device="cpu")
    assert result.status == "completed"
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss * 1.5


@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
def test_fused_kernels_only_where_torch_has_them(optimizer):
    """A fused kernel requested where PyTorch has none fails every trial of that optimizer."""
    params = [torch.nn.Parameter(torch.zeros(3))]
    cfg = TrainConfig(optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    opt = OPTIMIZERS[optimizer](params, cfg, fused_on(optimizer, "cpu"))
    assert bool(opt.defaults.get("fused")) == fused_on(optimizer, "cpu")
    # Adagrad's fused kernel is CPU-only: on CUDA it must fall back, or trials crash there.
    assert fused_on("adagrad", "cuda") is False and fused_on("rmsprop", "cpu") is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
def test_every_optimizer_trains_on_cuda(data, optimizer):
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, epochs=1, batch_size=64)
    assert fit(FCN, cfg, data, device="cuda").status == "completed"


def test_callback_stops_training(data):
    result = fit(FCN, TrainConfig(epochs=5), data, device="cpu", on_epoch=lambda ep: ep.epoch == 2)
    assert result.status == "stopped"
    assert len(result.epochs) == 2


def test_exploding_learning_rate_is_diverged_not_a_crash(data):
    cfg = TrainConfig(optimizer="sgd", lr=1e4, momentum=0.9, epochs=5, batch_size=32)
    result = fit(ModelSpec(kind="fcn", hidden=[64, 64]), cfg, data, device="cpu")
    assert result.status == "diverged"
    assert "non-finite" in result.reason
    assert len(result.epochs) < 5  # stopped at once, not after wasting the remaining epochs


def test_geometry_error_before_training(data):
    bad = ModelSpec(kind="cnn", hidden=[], convs=[ConvBlock(4, kernel=5, padding="valid", pool="max")] * 3)
    with pytest.raises(SpecError, match="conv block 3"):
        fit(bad, TrainConfig(epochs=1), data, device="cpu")


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UnknownChoiceError, match="auto, cpu, cuda, mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_threads_setting(data):
    before = torch.get_num_threads()
    try:
        fit(FCN, TrainConfig(epochs=1), data, device="cpu", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
