"""Crash safety: kill -9 at chosen points and resume; SIGTERM; three workers and the dashboard on one
SQLite file; NaN, inf and exploding runs.

The kills are timed by fault points (``hpsearch.study._faults``): the child stops at a known point
and writes a mark file, then the test sends the signal, so every run kills at the same place.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading

import optuna
import pytest
from optuna.trial import TrialState
from processes import (
    FCN_SPACE,
    Proc,
    fault_env,
    finished,
    free_port,
    get_json,
    trial_records,
    wait_for,
)

from hpsearch.config import DataConfig, SearchConfig
from hpsearch.data import load_dataset
from hpsearch.space import load_space
from hpsearch.study import join_study, open_storage, open_study, run_study
from hpsearch.study._liveness import OWNER_KEY, fail_dead_trials, owner
from hpsearch.study._objective import Objective
from hpsearch.synthetic import write_npz

NAME = "fcn-tiny"
TRIALS = 4


@pytest.fixture
def run_dir(tmp_path, tiny_npz):
    (tmp_path / "space.toml").write_text(FCN_SPACE)
    return tmp_path


def optimize_args(run_dir, tiny_npz, *extra: str) -> list[str]:
    return [
        "optimize",
        "--model",
        "fcn",
        "--dataset",
        tiny_npz,
        "--val-size",
        "100",
        "--trials",
        str(TRIALS),
        "--epochs",
        "2",
        "--space",
        str(run_dir / "space.toml"),
        "--storage",
        f"sqlite:///{run_dir}/studies/hpsearch.db",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--seed",
        "0",
        "--pruner",
        "none",
        *extra,
    ]


def _integrity(run_dir) -> str:
    with sqlite3.connect(run_dir / "studies" / "hpsearch.db") as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# (fault point, count): where the process stops to be killed, and what is running then.
KILL_POINTS = [
    pytest.param("batch", 30, id="mid-epoch"),  # the 30th training batch: inside a trial after the first
    pytest.param("write", 2, id="during-storage-write"),  # inside the transaction telling trial 1's result
    pytest.param("trial", 2, id="between-trials", marks=pytest.mark.slow),  # trial 1 stored, none running
]


@pytest.mark.parametrize(("point", "count"), KILL_POINTS)
def test_kill_9_then_resume_loses_nothing(run_dir, tiny_npz, point, count):
    url = f"sqlite:///{run_dir}/studies/hpsearch.db"
    mark = run_dir / "stopped"
    proc = Proc(optimize_args(run_dir, tiny_npz), run_dir, fault_env(point, count, mark))
    try:
        wait_for(mark.exists, f"fault point {point}:{count}", proc)
        before = trial_records(url, NAME)  # what the study holds at the moment of the kill
        proc.signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    finally:
        proc.stop()
    done = finished(before)
    assert done, "the kill point must come after at least one finished trial"
    running = [n for n, r in before.items() if r["state"] == "RUNNING"]
    assert len(running) == (0 if point == "trial" else 1)

    # 1. The database opens, is consistent, and holds every finished trial exactly as it was.
    assert _integrity(run_dir) == "ok"
    after = trial_records(url, NAME)
    assert finished(after) == done
    assert [n for n, r in after.items() if r["state"] == "RUNNING"] == running  # nobody failed it yet

    # 2. Resuming fails the killed trial at once (its process is gone), runs its configuration
    #    again, and finishes the study's target of TRIALS.
    summary = join_study(NAME, url, device="cpu", threads=1)
    assert not summary.interrupted
    final = trial_records(url, NAME)
    assert {n: final[n] for n in done} == done
    assert summary.counts.finished == TRIALS and summary.counts.running == 0
    assert summary.counts.failed == len(running)
    for number in running:
        killed = final[number]
        assert killed["state"] == "FAIL" and killed["user_attrs"]["outcome"] == "killed"
        retries = [r for r in final.values() if r["system_attrs"].get("failed_trial") == number]
        assert len(retries) == 1
        assert retries[0]["state"] in ("COMPLETE", "PRUNED")
        assert retries[0]["params"] == killed["params"]
        assert "reason" not in retries[0]["user_attrs"] or retries[0]["state"] == "PRUNED"


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigterm_is_handled_like_ctrl_c(run_dir, tiny_npz, jobs):
    """SIGTERM (kill, Slurm, Kubernetes) mid-epoch: the running trial fails, the rest is kept, exit 130.

    With --jobs 2 the signal goes to the parent, which passes it on to its worker processes.
    """
    url = f"sqlite:///{run_dir}/studies/hpsearch.db"
    mark = run_dir / "stopped"
    proc = Proc(optimize_args(run_dir, tiny_npz, "--jobs", str(jobs)), run_dir, fault_env("batch", 30, mark))
    try:
        wait_for(mark.exists, "the 30th batch", proc)
        before = trial_records(url, NAME)
        proc.signal(signal.SIGTERM)
        code = proc.wait()
    finally:
        proc.stop()
    err = proc.stderr
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted: every finished trial is kept" in err
    assert f"hpsearch worker --study {NAME} --storage {url}" in err  # how to resume
    after = trial_records(url, NAME)
    assert {n: after[n] for n in finished(before)} == finished(before)
    running = [n for n, r in before.items() if r["state"] == "RUNNING"]
    assert running
    for number in running:  # failed as interrupted (or, another worker's, finished just in time)
        assert after[number]["state"] != "RUNNING"
        if after[number]["state"] == "FAIL":
            assert after[number]["user_attrs"]["outcome"] == "interrupted"
    assert after[running[0]]["state"] == "FAIL" or jobs > 1
    assert not [r for r in after.values() if r["state"] == "RUNNING"]
    # The interrupted configuration waits to run again when the study resumes. (With two workers,
    # a retry may itself have been interrupted: then its own retry waits, in the same chain.)
    for number, r in after.items():
        if r["state"] == "FAIL":
            origin = r["system_attrs"].get("failed_trial", number)
            chain = [q for q in after.values() if q["system_attrs"].get("failed_trial") == origin]
            assert [q["state"] for q in chain if q["state"] != "FAIL"] in (
                ["WAITING"],
                ["COMPLETE"],
                ["PRUNED"],
            )
            assert all(q["params"] == r["params"] for q in chain)


def test_three_workers_and_the_dashboard_on_one_sqlite_file(run_dir, tiny_npz):
    """--jobs 3 writes while optuna-dashboard (started by hpsearch dashboard) reads the same file."""
    url = f"sqlite:///{run_dir}/studies/hpsearch.db"
    port = free_port()
    dashboard = Proc(["dashboard", "--storage", url, "--port", str(port)], run_dir, name="dashboard")
    workers = None
    try:
        api = f"http://127.0.0.1:{port}/api/studies"
        wait_for(lambda: get_json(api)[0] == 200, "the dashboard to answer", dashboard, timeout=120)
        args = optimize_args(run_dir, tiny_npz, "--jobs", "3", "--pruner", "median")
        args[args.index("--trials") + 1] = "15"
        workers = Proc(args, run_dir, name="optimize")
        reads, errors, stop = [0], [], threading.Event()

        def poll_like_a_browser():
            while not stop.is_set():
                status, body = get_json(api)
                reads[0] += 1
                if status != 200:
                    errors.append(status)
                    continue
                for study in body["study_summaries"]:
                    status, _ = get_json(f"{api}/{study['study_id']}?after=0")
                    reads[0] += 1
                    if status != 200:
                        errors.append(status)

        reader = threading.Thread(target=poll_like_a_browser)
        reader.start()
        try:
            code = workers.wait()
        finally:
            stop.set()
            reader.join(timeout=60)
    finally:
        dashboard.stop()
        if workers is not None:
            workers.stop()
    logs = workers.stdout + workers.stderr + dashboard.stderr
    assert code == 0, workers.stderr
    assert "database is locked" not in logs and "Traceback" not in logs
    assert reads[0] > 0 and errors == []
    trials = trial_records(url, NAME)
    states = [r["state"] for r in trials.values()]
    assert len(finished(trials)) == 15 and states.count("FAIL") == 0 and len(trials) == 15
    assert sorted(trials) == list(range(15))
    assert len({r["user_attrs"][OWNER_KEY]["pid"] for r in trials.values()}) >= 2  # they ran in parallel
    # Each worker has its own sampler seed, so no configuration is sampled twice.
    params = [tuple(sorted(r["params"].items())) for r in trials.values()]
    assert len(set(params)) == len(params)


def test_a_dead_workers_trial_is_failed_and_retried_but_live_and_foreign_ones_are_not(workdir):
    storage = open_storage("sqlite:///studies/hpsearch.db", heartbeat=False)  # the PID alone decides
    study = optuna.create_study(study_name="s", storage=storage)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    me = owner()
    owners = {
        "dead": {**me, "pid": dead_pid, "started": "1"},
        "alive": me,
        "recycled": {**me, "started": "-1"},  # our PID, but started at another time: a reused PID
        "foreign": {**me, "host": "elsewhere", "pid": dead_pid},
    }
    trials = {}
    for name, who in owners.items():
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr(OWNER_KEY, who)
        trial.set_user_attr("curve", [{"epoch": 1}])
        trials[name] = trial.number
    failed = fail_dead_trials(study)
    assert sorted(failed) == sorted([trials["dead"], trials["recycled"]])
    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[trials["alive"]].state == TrialState.RUNNING
    assert by_number[trials["foreign"]].state == TrialState.RUNNING  # the heartbeat decides for others
    retries = [t for t in by_number.values() if t.state == TrialState.WAITING]
    assert sorted(t.system_attrs["failed_trial"] for t in retries) == sorted(failed)
    for retry in retries:  # the configuration comes back, not what the dead run recorded
        assert retry.params == by_number[retry.system_attrs["failed_trial"]].params
        assert retry.user_attrs == {}
    assert fail_dead_trials(study) == []  # idempotent


# Numerical faults ------------------------------------------------------------------------------

NUMERIC_SPACE = """
[space]
n_layers = 1
width = 32
activation = "relu"
batch_norm = false
dropout = 0.0
init = "normal"
init_std = { low = 0.01, high = 1e30, log = true }
optimizer = ["sgd", "adam"]
lr = { low = 1e-4, high = 100.0, log = true }
momentum = 0.0
use_weight_decay = false
use_l1 = false
batch_size = 32
schedule = "none"
"""
HEALTHY = {"optimizer": "adam", "lr": 0.01, "init_std": 0.05}
FAULTS = [
    # (params, what the reason says): exploding gradients with a finite loss end at chance accuracy;
    # a larger step overflows the loss to inf; a huge initialisation gives inf logits and a NaN loss.
    ({"optimizer": "sgd", "lr": 10.0, "init_std": 0.05}, "at chance"),
    ({"optimizer": "sgd", "lr": 100.0, "init_std": 0.05}, "non-finite"),
    ({"optimizer": "adam", "lr": 10.0, "init_std": 0.05}, "at chance"),
    ({"optimizer": "sgd", "lr": 0.01, "init_std": 1e25}, "non-finite training loss in epoch 1"),
]


@pytest.fixture(scope="module")
def learnable_npz(tmp_path_factory):
    """Enough images (1,500 train, 500 validation) that a healthy run is clearly above chance."""
    path = tmp_path_factory.mktemp("numeric") / "mid.npz"
    return str(write_npz(path, n_train=2000, n_test=10, shape=(12, 12)))


@pytest.fixture
def numeric_cfg(workdir, learnable_npz):
    (workdir / "numeric.toml").write_text(NUMERIC_SPACE)
    return SearchConfig(
        model="fcn",
        trials=len(FAULTS) + 1,
        epochs=3,
        data=DataConfig(dataset=learnable_npz, val_size=500),
        space_file=str(workdir / "numeric.toml"),
        seed=0,
        device="cpu",
        threads=1,
        pruner="none",
    )


@pytest.mark.parametrize(
    ("params", "reason"), FAULTS, ids=["sgd-lr10", "sgd-lr100", "adam-lr10", "huge-init"]
)
def test_numerical_fault_ends_as_a_diverged_pruned_trial(workdir, numeric_cfg, params, reason):
    space = load_space("fcn", numeric_cfg.space_file)
    objective = Objective(numeric_cfg, load_dataset(numeric_cfg.data), space, workdir / "artifacts")
    trial = optuna.trial.FixedTrial(params)
    with pytest.raises(optuna.TrialPruned):
        objective(trial)
    assert trial.user_attrs["outcome"] == "diverged"
    assert reason in trial.user_attrs["reason"]
    curve = trial.user_attrs.get("curve", [])  # empty when the first epoch already blew up
    assert all(all(v == v for v in epoch.values()) for epoch in curve)  # no NaN is stored


def test_a_study_carries_on_past_numerical_faults(workdir, numeric_cfg):
    study = open_study(numeric_cfg, load_space("fcn", numeric_cfg.space_file), open_storage(None))
    for params, _ in FAULTS:
        study.enqueue_trial(params)
    study.enqueue_trial(HEALTHY)
    summary = run_study(numeric_cfg)
    assert summary.counts.finished == len(FAULTS) + 1 and summary.counts.failed == 0
    trials = sorted(
        optuna.load_study(study_name="fcn-mid", storage=open_storage(None)).trials, key=lambda t: t.number
    )
    assert [t.state for t in trials] == [TrialState.PRUNED] * len(FAULTS) + [TrialState.COMPLETE]
    assert {t.user_attrs["outcome"] for t in trials[:-1]} == {"diverged"}
    assert trials[-1].user_attrs["outcome"] == "completed" and trials[-1].value > 0.15  # chance is 0.1


@pytest.mark.slow
def test_journal_file_with_two_workers_finishes_exactly(workdir, tiny_npz):
    """Journal files have no heartbeats; workers still wait on this machine's running trials, so
    --jobs 2 stops at the requested count instead of overshooting."""
    (workdir / "space.toml").write_text(FCN_SPACE)
    cfg = SearchConfig(
        model="fcn",
        trials=6,
        epochs=1,
        data=DataConfig(dataset=tiny_npz, val_size=100),
        storage=f"journal:///{workdir}/studies/study.log",
        space_file=str(workdir / "space.toml"),
        jobs=2,
        device="cpu",
        threads=1,
    )
    summary = run_study(cfg)
    assert summary.counts.finished == 6 and summary.counts.running == 0 and summary.counts.failed == 0
    assert len(optuna.load_study(study_name=NAME, storage=open_storage(cfg.storage)).trials) == 6
