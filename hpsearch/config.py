"""Plain, JSON-serialisable configuration dataclasses (standard library only).

A :class:`ModelSpec` says what network to build, a :class:`TrainConfig` how to
train it, a :class:`DataConfig` what data to use. They round-trip through
``to_dict``/``from_dict`` so studies, spec files and exported models all store
the same thing. The names of every categorical choice live here as tuples so
that modules without torch (``space``, ``report``) can use them; the torch
registries in ``models`` and ``train`` are checked against them at import.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.errors import ConfigError, UnknownChoiceError

__all__ = [
    "ACTIVATIONS",
    "DEVICES",
    "INITS",
    "MODEL_KINDS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "PADDINGS",
    "POOLS",
    "SCHEDULES",
    "ConvBlock",
    "DataConfig",
    "ModelSpec",
    "SearchConfig",
    "TrainConfig",
    "check_choice",
    "load_spec_file",
]

MODEL_KINDS = ("fcn", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid")
INITS = (
    "default",
    "normal",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "orthogonal",
)
POOLS = ("max", "avg", "none")
PADDINGS = ("same", "valid")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")

MAX_FCN_HIDDEN = 8
MAX_CONV_BLOCKS = 4
MAX_CNN_DENSE = 3


def check_choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise with the valid names."""
    if value not in choices:
        raise UnknownChoiceError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
    return value


def _from_dict(cls, data: dict[str, Any], what: str):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys by name."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown {what} field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(names))}"
        )
    return cls(**data)


