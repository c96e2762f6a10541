"""The trainer: one spec, one dataset, one run. Knows nothing of Optuna.

Speed is the point of this module, because the speed of every search is the
speed of this loop. The hot path therefore:

1. converts each split once to a normalised float32 tensor on the device;
2. draws one permutation per epoch and gathers the whole shuffled split in a
   single indexing op, so each batch is a contiguous slice (a view, no copy);
3. keeps running loss/accuracy sums on the device and checks the loss for
   NaN/inf without a host sync per step on GPUs;
4. evaluates in large batches under ``torch.inference_mode``.

Pruning plugs in through the ``on_epoch`` callback: it sees each epoch's
figures and returns True to stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hpsearch import config
from hpsearch.config import ModelSpec, TrainConfig
from hpsearch.data import Dataset
from hpsearch.errors import ConfigError
from hpsearch.geometry import layer_table
from hpsearch.models import build_model
from hpsearch.registry import Registry

__all__ = [
    "DEVICES",
    "OPTIMIZERS",
    "SCHEDULES",
    "EpochResult",
    "FitResult",
    "evaluate",
    "fit",
    "predict",
    "prepare_inputs",
    "prepared_split",
    "resolve_device",
]

EVAL_BATCH = 4096  # large batches: evaluation has no backward pass to fit in cache
DEVICES = config.DEVICES


# Where PyTorch has a fused (single-kernel) update for each optimizer. Fused kernels update all
# parameters in one pass instead of a chain of foreach ops: about 1.7x faster per step for
# fcn-000-final on CPU. Adagrad's fused kernel is CPU-only; RMSprop has none.
_FUSED_DEVICES = {
    "sgd": {"cpu", "cuda"},
    "adam": {"cpu", "cuda"},
    "adamw": {"cpu", "cuda"},
    "adagrad": {"cpu"},
}


def fused_on(optimizer: str, device_type: str) -> bool:
    """Whether ``optimizer`` gets PyTorch's fused kernel on ``device_type``."""
    return device_type in _FUSED_DEVICES.get(optimizer, ())


def _sgd(params, cfg: TrainConfig, fused: bool):
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        fused=fused or None,
    )


def _rmsprop(params, cfg: TrainConfig, fused: bool):
    # RMSprop has no fused kernel in PyTorch; the foreach implementation is the fast one.
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


# Each entry takes (params, config, fused); ``fused`` comes from :func:`fused_on`.
OPTIMIZERS: Registry[Callable[[Any, TrainConfig, bool], torch.optim.Optimizer]] = Registry(
    "optimizer",
    {
        "sgd": _sgd,
        "adam": lambda p, c, f: torch.optim.Adam(p, lr=c.lr, weight_decay=c.weight_decay, fused=f or None),
        "adamw": lambda p, c, f: torch.optim.AdamW(p, lr=c.lr, weight_decay=c.weight_decay, fused=f or None),
        "rmsprop": _rmsprop,
        "adagrad": lambda p, c, f: torch.optim.Adagrad(
            p, lr=c.lr, weight_decay=c.weight_decay, fused=f or None
        ),
    },
)


def _has_momentum(opt: torch.optim.Optimizer) -> bool:
    """OneCycle also cycles momentum, but only where the optimizer already uses some."""
    return "betas" in opt.defaults or opt.defaults.get("momentum", 0) > 0


# Schedules are stepped once per batch; ``steps`` is the whole run's step count.
SCHEDULES: Registry[Callable[[torch.optim.Optimizer, TrainConfig, int], Any]] = Registry(
    "schedule",
    {
        "none": lambda opt, cfg, steps: None,
        "cosine": lambda opt, cfg, steps: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
        "onecycle": lambda opt, cfg, steps: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=steps, cycle_momentum=_has_momentum(opt)
        ),
    },
)

if tuple(OPTIMIZERS) != config.OPTIMIZERS or tuple(SCHEDULES) != config.SCHEDULES:
    raise ImportError("train registries drifted from the names in hpsearch.config")


@dataclass
class EpochResult:
    """The figures of one finished epoch."""

    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float  # wall time of the epoch, training and validation
    lr: float  # learning rate at the end of the epoch


