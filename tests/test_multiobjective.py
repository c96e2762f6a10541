"""Multi-objective search and constraints: the Pareto set, early stopping, infeasible trials.

Optuna logic (the curve rule that replaces pruning) is driven with ask/tell and no training;
the studies that train do so on a small, easy synthetic task where wider nets do better.
"""

from __future__ import annotations

import dataclasses
import json

import optuna
import pytest
from helpers import run
from optuna.trial import TrialState, create_trial

from hpsearch.config import DataConfig, SearchConfig
from hpsearch.space import default_space, load_space
from hpsearch.study import (
    open_storage,
    open_study,
    ranked_trials,
    run_study,
    show_study,
)
from hpsearch.study._objective import Objective
from hpsearch.synthetic import make_dataset, write_npz
from hpsearch.train import EpochResult

# Everything fixed but the width of the one hidden layer, so the enqueued widths decide the
# models: parameters grow with width, and on this task so does accuracy.
WIDTH_SPACE = """
[space]
n_layers = 1
width = { low = 2, high = 64, log = true }
batch_size = 16
optimizer = "adam"
lr = 0.01
activation = "relu"
batch_norm = false
dropout = 0.0
init = "default"
use_weight_decay = false
use_l1 = false
schedule = "none"
"""


@pytest.fixture(scope="module")
def easy_npz(tmp_path_factory):
    """4 classes of 16x16 images: a one-unit-wider hidden layer is measurably better."""
    return str(
        write_npz(tmp_path_factory.mktemp("easy") / "easy.npz", 800, 200, shape=(16, 16), num_classes=4)
    )


@pytest.fixture
def width_cfg(workdir, easy_npz):
    (workdir / "width.toml").write_text(WIDTH_SPACE)
    return SearchConfig(
        model="fcn",
        trials=3,
        epochs=3,
        data=DataConfig(dataset=easy_npz, val_size=200),
        space_file=str(workdir / "width.toml"),
        study_name="widths",
        seed=0,
        sampler="random",
        pruner="none",
        device="cpu",
        threads=1,
    )


def run_widths(cfg: SearchConfig, widths: list[int]) -> optuna.Study:
    """Create the study, enqueue one trial per width, and run exactly those trials."""
    study = open_study(cfg, load_space(cfg.model, cfg.space_file), open_storage(None))
    for width in widths:
        study.enqueue_trial({"width_1": width})
    run_study(dataclasses.replace(cfg, trials=len(widths)))
    return optuna.load_study(study_name=cfg.name, storage=open_storage(None))


def test_two_objective_study_yields_a_pareto_set_of_at_least_three(width_cfg, capsys):
    cfg = dataclasses.replace(width_cfg, objectives=("accuracy", "params"))
    study = run_widths(cfg, [3, 8, 48, 6])
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 4
    for t in done:  # the second objective is the parameter count, as stored
        assert t.values[1] == t.user_attrs["params_count"] == 261 * t.params["width_1"] + 4
    front = study.best_trials
    assert len(front) >= 3
    for t in front:  # no completed trial is at least as good in both and better in one
        assert not any(
            o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values for o in done
        )
    info = show_study(cfg.name, None)
    assert sorted(p["number"] for p in info["pareto"]) == sorted(t.number for t in front)
    code, out, _ = run(capsys, "show", cfg.name)
    assert code == 0 and f"Pareto set: {len(front)} feasible trial(s)" in out


