"""The search space as data, and the only caller of ``trial.suggest_*``.

A :class:`SearchSpace` maps every hyperparameter name of a model kind
(``"lr"``, ``"width"``, ``"pool"``, ...) to one of four kinds of parameter:
:class:`IntRange`, :class:`FloatRange`, :class:`Categorical` or :class:`Fixed`.
:func:`default_space` is the space the seed reports searched by hand, widened a
little; :func:`load_space` narrows, widens or fixes it from a TOML file and
:func:`space_to_toml` prints it back in the same format.

:func:`suggest` turns an Optuna trial into a ``(ModelSpec, TrainConfig)``:

1. Structure first: ``n_layers`` then ``width_1..width_n`` (fcn), or
   ``n_blocks``, per-block ``filters_k, kernel_k, padding_k, stride_k, pool_k,
   pool_size_k, pool_stride_k``, then ``n_dense`` and ``width_1..`` (cnn).
2. Model options: ``activation``, ``batch_norm`` and ``dropout`` (only when
   the net has such layers), ``init`` and ``init_std`` (only for ``"normal"``).
3. Training: ``optimizer``, ``lr``, ``momentum`` (sgd, rmsprop), ``nesterov``
   (sgd with momentum > 0), ``use_weight_decay`` then ``weight_decay``,
   ``use_l1`` then ``l1``, ``batch_size``, ``label_smoothing``, ``schedule``.

A :class:`Fixed` parameter never calls ``trial.suggest_*``: the study stores no
param for it (the space itself, stored on the study, records the value), and
an enqueued value for it is ignored. Distributions never change between
trials; only which names a trial asks for does. That is also how CNN geometry
is kept feasible: ``padding_k`` is asked only where a 'valid' conv fits the
feature map (else 'same'), and ``pool_k`` only where the largest ``pool_size``
fits (else 'none'). What a user's space still makes impossible raises
:class:`~hpsearch.errors.SpecError` from :func:`suggest`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.config import (
    ACTIVATIONS,
    INITS,
    MAX_CNN_DENSE,
    MAX_CONV_BLOCKS,
    MAX_FCN_HIDDEN,
    MODEL_KINDS,
    OPTIMIZERS,
    PADDINGS,
    POOLS,
    SCHEDULES,
    ConvBlock,
    ModelSpec,
    TrainConfig,
    check_choice,
)
from hpsearch.errors import ConfigError, UnknownChoiceError
from hpsearch.geometry import layer_table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Categorical",
    "Fixed",
    "FloatRange",
    "IntRange",
    "Param",
    "SearchSpace",
    "default_space",
    "load_space",
    "space_from_toml",
    "space_to_toml",
    "spec_to_params",
    "suggest",
]


@dataclass(frozen=True)
class IntRange:
    """Integers ``low..high`` (both included), every ``step``th, optionally log-uniform."""

    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class FloatRange:
    """Floats in ``[low, high]``, optionally log-uniform."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (unordered)."""

    choices: tuple[Any, ...]


@dataclass(frozen=True)
class Fixed:
    """Always ``value``; never sampled."""

    value: Any


Param = IntRange | FloatRange | Categorical | Fixed


@dataclass(frozen=True)
class _Rule:
    """What values a parameter may take at all (hard limits), whatever the space says."""

    type: type  # int, float, bool or str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed (lr > 0)
    high_open: bool = False  # high itself is not allowed (dropout < 1)
    choices: tuple[str, ...] = ()  # the registry, for str parameters


