"""Tests for hpsearch.space: the space as data, TOML overrides, sampling, baselines.

No torch and no training: trials come from FixedTrial or ask/tell on in-memory studies.
"""

from __future__ import annotations

import json

import optuna
import pytest

from hpsearch.baselines import BASELINES, get_baseline
from hpsearch.config import ConvBlock, ModelSpec, TrainConfig
from hpsearch.errors import ConfigError, SpecError
from hpsearch.space import (
    Categorical,
    Fixed,
    FloatRange,
    IntRange,
    SearchSpace,
    default_space,
    load_space,
    space_from_toml,
    space_to_toml,
    spec_to_params,
    suggest,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample(space: SearchSpace, n: int, input_shape=(1, 28, 28)):
    """(params, spec, train) of ``n`` RandomSampler trials; SpecError trials are pruned and skipped."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        try:
            spec, train = suggest(trial, space, epochs=3, input_shape=input_shape)
        except SpecError:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        study.tell(trial, 0.0)
        out.append((trial.params, spec, train))
    return out


# --- FixedTrial ----------------------------------------------------------------------------------


def test_fixed_trial_fcn():
    params = {
        "n_layers": 2,
        "width_1": 128,
        "width_2": 64,
        "activation": "elu",
        "batch_norm": True,
        "dropout": 0.2,
        "init": "normal",
        "init_std": 0.1,
        "optimizer": "sgd",
        "lr": 0.05,
        "momentum": 0.9,
        "nesterov": True,
        "use_weight_decay": True,
        "weight_decay": 1e-4,
        "use_l1": False,
        "batch_size": 64,
        "schedule": "cosine",
    }
    trial = optuna.trial.FixedTrial(params)
    spec, train = suggest(trial, default_space("fcn"), epochs=7, seed=3)
    assert spec == ModelSpec(
        kind="fcn",
        hidden=[128, 64],
        activation="elu",
        dropout=0.2,
        batch_norm=True,
        init="normal",
        init_std=0.1,
    )
    assert train == TrainConfig(
        optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, batch_size=64, epochs=7,
        schedule="cosine", seed=3,
    )  # fmt: skip
    assert trial.params == params  # asked for exactly these names


def test_fixed_trial_cnn():
    params = {
        "n_blocks": 2,
        "filters_1": 16, "kernel_1": 5, "padding_1": "same", "pool_1": "max", "pool_size_1": 3, "pool_stride_1": 2,
        "filters_2": 32, "kernel_2": 3, "padding_2": "valid", "stride_2": 2, "pool_2": "none",
        "n_dense": 0,
        "activation": "relu", "batch_norm": False, "init": "default",
        "optimizer": "adam", "lr": 1e-3, "use_weight_decay": False, "use_l1": True, "l1": 1e-5,
        "batch_size": 128, "schedule": "none",
    }  # fmt: skip
    trial = optuna.trial.FixedTrial(params, number=5)
    spec, train = suggest(trial, default_space("cnn"), epochs=2)
    assert spec.convs == [
        ConvBlock(16, kernel=5, padding="same", pool="max", pool_size=3, pool_stride=2),
        ConvBlock(32, kernel=3, padding="valid", stride=2, pool="none"),
    ]
    assert spec.hidden == [] and spec.dropout == 0.0  # dropout is not asked without dense layers
    assert train.l1 == 1e-5 and train.weight_decay == 0.0 and train.momentum == 0.0
    assert train.seed == 5  # seed=None takes the trial number
    assert trial.params == params


def test_pool_stride_equal_to_size_is_stored_as_none():
    params = {"n_blocks": 1, "filters_1": 8, "kernel_1": 3, "padding_1": "same", "pool_1": "avg",
              "pool_size_1": 2, "pool_stride_1": 2, "n_dense": 0, "activation": "relu", "batch_norm": False,
              "init": "default", "optimizer": "adam", "lr": 1e-3, "use_weight_decay": False, "use_l1": False,
              "batch_size": 32, "schedule": "none"}  # fmt: skip
    spec, _ = suggest(optuna.trial.FixedTrial(params), default_space("cnn"), epochs=1)
    assert spec.convs[0].pool_stride is None and spec.convs[0].effective_pool_stride == 2


# --- ask/tell with RandomSampler -----------------------------------------------------------------


def _check_train_conditionals(params, train):
    assert ("momentum" in params) == (train.optimizer in ("sgd", "rmsprop"))
    assert ("nesterov" in params) == (train.optimizer == "sgd" and train.momentum > 0)
    assert ("weight_decay" in params) == params["use_weight_decay"] == (train.weight_decay > 0)
    assert ("l1" in params) == params["use_l1"] == (train.l1 > 0)
    assert "label_smoothing" not in params and train.label_smoothing == 0.0  # fixed by default
    assert "epochs" not in params and train.epochs == 3


def test_random_fcn_trials_validate_and_ask_only_what_applies():
    results = sample(default_space("fcn"), 200)
    assert len(results) == 200
    for params, spec, train in results:
        spec.validate(), train.validate()
        n = params["n_layers"]
        assert spec.hidden == [params[f"width_{i}"] for i in range(1, n + 1)]
        assert not any(f"width_{i}" in params for i in range(n + 1, 10))
        assert ("dropout" in params) == (n > 0)
        assert ("init_std" in params) == (spec.init == "normal")
        _check_train_conditionals(params, train)
    assert {len(spec.hidden) for _, spec, _ in results} == {1, 2, 3, 4, 5}


def test_random_cnn_trials_validate_and_ask_only_what_applies():
    results = sample(default_space("cnn"), 200)
    assert len(results) == 200  # the geometry rules leave no infeasible CNN on 28x28
    for params, spec, train in results:
        spec.validate(), train.validate()
        n = params["n_blocks"]
        assert len(spec.convs) == n and not any(f"filters_{i}" in params for i in range(n + 1, 6))
        for i, block in enumerate(spec.convs, start=1):
            assert (f"stride_{i}" in params) == (block.padding == "valid")
            pooled = params.get(f"pool_{i}", "none") != "none"
            assert (f"pool_size_{i}" in params) == (f"pool_stride_{i}" in params) == pooled
        assert spec.hidden == [params[f"width_{i}"] for i in range(1, params["n_dense"] + 1)]
        _check_train_conditionals(params, train)


def test_tiny_input_never_gives_an_infeasible_cnn():
    assert len(sample(default_space("cnn"), 100, input_shape=(3, 4, 6))) == 100


def test_geometry_that_cannot_fit_raises_spec_error():
    space = default_space("cnn").with_params(
        n_blocks=Fixed(4), kernel=Fixed(5), padding=Fixed("valid"), stride=Fixed(2), pool=Fixed("none")
    )
    trial = optuna.create_study().ask()
    with pytest.raises(SpecError, match="conv block 3"):  # 28 -> 12 -> 4 -> a 5x5 kernel does not fit
        suggest(trial, space, epochs=1)
    assert sample(space, 5) == []  # the helper prunes such trials, as the objective should


def test_fixed_parameters_are_not_stored_on_the_study():
    space = default_space("fcn").with_params(batch_size=Fixed(128), optimizer=Categorical(("adam",)))
    assert space["optimizer"] == Fixed("adam")  # a one-choice list is a fixed value
    for params, _, train in sample(space, 20):
        assert "batch_size" not in params and "optimizer" not in params
        assert train.batch_size == 128 and train.optimizer == "adam"


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_tpe_accepts_the_space():
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True, group=True)
    )
    for _ in range(15):
        trial = study.ask()
        spec, _ = suggest(trial, default_space("cnn"), epochs=1)
        study.tell(trial, float(len(spec.convs)))
    # multivariate grouped TPE handled the conditional space past its start-up trials
    # (a dynamic-space error would have raised in ask/suggest) and kept proposing new points
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 15


# --- TOML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["fcn", "cnn"])
def test_toml_round_trip_of_the_default_space(model, tmp_path):
    text = space_to_toml(default_space(model))
    (tmp_path / "space.toml").write_text(text)
    assert load_space(model, tmp_path / "space.toml") == default_space(model)
    assert load_space(model, None) == default_space(model)


def test_toml_round_trip_of_an_edited_space():
    space = default_space("cnn").with_params(
        n_blocks=IntRange(1, 3),
        filters=IntRange(8, 64, step=8),
        kernel=IntRange(3, 7, step=2),
        lr=FloatRange(1e-4, 0.1),
        dropout=Categorical((0.0, 0.25, 0.5)),
        label_smoothing=FloatRange(0.0, 0.2),
        batch_size=Fixed(256),
        batch_norm=Fixed(True),
        activation=Categorical(("relu", "elu")),
        l1=FloatRange(1.5e-7, 3.3333333333333335e-05, log=True),
    )
    assert space_from_toml("cnn", space_to_toml(space)) == space


def test_toml_overrides_a_few_parameters():
    text = """
    [space]
    lr = { low = 1e-4, high = 1e-1 }   # log is kept from the default range
    activation = ["relu", "elu"]
    batch_size = 128
    n_layers = { high = 8 }            # low is kept too
    dropout = 0                        # an int where a float is expected is fine
    """
    space = space_from_toml("fcn", text)
    assert space["lr"] == FloatRange(1e-4, 0.1, log=True)
    assert space["activation"] == Categorical(("relu", "elu"))
    assert space["batch_size"] == Fixed(128)
    assert space["n_layers"] == IntRange(1, 8)
    assert space["dropout"] == Fixed(0.0)
    assert space["width"] == default_space("fcn")["width"]


@pytest.mark.parametrize(
    ("model", "line", "match"),
    [
        (
            "fcn",
            "swish_factor = 1",
            r"unknown fcn parameter 'swish_factor'; valid parameters: n_layers, width, ",
        ),
        ("fcn", "n_blocks = 2", r"unknown fcn parameter 'n_blocks'"),
        ("fcn", "lr = { low = 0.1, high = 0.01, log = true }", r"lr: low 0.1 is above high 0.01"),
        (
            "fcn",
            "weight_decay = { low = 0.0, high = 0.01, log = true }",
            r"weight_decay: a log range needs low > 0",
        ),
        ("fcn", "n_layers = { low = 1.5, high = 3 }", r"n_layers: an int range needs integer bounds"),
        (
            "fcn",
            'activation = ["relu", "swish"]',
            r"activation: unknown choice 'swish'; choose from: relu, .*gelu",
        ),
        ("fcn", 'optimizer = "lbfgs"', r"optimizer: unknown choice 'lbfgs'"),
        (
            "fcn",
            "n_layers = { low = 1, high = 9 }",
            r"n_layers: 9 is out of bounds; n_layers must be in \[0, 8\]",
        ),
        ("cnn", "n_blocks = { low = 1, high = 5 }", r"n_blocks: 5 is out of bounds"),
        ("cnn", "n_dense = 4", r"n_dense: 4 is out of bounds"),
        (
            "fcn",
            "dropout = { low = 0.0, high = 1.0 }",
            r"dropout: 1.0 is out of bounds; dropout must be in \[0, 1\)",
        ),
        ("fcn", "lr = 0", r"lr: 0.0 is out of bounds; lr must be > 0"),
        ("fcn", 'batch_norm = "yes"', r"batch_norm: expected true or false"),
        ("fcn", 'lr = "fast"', r"lr: expected a finite number"),
        ("fcn", "batch_size = 32.0", r"batch_size: expected an integer"),
        ("fcn", "activation = { low = 1, high = 2 }", r"activation takes a value or a list of choices"),
        ("fcn", "lr = { low = 1e-4, high = 0.1, step = 0.01 }", r"lr: unknown range key 'step'"),
        (
            "fcn",
            "width = { low = 16, high = 512, log = true, step = 2 }",
            r"width: step must be >= 1, and 1 for a log",
        ),
        ("fcn", "activation = []", r"activation: the list of choices is empty"),
        ("fcn", "batch_size = [32, 32]", r"batch_size: choices \[32, 32\] repeat a value"),
        (
            "cnn",
            "kernel = { low = 3, high = 6, step = 2 }",
            r"kernel: high - low must be a multiple of step 2",
        ),
    ],
)
def test_toml_errors_name_the_parameter(model, line, match):
    with pytest.raises(ConfigError, match=rf"^space.toml: {match}"):
        space_from_toml(model, f"[space]\n{line}\n", source="space.toml")


def test_toml_range_without_bounds_when_the_default_is_a_list():
    with pytest.raises(ConfigError, match="batch_size: the range needs 'low'"):
        space_from_toml("fcn", "[space]\nbatch_size = { high = 512 }\n")
    assert space_from_toml("fcn", "[space]\nbatch_size = { low = 16, high = 512, log = true }\n")[
        "batch_size"
    ] == IntRange(16, 512, log=True)


def test_toml_structure_errors(tmp_path):
    with pytest.raises(
        ConfigError, match="unknown top-level key 'lr'; put parameters in a \\[space\\] table"
    ):
        space_from_toml("fcn", "lr = 0.1\n")
    with pytest.raises(ConfigError, match="a space for model 'cnn', not 'fcn'"):
        space_from_toml("fcn", space_to_toml(default_space("cnn")))
    with pytest.raises(ConfigError, match=r"invalid TOML.*line 2.*'lr = \{ low = 1e-4'"):
        space_from_toml("fcn", "[space]\nlr = { low = 1e-4\n")
    with pytest.raises(ConfigError, match=r"nope\.toml does not exist"):
        load_space("fcn", tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[space]\nn_layers = 9\n")
    with pytest.raises(ConfigError, match=r"bad.toml: n_layers: 9 is out of bounds"):
        load_space("fcn", tmp_path / "bad.toml")


# --- dict form -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["fcn", "cnn"])
def test_dict_round_trip_through_json(model):
    space = default_space(model).with_params(batch_size=Fixed(64), lr=FloatRange(1e-4, 1e-2, log=True))
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    assert again != default_space(model)


def test_from_dict_fills_missing_parameters_and_rejects_unknown_ones():
    assert SearchSpace.from_dict({"model": "fcn", "params": {}}) == default_space("fcn")
    with pytest.raises(ConfigError, match="unknown fcn parameter 'foo'"):
        SearchSpace.from_dict({"model": "fcn", "params": {"foo": {"kind": "fixed", "value": 1}}})
    with pytest.raises(ConfigError, match="lr: a stored parameter needs 'kind'"):
        SearchSpace.from_dict({"model": "fcn", "params": {"lr": {"low": 1}}})


# --- baselines into the space --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fcn-004", "cnn-000-final"])
def test_spec_to_params_round_trip(name):
    baseline = get_baseline(name)
    space = default_space(baseline.kind)
    params = spec_to_params(baseline.model, baseline.train, space)
    spec, train = suggest(
        optuna.trial.FixedTrial(params), space, baseline.train.epochs, seed=baseline.train.seed
    )
    assert spec == ModelSpec.from_dict(baseline.model.to_dict())
    assert train == baseline.train


def test_enqueued_baseline_comes_back_from_the_study():
    baseline = get_baseline("cnn-003")
    space = default_space("cnn")
    study = optuna.create_study()
    study.enqueue_trial(spec_to_params(baseline.model, baseline.train, space))
    spec, train = suggest(study.ask(), space, baseline.train.epochs, seed=baseline.train.seed)
    assert spec == baseline.model and train == baseline.train


def test_every_baseline_fits_the_default_space():
    for baseline in BASELINES.values():
        params = spec_to_params(baseline.model, baseline.train, default_space(baseline.kind))
        assert "label_smoothing" not in params  # fixed parameters are left out


def test_a_baseline_outside_the_space_is_refused_with_the_reasons():
    baseline = get_baseline("fcn-001-final")  # rmsprop, lr 1e-4, batch 64
    space = default_space("fcn").with_params(
        batch_size=Fixed(128), lr=FloatRange(1e-3, 0.1, log=True), optimizer=Categorical(("adam", "sgd"))
    )
    with pytest.raises(ConfigError) as info:
        spec_to_params(baseline.model, baseline.train, space)
    message = str(info.value)
    assert "optimizer='rmsprop' is outside" in message
    assert "lr=0.0001 is outside" in message
    assert "batch_size: baseline 64, space gives 128" in message
    with pytest.raises(ConfigError, match="n_layers=3 is outside"):
        spec_to_params(
            baseline.model, baseline.train, default_space("fcn").with_params(n_layers=IntRange(1, 2))
        )
    with pytest.raises(ConfigError, match="cannot enter a cnn search space"):
        spec_to_params(baseline.model, baseline.train, default_space("cnn"))


def test_irrelevant_settings_do_not_stop_a_baseline():
    spec = ModelSpec(kind="cnn", hidden=[], convs=[ConvBlock(16, pool="none", pool_size=4)], dropout=0.3)
    train = TrainConfig(optimizer="adam", momentum=0.5, batch_size=64)
    params = spec_to_params(spec, train, default_space("cnn"))
    assert "momentum" not in params and "pool_size_1" not in params and "dropout" not in params