def test_constraint_keeps_infeasible_trials_out_of_the_best(width_cfg, capsys):
    # The widest net is the most accurate and breaks --max-params; it runs first, so a
    # feasible trial must still become best (and get its weights saved) after it.
    cfg = dataclasses.replace(width_cfg, max_params=5000)
    study = run_widths(cfg, [48, 3, 8])
    wide, narrow, mid = study.trials
    assert wide.constraints["params"] > 0 and mid.constraints["params"] <= 0
    assert wide.values[0] > mid.values[0] > narrow.values[0], "setup: the infeasible net must win on accuracy"
    assert study.best_trial.number == mid.number
    assert [t.number for t in ranked_trials(study)] == [mid.number, narrow.number]
    assert "weights_artifact" not in wide.user_attrs and "weights_artifact" in mid.user_attrs
    code, out, _ = run(capsys, "show", cfg.name, "--json")
    shown = json.loads(out)["best"]
    assert shown["number"] == mid.number and shown["feasible"] is True
    code, out, _ = run(capsys, "studies", "--json")
    assert json.loads(out)[0]["best_value"] == mid.values[0]
    # export picks the best feasible trial by default (evaluate's top-K: tests/test_evaluate.py).
    code, out, _ = run(capsys, "export", cfg.name, "--out", "model", "--json", "--device", "cpu")
    assert code == 0 and json.loads(out)["number"] == mid.number and not json.loads(out)["retrained"]


def test_cli_optimize_with_flops_and_latency_objectives(workdir, tiny_npz, capsys):
    code, out, _ = run(
        capsys,
        "optimize",
        "--model",
        "fcn",
        "--dataset",
        tiny_npz,
        "--val-size",
        "100",
        "--trials",
        "3",
        "--epochs",
        "1",
        "--objectives",
        "accuracy,flops,latency",
        "--max-latency-ms",
        "1000",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--json",
    )
    assert code == 0
    assert json.loads(out.splitlines()[-1])["counts"]["complete"] >= 1
    study = optuna.load_study(study_name="fcn-tiny", storage=open_storage(None))
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        flops, latency = t.values[1:]
        assert flops == t.user_attrs["flops"] and latency == pytest.approx(
            t.user_attrs["latency_ms"], abs=1e-3
        )
        assert 0 < latency < 1000 and t.constraints["latency"] < 0


# The curve rule: Optuna does not prune multi-objective studies, so hpsearch stops a trial whose
# accuracy at an epoch is below the median of completed trials at that epoch.


def _curve_study(n_completed: int) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i in range(n_completed):
        curve = [{"epoch": 1, "val_acc": 0.3}, {"epoch": 2, "val_acc": 0.5 + 0.1 * i}]
        study.add_trial(create_trial(values=[0.5 + 0.1 * i, 1000], user_attrs={"curve": curve}))
    return study


def _epoch(epoch: int, val_acc: float) -> EpochResult:
    return EpochResult(epoch, 1.0, 0.5, 1.0, val_acc, 0.1, 0.01)


def test_optuna_refuses_to_prune_multi_objective_trials():
    trial = _curve_study(0).ask()
    with pytest.raises(NotImplementedError):
        trial.report(0.5, 1)


@pytest.mark.parametrize(
    ("completed", "epoch", "val_acc", "stops"),
    [
        (5, 2, 0.69, True),  # below the median 0.7 of five peers at epoch 2
        (5, 2, 0.71, False),
        (4, 2, 0.10, False),  # too few completed peers to judge
        (5, 1, 0.01, False),  # the first epoch is noise
    ],
)
def test_multi_objective_curve_rule_stops_hopeless_trials(tmp_path, completed, epoch, val_acc, stops):
    cfg = SearchConfig(model="fcn", objectives=("accuracy", "params"), pruner="median", device="cpu")
    data = make_dataset(n_train=40, n_test=0, val_size=10, shape=(8, 8))
    objective = Objective(cfg, data, default_space("fcn"), tmp_path)
    trial = _curve_study(completed).ask()
    verdict: dict[str, str] = {}
    assert objective._should_stop(trial, _epoch(epoch, val_acc), verdict) is stops
    if stops:
        assert "below the median 0.7000 of 5 completed trials" in verdict["pruned"]
    # --pruner none turns the rule off.
    objective.cfg = dataclasses.replace(cfg, pruner="none")
    assert objective._should_stop(trial, _epoch(epoch, 0.0), {}) is False