_RULES: dict[str, _Rule] = {
    "n_layers": _Rule(int, "hidden layers", low=0, high=MAX_FCN_HIDDEN),
    "n_blocks": _Rule(int, "conv blocks", low=1, high=MAX_CONV_BLOCKS),
    "filters": _Rule(int, "filters per block (filters_1..)", low=1),
    "kernel": _Rule(int, "conv kernel size per block", low=1),
    "padding": _Rule(
        str, "per block; 'same' only where the map is smaller than the kernel", choices=PADDINGS
    ),
    "stride": _Rule(int, "conv stride per block, 'valid' padding only ('same' needs 1)", low=1),
    "pool": _Rule(
        str, "per block; 'none' where the map is smaller than the largest pool_size", choices=POOLS
    ),
    "pool_size": _Rule(int, "pooling window per block", low=1),
    "pool_stride": _Rule(int, "pooling stride per block", low=1),
    "n_dense": _Rule(int, "dense layers after the convs", low=0, high=MAX_CNN_DENSE),
    "width": _Rule(int, "units per hidden dense layer (width_1..)", low=1),
    "activation": _Rule(str, "", choices=ACTIVATIONS),
    "batch_norm": _Rule(bool, "only when the net has hidden layers"),
    "dropout": _Rule(float, "after each hidden dense layer", low=0.0, high=1.0, high_open=True),
    "init": _Rule(str, "weight initialisation", choices=INITS),
    "init_std": _Rule(float, "std of init 'normal' (only then)", low=0.0, low_open=True),
    "optimizer": _Rule(str, "", choices=OPTIMIZERS),
    "lr": _Rule(float, "learning rate", low=0.0, low_open=True),
    "momentum": _Rule(float, "sgd and rmsprop only", low=0.0, high=1.0, high_open=True),
    "nesterov": _Rule(bool, "sgd with momentum > 0 only"),
    "use_weight_decay": _Rule(bool, "false: weight_decay is 0"),
    "weight_decay": _Rule(float, "L2 via the optimizer, when use_weight_decay", low=0.0),
    "use_l1": _Rule(bool, "false: l1 is 0"),
    "l1": _Rule(float, "L1 penalty, sum over all weights, when use_l1", low=0.0),
    "batch_size": _Rule(int, "", low=1),
    "label_smoothing": _Rule(float, "", low=0.0, high=1.0, high_open=True),
    "schedule": _Rule(str, "learning-rate schedule", choices=SCHEDULES),
}

_BOOL = Categorical((False, True))
_COMMON: dict[str, Param] = {
    "activation": Categorical(ACTIVATIONS),
    "batch_norm": _BOOL,
    "dropout": FloatRange(0.0, 0.5),
    "init": Categorical(INITS),
    "init_std": FloatRange(0.01, 1.0, log=True),  # the reports tried 0.1 and 1.0
    "optimizer": Categorical(OPTIMIZERS),
    "lr": FloatRange(1e-5, 0.3, log=True),  # keep the divergent region (>= 0.1) so the sampler learns it
    "momentum": FloatRange(0.0, 0.99),
    "nesterov": _BOOL,
    "use_weight_decay": _BOOL,
    "weight_decay": FloatRange(1e-6, 1e-2, log=True),
    "use_l1": _BOOL,
    "l1": FloatRange(1e-7, 1e-4, log=True),
    "batch_size": Categorical((32, 64, 128, 256)),
    "label_smoothing": Fixed(0.0),  # no report used it; open it with a range
    "schedule": Categorical(SCHEDULES),
}
_STRUCTURE: dict[str, dict[str, Param]] = {
    "fcn": {"n_layers": IntRange(1, 5), "width": IntRange(16, 1024, log=True)},
    "cnn": {
        "n_blocks": IntRange(1, MAX_CONV_BLOCKS),
        "filters": IntRange(8, 128, log=True),
        "kernel": Categorical((3, 5)),
        "padding": Categorical(PADDINGS),
        "stride": IntRange(1, 2),
        "pool": Categorical(POOLS),
        "pool_size": IntRange(2, 4),
        "pool_stride": IntRange(1, 2),
        "n_dense": IntRange(0, 2),
        "width": IntRange(32, 512, log=True),
    },
}


def _defaults(model: str) -> dict[str, Param]:
    check_choice("model kind", model, MODEL_KINDS)
    return {**_STRUCTURE[model], **_COMMON}