def _positive_int(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")


@dataclass
class ConvBlock:
    """One convolution block: conv -> [batch norm] -> activation -> [pool]."""

    filters: int = 32
    kernel: int = 3
    stride: int = 1
    padding: str = "same"  # "same" keeps H x W at stride 1; "valid" shrinks by kernel - 1
    pool: str = "max"  # max | avg | none
    pool_size: int = 2
    pool_stride: int | None = None  # None means pool_size (non-overlapping)

    def validate(self) -> ConvBlock:
        for name in ("filters", "kernel", "stride", "pool_size"):
            _positive_int(f"conv {name}", getattr(self, name))
        if self.pool_stride is not None:
            _positive_int("conv pool_stride", self.pool_stride)
        check_choice("padding", self.padding, PADDINGS)
        check_choice("pooling", self.pool, POOLS)
        if self.padding == "same" and self.stride != 1:
            # PyTorch only supports padding="same" at stride 1.
            raise ConfigError("padding 'same' needs stride 1; use padding 'valid' with stride > 1")
        return self

    @property
    def effective_pool_stride(self) -> int:
        return self.pool_stride if self.pool_stride is not None else self.pool_size


@dataclass
class ModelSpec:
    """What network to build. Input shape and class count come from the data.

    For ``kind="fcn"``, ``hidden`` are the hidden-layer widths (0-8 layers).
    For ``kind="cnn"``, ``convs`` are 1-4 conv blocks and ``hidden`` the 0-3
    dense layers after them. The output layer is always added.
    """

    kind: str = "fcn"
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    convs: list[ConvBlock] = field(default_factory=list)
    activation: str = "relu"
    dropout: float = 0.0  # after each hidden dense layer's activation
    batch_norm: bool = False  # after each conv / hidden dense layer, before the activation
    init: str = "default"  # "default" keeps PyTorch's own initialisation
    init_std: float = 0.05  # standard deviation for init="normal" only

    def validate(self) -> ModelSpec:
        """Check names and ranges (not geometry: that needs the input shape)."""
        check_choice("model kind", self.kind, MODEL_KINDS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("init", self.init, INITS)
        for i, width in enumerate(self.hidden):
            _positive_int(f"hidden layer {i + 1} width", width)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.init_std > 0:
            raise ConfigError(f"init_std must be positive, got {self.init_std}")
        if self.kind == "fcn":
            if self.convs:
                raise ConfigError("an fcn spec has no convs; use kind 'cnn'")
            if len(self.hidden) > MAX_FCN_HIDDEN:
                raise ConfigError(f"an fcn has 0-{MAX_FCN_HIDDEN} hidden layers, got {len(self.hidden)}")
        else:
            if not 1 <= len(self.convs) <= MAX_CONV_BLOCKS:
                raise ConfigError(f"a cnn has 1-{MAX_CONV_BLOCKS} conv blocks, got {len(self.convs)}")
            if len(self.hidden) > MAX_CNN_DENSE:
                raise ConfigError(f"a cnn has 0-{MAX_CNN_DENSE} dense layers, got {len(self.hidden)}")
            for block in self.convs:
                block.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        data = dict(data)
        convs = data.pop("convs", [])
        spec = _from_dict(cls, data, "model spec")
        spec.convs = [
            c if isinstance(c, ConvBlock) else _from_dict(ConvBlock, c, "conv block") for c in convs
        ]
        spec.hidden = list(spec.hidden)
        return spec.validate()


@dataclass
class TrainConfig:
    """How to train a model."""

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0  # sgd and rmsprop only
    nesterov: bool = False  # sgd only; needs momentum > 0
    weight_decay: float = 0.0  # L2, passed to the optimizer
    l1: float = 0.0  # L1 penalty on weights, added to the loss
    batch_size: int = 128
    epochs: int = 10
    label_smoothing: float = 0.0
    schedule: str = "none"  # none | cosine | onecycle (stepped per batch)
    seed: int = 0

    def validate(self) -> TrainConfig:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        _positive_int("batch size", self.batch_size)
        _positive_int("epochs", self.epochs)
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        for name in ("momentum", "weight_decay", "l1"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigError("nesterov needs optimizer 'sgd' with momentum > 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data, "training config").validate()


@dataclass
class DataConfig:
    """Which data to train on and how to split it."""

    dataset: str = "fashion-mnist"  # a registered name, or a path to a .npz file
    data_dir: str | None = None  # None: $HPSEARCH_DATA_DIR, else the per-user cache
    val_size: int = 5000  # images held out of train, stratified
    split_seed: int = 0  # seeds the validation split, independent of the training seed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        return _from_dict(cls, data, "data config")


def load_spec_file(path: str | Path) -> tuple[ModelSpec, TrainConfig | None]:
    """Read a JSON spec file.

    The file is either a model spec alone, or ``{"model": {...}, "train": {...}}``.

    Returns:
        The model spec and the training config (``None`` when the file has none).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"spec file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"spec file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and "model" in data:
        extra = sorted(set(data) - {"model", "train"})
        if extra:
            raise ConfigError(f"spec file {path}: unknown top-level key(s) {', '.join(extra)}")
        train = TrainConfig.from_dict(data["train"]) if "train" in data else None
        return ModelSpec.from_dict(data["model"]), train
    return ModelSpec.from_dict(data), None


OBJECTIVES = ("accuracy", "params", "flops", "latency")


@dataclass
class SearchConfig:
    """One ``hpsearch optimize`` run. The parts that define the search are stored on the study."""

    model: str = "cnn"  # fcn | cnn
    trials: int = 100  # trials to add in this run (COMPLETE + PRUNED)
    epochs: int = 10  # per trial; pruning decides how many are actually trained
    data: DataConfig = field(default_factory=DataConfig)
    storage: str | None = None  # None: sqlite:///studies/hpsearch.db under the current directory
    study_name: str | None = None  # None: "<model>-<dataset>"
    sampler: str = "tpe"
    pruner: str = "sha"  # chosen by measurement: benchmarks/bench_search.py part (b), see the README
    seed: int | None = None  # sampler seed; trial seeds derive from it and the trial number
    jobs: int = 1  # worker processes on this machine
    timeout: float | None = None  # seconds for this run
    space_file: str | None = None  # TOML overrides of the default space
    enqueue_baselines: bool = False
    objectives: tuple[str, ...] = ("accuracy",)
    max_params: int | None = None  # constraints: infeasible trials never become "best"
    max_flops: int | None = None
    max_latency_ms: float | None = None
    device: str = "auto"
    threads: int | None = None  # torch threads per worker (default: cores / jobs)

    def validate(self) -> SearchConfig:
        check_choice("model", self.model, MODEL_KINDS)
        check_choice("device", self.device, DEVICES)
        _positive_int("--trials", self.trials)
        _positive_int("--epochs", self.epochs)
        _positive_int("--jobs", self.jobs)
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive seconds, got {self.timeout}")
        if not self.objectives or self.objectives[0] != "accuracy":
            raise ConfigError("objectives must start with 'accuracy' (e.g. accuracy,params)")
        for name in self.objectives:
            check_choice("objective", name, OBJECTIVES)
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives repeat a name: {','.join(self.objectives)}")
        for name in ("max_params", "max_flops", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        return self

    @property
    def name(self) -> str:
        """The study name: given, or ``<model>-<dataset stem>``."""
        if self.study_name:
            return self.study_name
        return f"{self.model}-{Path(self.data.dataset).stem if self.data.dataset.endswith('.npz') else self.data.dataset}"