@dataclass
class FitResult:
    """What a run produced. ``status`` is completed, stopped (by the callback) or diverged."""

    status: str
    epochs: list[EpochResult] = field(default_factory=list)
    reason: str = ""  # why it stopped or diverged
    seconds: float = 0.0
    params: int = 0
    flops: int = 0
    device: str = "cpu"
    test_loss: float | None = None
    test_acc: float | None = None
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def val_acc(self) -> float:
        """Validation accuracy of the last finished epoch (0.0 when none finished)."""
        return self.epochs[-1].val_acc if self.epochs else 0.0

    @property
    def best_val_acc(self) -> float:
        return max((e.val_acc for e in self.epochs), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (everything but the model)."""
        out = {k: v for k, v in asdict(self).items() if k != "model"}
        out["val_acc"] = self.val_acc
        out["best_val_acc"] = self.best_val_acc
        return out


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|mps`` into a device; ``auto`` picks CUDA, then MPS, then CPU."""
    config.check_choice("device", name, DEVICES)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps asked for, but this PyTorch has no MPS backend; use --device cpu")
    return torch.device(name)


def prepare_inputs(x: torch.Tensor, mean: float, std: float, device: torch.device) -> torch.Tensor:
    """uint8 N×C×H×W -> normalised float32 on ``device``, converted once per split."""
    x = x.to(device, non_blocking=True)
    return ((x.float() / 255.0) - mean) / std


def prepared_split(data: Dataset, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``data``'s ``split`` (train, val or test) as prepared inputs and labels on ``device``.

    Converted on first use and kept on the dataset, so the trials of a study (one
    ``fit`` each on the same :class:`Dataset`) do not convert the same images again.
    """
    key = (split, str(device))
    if key not in data.prepared:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        data.prepared[key] = (prepare_inputs(x, data.mean, data.std, device), y.to(device))
    return data.prepared[key]


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on prepared inputs."""
    if len(y) == 0:
        return float("nan"), 0.0
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(y), EVAL_BATCH):
        logits = model(x[i : i + EVAL_BATCH])
        yb = y[i : i + EVAL_BATCH]
        loss += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    return loss.item() / len(y), correct.item() / len(y)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class predictions (int64, on the CPU) for prepared inputs."""
    model.eval()
    return torch.cat([model(x[i : i + EVAL_BATCH]).argmax(1).cpu() for i in range(0, len(x), EVAL_BATCH)])


def _l1_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([w.abs().sum() for w in weights]).sum()


def _train_epoch(model, opt, sched, cfg: TrainConfig, x, y, gen, l1_weights, check_every: int):
    """One pass over the shuffled training split. Returns (loss, acc) or None if it diverged."""
    model.train()
    n = len(y)
    perm = torch.randperm(n, generator=gen, device="cpu").to(x.device)
    xs, ys = x[perm], y[perm]  # one gather per epoch; batches below are views
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for step, i in enumerate(range(0, n, cfg.batch_size), 1):
        xb, yb = xs[i : i + cfg.batch_size], ys[i : i + cfg.batch_size]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
        if l1_weights:
            loss = loss + cfg.l1 * _l1_penalty(l1_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        loss_sum += loss.detach() * len(yb)
        correct += (logits.detach().argmax(1) == yb).sum()
        # A NaN/inf loss poisons every later step: stop at once. On a GPU a check is a
        # host sync, so it runs every few steps; the running sum carries any NaN forward.
        if step % check_every == 0 and not torch.isfinite(loss_sum):
            return None
    if not torch.isfinite(loss_sum):
        return None
    return loss_sum.item() / n, correct.item() / n


def fit(
    spec: ModelSpec,
    train_cfg: TrainConfig,
    data: Dataset,
    *,
    device: str | torch.device = "auto",
    threads: int | None = None,
    on_epoch: Callable[[EpochResult], bool | None] | None = None,
    eval_test: bool = False,
) -> FitResult:
    """Train ``spec`` on ``data`` with ``train_cfg``.

    Args:
        spec: The model to build (validated, geometry checked before any training).
        train_cfg: Optimizer, learning rate, batch size, epochs, seed, ...
        data: In-memory dataset from :func:`hpsearch.data.load_dataset`.
        device: ``auto|cpu|cuda|mps`` or a ``torch.device``.
        threads: torch intra-op threads (None leaves the current setting).
        on_epoch: Called after every epoch; returning True stops training (status ``stopped``).
        eval_test: Also measure test loss/accuracy at the end (never used to choose a model).

    Returns:
        A :class:`FitResult` with per-epoch figures and the trained model.
    """
    train_cfg.validate()
    table = layer_table(spec, data.input_shape, data.num_classes)  # raises SpecError before training
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    torch.manual_seed(train_cfg.seed)  # weight init and dropout
    gen = torch.Generator().manual_seed(train_cfg.seed)  # batch order
    model = build_model(spec, data.input_shape, data.num_classes).to(dev)
    if spec.kind == "cnn":  # oneDNN/cuDNN convolutions run faster in NHWC (1.5x for cnn-003 on CPU)
        model = model.to(memory_format=torch.channels_last)
    x_train, y_train = prepared_split(data, "train", dev)
    x_val, y_val = prepared_split(data, "val", dev)
    opt = OPTIMIZERS[train_cfg.optimizer](
        model.parameters(), train_cfg, fused_on(train_cfg.optimizer, dev.type)
    )
    steps_per_epoch = math.ceil(len(y_train) / train_cfg.batch_size)
    sched = SCHEDULES[train_cfg.schedule](opt, train_cfg, steps_per_epoch * train_cfg.epochs)
    l1_weights = [p for p in model.parameters() if p.dim() > 1] if train_cfg.l1 > 0 else []
    check_every = 1 if dev.type == "cpu" else 32
    result = FitResult(
        status="completed",
        params=sum(i.params for i in table),
        flops=sum(i.flops for i in table),
        device=str(dev),
        model=model,
    )
    for epoch in range(1, train_cfg.epochs + 1):
        t0 = time.perf_counter()
        out = _train_epoch(model, opt, sched, train_cfg, x_train, y_train, gen, l1_weights, check_every)
        if out is None:
            result.status, result.reason = "diverged", f"non-finite training loss in epoch {epoch}"
            break
        val_loss, val_acc = evaluate(model, x_val, y_val)
        if not math.isfinite(val_loss):
            result.status, result.reason = "diverged", f"non-finite validation loss in epoch {epoch}"
            break
        ep = EpochResult(
            epoch, out[0], out[1], val_loss, val_acc, time.perf_counter() - t0, opt.param_groups[0]["lr"]
        )
        result.epochs.append(ep)
        if on_epoch is not None and on_epoch(ep):
            result.status, result.reason = "stopped", f"stopped by callback after epoch {epoch}"
            break
    if eval_test and result.status != "diverged" and data.x_test is not None:
        result.test_loss, result.test_acc = evaluate(model, *prepared_split(data, "test", dev))
    result.seconds = time.perf_counter() - start
    return result