@dataclass
class SearchSpace:
    """Every hyperparameter of one model kind, each a range, a choice or a fixed value.

    Constructing one checks every parameter against its hard limits and
    normalises it (a one-value range or choice becomes :class:`Fixed`), so two
    spaces that sample the same thing compare equal.
    """

    model: str
    params: dict[str, Param] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = list(_defaults(self.model))
        unknown = [n for n in self.params if n not in names]
        if unknown:
            raise ConfigError(
                f"unknown {self.model} parameter {unknown[0]!r}; valid parameters: {', '.join(names)}"
            )
        missing = [n for n in names if n not in self.params]
        if missing:
            raise ConfigError(f"{self.model} space lacks parameter(s) {', '.join(missing)}")
        self.params = {n: _check_param(n, self.params[n]) for n in names}

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def with_params(self, **overrides: Param) -> SearchSpace:
        """A copy with some parameters replaced (checked like the constructor)."""
        return SearchSpace(self.model, {**self.params, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for storing on a study and comparing with a re-run."""
        return {"model": self.model, "params": {n: _param_to_dict(p) for n, p in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        """Inverse of :meth:`to_dict`; parameters it lacks take their defaults."""
        if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
            raise ConfigError("a stored search space must be an object with 'model' and 'params'")
        model = data.get("model")
        params = {n: _param_from_dict(n, d) for n, d in data["params"].items()}
        return cls(model, {**_defaults(model), **params})


def default_space(model: str) -> SearchSpace:
    """The default search space for ``model`` (``"fcn"`` or ``"cnn"``)."""
    return SearchSpace(model, _defaults(model))


# --- checking parameters -------------------------------------------------------------------------


def _check_param(name: str, param: Param) -> Param:
    """Check ``param`` against the hard limits of ``name`` and normalise it."""
    rule = _RULES[name]
    if isinstance(param, Fixed):
        return Fixed(_check_value(name, rule, param.value))
    if isinstance(param, Categorical):
        choices = tuple(_check_value(name, rule, c) for c in param.choices)
        if not choices:
            raise ConfigError(f"{name}: the list of choices is empty; give at least one value")
        if len(set(choices)) != len(choices):
            raise ConfigError(f"{name}: choices {list(choices)} repeat a value; list each once")
        return Fixed(choices[0]) if len(choices) == 1 else Categorical(choices)
    if isinstance(param, (IntRange, FloatRange)):
        return _check_range(name, rule, param)
    raise ConfigError(f"{name}: expected a range, a list of choices or a value, got {param!r}")


def _check_range(name: str, rule: _Rule, param: IntRange | FloatRange) -> Param:
    if rule.type in (bool, str):
        raise ConfigError(f"{name} takes a value or a list of choices, not a range")
    if not isinstance(param.log, bool):
        raise ConfigError(f"{name}: log must be true or false, got {param.log!r}")
    if rule.type is int:
        if not isinstance(param, IntRange) or not all(
            _is_int(v) for v in (param.low, param.high, param.step)
        ):
            raise ConfigError(
                f"{name}: an int range needs integer bounds, got low={param.low!r}, high={param.high!r}"
                + (f", step={param.step!r}" if isinstance(param, IntRange) else "")
            )
    elif not isinstance(param, FloatRange):
        raise ConfigError(f"{name}: a float parameter takes a range of low, high and log, not step")
    low, high = (_check_value(name, rule, bound) for bound in (param.low, param.high))
    param = dataclasses.replace(param, low=low, high=high)  # float bounds as floats
    if param.low > param.high:
        raise ConfigError(f"{name}: low {param.low} is above high {param.high}; swap them")
    if param.log and param.low <= 0:
        raise ConfigError(f"{name}: a log range needs low > 0, got {param.low}; raise low or set log = false")
    if isinstance(param, IntRange):
        if param.step < 1 or (param.log and param.step != 1):
            raise ConfigError(f"{name}: step must be >= 1, and 1 for a log range; got {param.step}")
        if (param.high - param.low) % param.step:
            raise ConfigError(f"{name}: high - low must be a multiple of step {param.step}")
    return Fixed(param.low) if param.low == param.high else param


def _check_value(name: str, rule: _Rule, value: Any) -> Any:
    """Return ``value`` as ``rule.type`` if it is allowed, else raise ConfigError naming ``name``."""
    if rule.type is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if rule.type is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a name, got {value!r}")
        if value not in rule.choices:
            raise UnknownChoiceError(
                f"{name}: unknown choice {value!r}; choose from: {', '.join(rule.choices)}"
            )
        return value
    if rule.type is int and not _is_int(value):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if rule.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
        value = float(value)
    too_low = rule.low is not None and (value < rule.low or (rule.low_open and value == rule.low))
    too_high = rule.high is not None and (value > rule.high or (rule.high_open and value == rule.high))
    if too_low or too_high:
        raise ConfigError(f"{name}: {value!r} is out of bounds; {name} must be {_limits(rule)}")
    return value


def _limits(rule: _Rule) -> str:
    if rule.low is not None and rule.high is not None:
        return (
            f"in {'(' if rule.low_open else '['}{rule.low:g}, {rule.high:g}{')' if rule.high_open else ']'}"
        )
    return f"{'>' if rule.low_open else '>='} {rule.low:g}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)  # True is not 1 here


def _contains(param: Param, value: Any) -> bool:
    if isinstance(param, Fixed):
        return _same(value, param.value)
    if isinstance(param, Categorical):
        return any(_same(value, c) for c in param.choices)
    if isinstance(param, IntRange) and (not _is_int(value) or (value - param.low) % param.step):
        return False
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high
    )


# --- dict and TOML forms ---------------------------------------------------------------------------


def _param_to_dict(param: Param) -> dict[str, Any]:
    if isinstance(param, IntRange):
        return {"kind": "int", "low": param.low, "high": param.high, "log": param.log, "step": param.step}
    if isinstance(param, FloatRange):
        return {"kind": "float", "low": param.low, "high": param.high, "log": param.log}
    if isinstance(param, Categorical):
        return {"kind": "categorical", "choices": list(param.choices)}
    return {"kind": "fixed", "value": param.value}


def _param_from_dict(name: str, data: Any) -> Param:
    kinds = {"int": IntRange, "float": FloatRange, "categorical": Categorical, "fixed": Fixed}
    if not isinstance(data, dict) or data.get("kind") not in kinds:
        raise ConfigError(f"{name}: a stored parameter needs 'kind', one of: {', '.join(kinds)}")
    fields = {k: v for k, v in data.items() if k != "kind"}
    if "choices" in fields:
        fields["choices"] = tuple(fields["choices"])
    try:
        return kinds[data["kind"]](**fields)
    except TypeError as exc:
        raise ConfigError(f"{name}: bad stored parameter {data!r} ({exc})") from None


def space_to_toml(space: SearchSpace) -> str:
    """The whole space as TOML that :func:`load_space` reads back to an equal space."""
    lines = [
        f"# hpsearch search space for model {space.model!r}: edit and pass back as a space file.",
        "# A value fixes a parameter, a list is a categorical choice, a table is a range",
        "# ({ low, high, log, step }: keys left out keep the default range's).",
        f"model = {_toml_value(space.model)}",
        "",
        "[space]",
    ]
    entries = [(f"{name} = {_toml_param(p)}", _RULES[name].help) for name, p in space.params.items()]
    pad = min(max(len(text) for text, _ in entries), 58)  # align the comments, within reason
    lines += [f"{text:<{pad}}  # {note}" if note else text for text, note in entries]
    return "\n".join(lines) + "\n"


def _toml_param(param: Param) -> str:
    if isinstance(param, Fixed):
        return _toml_value(param.value)
    if isinstance(param, Categorical):
        return "[" + ", ".join(_toml_value(c) for c in param.choices) + "]"
    parts = [
        f"low = {_toml_value(param.low)}",
        f"high = {_toml_value(param.high)}",
        f"log = {_toml_value(param.log)}",
    ]
    if isinstance(param, IntRange) and param.step != 1:  # every default int range has step 1
        parts.append(f"step = {param.step}")
    return "{ " + ", ".join(parts) + " }"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr round-trips floats exactly and is valid TOML ("1e-05", "0.3")
    return json.dumps(value)  # the registry names are plain ASCII: JSON and TOML strings agree


def load_space(model: str, path: str | Path | None) -> SearchSpace:
    """The default space for ``model``, with the parameters a TOML file sets replaced.

    Args:
        model: ``"fcn"`` or ``"cnn"``.
        path: A TOML file with a ``[space]`` table (format: :func:`space_to_toml`),
            or ``None`` for the default space.

    Raises:
        ConfigError: The file is missing or malformed, or a parameter is unknown,
            of the wrong type, or outside its limits; the message names it.
    """
    if path is None:
        return default_space(model)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"search space file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"search space file {path} cannot be read: {exc}") from None
    return space_from_toml(model, text, source=str(path))


def space_from_toml(model: str, text: str, source: str = "<string>") -> SearchSpace:
    """Like :func:`load_space`, from TOML text; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        shown = f": {text.splitlines()[int(line[1]) - 1].strip()!r}" if line else ""
        raise ConfigError(f"{source}: invalid TOML, {exc}{shown}") from None
    try:
        return _space_from_table(model, data)
    except ConfigError as exc:
        raise type(exc)(f"{source}: {exc}") from None


def _space_from_table(model: str, data: dict[str, Any]) -> SearchSpace:
    extra = sorted(set(data) - {"model", "space"})
    if extra:
        raise ConfigError(f"unknown top-level key {extra[0]!r}; put parameters in a [space] table")
    if data.get("model", model) != model:
        raise ConfigError(f"the file is a space for model {data['model']!r}, not {model!r}")
    table = data.get("space", {})
    if not isinstance(table, dict):
        raise ConfigError("'space' must be a table: write [space] above the parameters")
    defaults = _defaults(model)
    unknown = [n for n in table if n not in defaults]
    if unknown:
        raise ConfigError(
            f"unknown {model} parameter {unknown[0]!r}; valid parameters: {', '.join(defaults)}"
        )
    return SearchSpace(
        model, {**defaults, **{n: _param_from_toml(n, v, defaults[n]) for n, v in table.items()}}
    )


def _param_from_toml(name: str, value: Any, default: Param) -> Param:
    if isinstance(value, list):
        return Categorical(tuple(value))
    if not isinstance(value, dict):
        return Fixed(value)
    rule = _RULES[name]
    if rule.type in (bool, str):
        raise ConfigError(f"{name} takes a value or a list of choices, not a range")
    cls = IntRange if rule.type is int else FloatRange
    keys = ("low", "high", "log", "step") if cls is IntRange else ("low", "high", "log")
    bad = [k for k in value if k not in keys]
    if bad:
        raise ConfigError(f"{name}: unknown range key {bad[0]!r}; a range takes {', '.join(keys)}")
    # Keys left out keep the default range's, so `n_layers = { high = 8 }` only widens.
    fields = {**(dataclasses.asdict(default) if isinstance(default, cls) else {}), **value}
    for key in ("low", "high"):
        if key not in fields:
            raise ConfigError(f"{name}: the range needs {key!r} (the default is not a range)")
    return cls(**fields)


# --- sampling ----------------------------------------------------------------------------------------


class _Picker:
    """Draws one parameter value from ``trial``, honouring the space's kind for it."""

    def __init__(self, trial: Any, space: SearchSpace):
        self.trial = trial
        self.space = space

    def __call__(self, key: str, index: int | None = None) -> Any:
        name = key if index is None else f"{key}_{index}"
        param = self.space[key]
        if isinstance(param, Fixed):
            return param.value
        if isinstance(param, IntRange):
            return self.trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
        if isinstance(param, FloatRange):
            return self.trial.suggest_float(name, param.low, param.high, log=param.log)
        return self.trial.suggest_categorical(name, list(param.choices))

    def allows(self, key: str, value: Any) -> bool:
        return _contains(self.space[key], value)

    def largest(self, key: str) -> int:
        param = self.space[key]
        if isinstance(param, Fixed):
            return param.value
        return param.high if isinstance(param, IntRange) else max(param.choices)


def suggest(
    trial: Any,
    space: SearchSpace,
    epochs: int,
    input_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    seed: int | None = None,
) -> tuple[ModelSpec, TrainConfig]:
    """Sample a model and its training configuration from ``space``.

    Args:
        trial: An Optuna ``Trial`` or ``FixedTrial`` (anything with ``suggest_*``).
        space: What to sample; fixed parameters are not asked of the trial.
        epochs: Training epochs (set by the study, not sampled).
        input_shape: One input sample as ``(channels, height, width)``.
        num_classes: Classes in the data.
        seed: Training seed; ``None`` uses the trial number.

    Returns:
        A validated ``(ModelSpec, TrainConfig)``.

    Raises:
        SpecError: The sampled CNN does not fit ``input_shape``; the objective
            should prune the trial with this message. With the default space
            this cannot happen: ``padding_k`` is only sampled where a 'valid'
            conv fits (else 'same') and ``pool_k`` only where the largest
            ``pool_size`` fits (else 'none').
    """
    pick = _Picker(trial, space)
    if space.model == "fcn":
        spec = ModelSpec(kind="fcn", hidden=[pick("width", i) for i in range(1, pick("n_layers") + 1)])
    else:
        spec = ModelSpec(kind="cnn", convs=_suggest_convs(pick, input_shape))
        spec.hidden = [pick("width", i) for i in range(1, pick("n_dense") + 1)]
    spec.activation = pick("activation")
    spec.batch_norm = pick("batch_norm") if spec.hidden or spec.convs else False
    spec.dropout = pick("dropout") if spec.hidden else 0.0
    spec.init = pick("init")
    spec.init_std = pick("init_std") if spec.init == "normal" else ModelSpec.init_std
    train = _suggest_train(pick, epochs, trial.number if seed is None else seed)
    layer_table(spec, input_shape, num_classes)
    return spec.validate(), train.validate()


def _suggest_convs(pick: _Picker, input_shape: tuple[int, int, int]) -> list[ConvBlock]:
    """Conv blocks, steering clear of windows larger than the feature map that reaches them."""
    size = min(input_shape[1:])  # the smaller side decides whether a window fits
    blocks = []
    for i in range(1, pick("n_blocks") + 1):
        block = ConvBlock(filters=pick("filters", i), kernel=pick("kernel", i))
        fits_valid = size >= block.kernel or not pick.allows("padding", "same")
        block.padding = pick("padding", i) if fits_valid else "same"
        if block.padding == "valid":
            block.stride = pick("stride", i)
            size = (size - block.kernel) // block.stride + 1
        fits_pool = size >= pick.largest("pool_size") or not pick.allows("pool", "none")
        block.pool = pick("pool", i) if fits_pool else "none"
        if block.pool != "none":
            block.pool_size = pick("pool_size", i)
            stride = pick("pool_stride", i)
            block.pool_stride = None if stride == block.pool_size else stride
            size = (size - block.pool_size) // stride + 1
        blocks.append(block)
    return blocks


def _suggest_train(pick: _Picker, epochs: int, seed: int) -> TrainConfig:
    train = TrainConfig(optimizer=pick("optimizer"), lr=pick("lr"), epochs=epochs, seed=seed)
    if train.optimizer in ("sgd", "rmsprop"):
        train.momentum = pick("momentum")
    if train.optimizer == "sgd" and train.momentum > 0:  # nesterov needs momentum
        train.nesterov = pick("nesterov")
    train.weight_decay = pick("weight_decay") if pick("use_weight_decay") else 0.0
    train.l1 = pick("l1") if pick("use_l1") else 0.0
    train.batch_size = pick("batch_size")
    train.label_smoothing = pick("label_smoothing")
    train.schedule = pick("schedule")
    return train


# --- baselines into the space -------------------------------------------------------------------------


def spec_to_params(spec: ModelSpec, train: TrainConfig, space: SearchSpace) -> dict[str, Any]:
    """The trial params that make :func:`suggest` rebuild ``spec`` and ``train``.

    Pass the result to ``study.enqueue_trial`` to start a study from a
    hand-tuned baseline. Fixed parameters are left out (they are not asked of
    the trial), and so are settings that do not matter (momentum for adam,
    pool_size where pool is 'none', ...). ``epochs`` and ``seed`` come from the
    study, not from the params.

    Raises:
        ConfigError: The baseline is not a point of ``space``: a value lies
            outside its range or choices, a fixed parameter differs, or the
            geometry rules choose differently. Optuna itself would run such a
            trial with a warning (out-of-range numbers), fail it (unknown
            categorical value) or silently swap in the fixed value, so we
            refuse instead; widen the space or leave the baseline out.
        SpecError: The baseline's CNN does not fit the input.
    """
    if spec.kind != space.model:
        raise ConfigError(f"a {spec.kind} baseline cannot enter a {space.model} search space")
    replay = _Replay(_candidate_params(spec, train))
    got_spec, got_train = suggest(replay, space, train.epochs, seed=train.seed)
    problems = replay.problems + _differences(_canonical(spec, train), (got_spec, got_train))
    if problems:
        raise ConfigError(
            f"the baseline is not in the search space: {'; '.join(problems)}; widen the space or leave it out"
        )
    return replay.params


def _candidate_params(spec: ModelSpec, train: TrainConfig) -> dict[str, Any]:
    """Every param name suggest could ask for, with the baseline's value."""
    values: dict[str, Any] = {name: getattr(train, name) for name in _RULES if hasattr(train, name)}
    values.update({name: getattr(spec, name) for name in _RULES if hasattr(spec, name)})
    values.update(use_weight_decay=train.weight_decay > 0, use_l1=train.l1 > 0)
    values["n_layers" if spec.kind == "fcn" else "n_dense"] = len(spec.hidden)
    values.update({f"width_{i}": w for i, w in enumerate(spec.hidden, start=1)})
    values["n_blocks"] = len(spec.convs)
    for i, block in enumerate(spec.convs, start=1):
        for key in ("filters", "kernel", "padding", "stride", "pool", "pool_size"):
            values[f"{key}_{i}"] = getattr(block, key)
        values[f"pool_stride_{i}"] = block.effective_pool_stride
    return values


class _Replay:
    """A stand-in trial that answers ``suggest_*`` from ``values`` and records what was asked."""

    number = 0

    def __init__(self, values: dict[str, Any]):
        self.values = values
        self.params: dict[str, Any] = {}
        self.problems: list[str] = []

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._answer(name, IntRange(low, high, log, step), low)

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return self._answer(name, FloatRange(low, high, log), low)

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._answer(name, Categorical(tuple(choices)), choices[0])

    def _answer(self, name: str, param: Param, fallback: Any) -> Any:
        if name not in self.values:  # a structure mismatch; _differences reports it
            return fallback
        value = self.values[name]
        if not _contains(param, value):
            self.problems.append(f"{name}={value!r} is outside {_toml_param(param)}")
        self.params[name] = value
        return value


def _canonical(spec: ModelSpec, train: TrainConfig) -> tuple[ModelSpec, TrainConfig]:
    """``spec`` and ``train`` with the settings that have no effect reset, as suggest leaves them."""
    spec = ModelSpec.from_dict(spec.to_dict())
    for block in spec.convs:
        if block.pool == "none":
            block.pool_size, block.pool_stride = ConvBlock.pool_size, None
        elif block.pool_stride == block.pool_size:
            block.pool_stride = None
    spec.dropout = spec.dropout if spec.hidden else 0.0
    spec.batch_norm = spec.batch_norm if spec.hidden or spec.convs else False
    spec.init_std = spec.init_std if spec.init == "normal" else ModelSpec.init_std
    train = TrainConfig.from_dict(train.to_dict())
    train.momentum = train.momentum if train.optimizer in ("sgd", "rmsprop") else 0.0
    return spec, train


def _differences(want: tuple[ModelSpec, TrainConfig], got: tuple[ModelSpec, TrainConfig]) -> list[str]:
    """``field: baseline X, space gives Y`` for every field where ``got`` differs from ``want``."""
    model_want, model_got = want[0].to_dict(), got[0].to_dict()
    pairs = [(model_want, model_got, ""), (want[1].to_dict(), got[1].to_dict(), "")]
    if len(want[0].convs) == len(got[0].convs):  # name the differing field of each block
        blocks = zip(model_want.pop("convs"), model_got.pop("convs"), strict=True)
        pairs += [(w, g, f"block {i} ") for i, (w, g) in enumerate(blocks, start=1)]
    return [
        f"{where}{key}: baseline {w[key]!r}, space gives {g[key]!r}"
        for w, g, where in pairs
        for key in w
        if not _same(w[key], g[key])
    ]
