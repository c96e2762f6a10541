"""Studies end to end on tiny data: persistence, resume, conflicts, baselines, pruning, outcomes."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch
from optuna.trial import TrialState
from processes import FCN_SPACE

from hpsearch.config import DataConfig, SearchConfig
from hpsearch.errors import ConfigError, StudyError
from hpsearch.study import (
    PRUNERS,
    SAMPLERS,
    artifact_dir,
    count_trials,
    delete_study,
    list_studies,
    load_study,
    make_pruner,
    make_sampler,
    open_storage,
    redact_url,
    run_study,
    show_study,
)


@pytest.fixture
def space_file(workdir):
    path = workdir / "space.toml"
    path.write_text(FCN_SPACE)
    return str(path)


def make_cfg(tiny_npz, space_file=None, **kw) -> SearchConfig:
    base = SearchConfig(
        model="fcn",
        trials=4,
        epochs=2,
        data=DataConfig(dataset=tiny_npz, val_size=100),
        space_file=space_file,
        seed=0,
        device="cpu",
        threads=1,
    )
    return dataclasses.replace(base, **kw)


def test_every_sampler_and_pruner_builds():
    for name in SAMPLERS:
        assert isinstance(make_sampler(name, 0), optuna.samplers.BaseSampler)
    for name in PRUNERS:
        assert isinstance(make_pruner(name, 10), optuna.pruners.BasePruner)


def test_end_to_end_study_persists_every_trial(workdir, tiny_npz, space_file):
    summary = run_study(make_cfg(tiny_npz, space_file, trials=5))
    assert summary.counts.finished == 5 and summary.counts.failed == 0
    # A normal Optuna study in the default SQLite file, readable by Optuna's own tools.
    assert (workdir / "studies" / "hpsearch.db").exists()
    study = optuna.load_study(study_name="fcn-tiny", storage="sqlite:///studies/hpsearch.db")
    assert len(study.trials) == 5
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert done
    for t in study.trials:
        attrs = t.user_attrs
        assert {"spec", "train", "seed", "params_count", "flops", "curve", "outcome", "repro"} <= set(attrs)
        assert attrs["train"]["epochs"] == 2
        assert 1 <= len(attrs["curve"]) <= 2
    best = study.best_trial
    assert best.value == best.user_attrs["curve"][-1]["val_acc"]
    # The best weights are an Optuna artifact: a plain state dict that loads without unpickling code.
    weights = artifact_dir("sqlite:///studies/hpsearch.db") / best.user_attrs["weights_artifact"]
    state = torch.load(weights, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_resume_adds_trials_and_conflict_is_refused(workdir, tiny_npz, space_file):
    run_study(make_cfg(tiny_npz, space_file, trials=3))
    summary = run_study(make_cfg(tiny_npz, space_file, trials=2))
    assert summary.counts.finished == 5
    for change in ({"epochs": 3}, {"data": DataConfig(dataset=tiny_npz, val_size=120)}, {"space_file": None}):
        with pytest.raises(StudyError, match="exists with other settings"):
            run_study(make_cfg(tiny_npz, **{"space_file": space_file, **change}))
    study = load_study("fcn-tiny", None)
    assert len(study.trials) == 5  # the refused runs wrote nothing


def test_enqueued_baselines_run_first_and_are_marked(workdir, tiny_npz):
    cfg = make_cfg(tiny_npz, trials=2, enqueue_baselines=True, epochs=1)
    run_study(cfg)
    study = load_study(cfg.name, None)
    first = study.trials[0]
    assert first.user_attrs["baseline"] == "fcn-000-final"
    assert first.user_attrs["spec"]["hidden"] == [400, 400, 300, 100]
    assert first.params["lr"] == pytest.approx(1e-3)
    # Every FCN baseline is enqueued once, even across resumes.
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert len(waiting) == 9 - 2
    run_study(dataclasses.replace(cfg, trials=1))
    assert len([t for t in load_study(cfg.name, None).trials if "baseline" in t.user_attrs]) == 9


def test_impossible_geometry_and_divergence_end_as_pruned_with_reason(workdir, tiny_npz):
    (workdir / "cnn.toml").write_text(
        "[space]\nn_blocks = 4\nkernel = 5\npadding = 'valid'\nfilters = 4\nn_dense = 0\n"
    )
    run_study(make_cfg(tiny_npz, str(workdir / "cnn.toml"), model="cnn", trials=2, study_name="geo"))
    for t in load_study("geo", None).trials:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["outcome"] == "geometry" and "conv block" in t.user_attrs["reason"]
    (workdir / "boom.toml").write_text(
        "[space]\noptimizer = 'sgd'\nlr = 0.3\nmomentum = 0.99\nn_layers = 2\n"
        "width = 256\nbatch_size = 32\nuse_weight_decay = false\nuse_l1 = false\n"
        "batch_norm = false\ninit = 'normal'\ninit_std = 1.0\nschedule = 'none'\n"
    )
    run_study(make_cfg(tiny_npz, str(workdir / "boom.toml"), trials=2, epochs=3, study_name="boom"))
    outcomes = {t.user_attrs["outcome"] for t in load_study("boom", None).trials}
    assert outcomes == {"diverged"}
    assert all(t.state == TrialState.PRUNED for t in load_study("boom", None).trials)


def test_pruner_prunes_with_a_reason(workdir, tiny_npz, space_file):
    run_study(make_cfg(tiny_npz, space_file, trials=12, epochs=3, pruner="percentile", sampler="random"))
    trials = load_study("fcn-tiny", None).trials
    pruned = [t for t in trials if t.user_attrs.get("outcome") == "pruned"]
    assert pruned, "12 random trials with a 33rd-percentile pruner should prune at least one"
    assert all("pruned by percentile" in t.user_attrs["reason"] for t in pruned)
    assert all(len(t.user_attrs["curve"]) < 3 for t in pruned)


def test_two_worker_processes_finish_exactly_the_requested_trials(workdir, tiny_npz, space_file):
    summary = run_study(make_cfg(tiny_npz, space_file, trials=6, epochs=1, jobs=2))
    assert summary.counts.finished == 6
    assert summary.counts.failed == 0 and summary.counts.running == 0


def test_list_show_delete(workdir, tiny_npz, space_file):
    run_study(make_cfg(tiny_npz, space_file, trials=2))
    rows = list_studies(None)
    assert [(r.name, r.model, r.counts.finished) for r in rows] == [("fcn-tiny", "fcn", 2)]
    info = show_study("fcn-tiny", None)
    assert info["record"]["epochs"] == 2 and info["best"]["curve"]
    assert delete_study("fcn-tiny", None) == 2
    assert list_studies(None) == []
    with pytest.raises(StudyError, match="no study named 'fcn-tiny'"):
        show_study("fcn-tiny", None)


def test_bad_storage_urls_are_clear_and_redacted(workdir):
    with pytest.raises(StudyError, match="not a URL"):
        open_storage("nonsense")
    with pytest.raises(StudyError) as err:
        open_storage("postgresql://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(err.value)
    assert redact_url("postgresql://user:s3cret@host:5432/db") == "postgresql://user:***@host:5432/db"


def test_bad_config_rejected_before_anything_is_written(workdir, tiny_npz):
    for bad in ({"trials": 0}, {"model": "rnn"}, {"objectives": ("params",)}, {"sampler": "annealing"}):
        with pytest.raises(ConfigError):
            run_study(make_cfg(tiny_npz, **bad))
    assert (
        not (workdir / "studies" / "hpsearch.db").exists()
        or count_trials(load_study("fcn-tiny", None)) is None
    )
