"""Distributed search on a real PostgreSQL server: ``hpsearch optimize`` plus two ``hpsearch worker``
processes on one study, as they would run on three machines.

Needs HPSEARCH_TEST_POSTGRES_URL (``.ci/postgres.sh`` starts a throwaway server and prints it);
skipped without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from urllib.parse import urlsplit

import optuna
import pytest
from processes import FCN_SPACE, Proc, fault_env, finished, trial_records, wait_for

from hpsearch.study import delete_study
from hpsearch.synthetic import write_npz

URL = os.environ.get("HPSEARCH_TEST_POSTGRES_URL")
TRIALS = 15

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not URL, reason="HPSEARCH_TEST_POSTGRES_URL is not set (.ci/postgres.sh sets it in CI)"
    ),
]


@pytest.fixture(scope="module")
def learnable_npz(tmp_path_factory):
    """1,500 training images: trials long enough (about a second) that all three processes get some."""
    return str(write_npz(tmp_path_factory.mktemp("pg") / "mid.npz", n_train=2000, n_test=10, shape=(12, 12)))


@pytest.fixture
def pg_study(tmp_path):
    """A fresh study name on the shared server, deleted afterwards."""
    pytest.importorskip(
        "psycopg2", reason="the PostgreSQL driver extra is not installed: pip install 'hpsearch[postgres]'"
    )
    name = f"pg-{uuid.uuid4().hex[:8]}"
    yield name
    with contextlib.suppress(Exception):  # cleanup only: the test has already passed or failed
        delete_study(name, URL)


def test_three_processes_share_one_study_on_postgresql(tmp_path, learnable_npz, pg_study):
    password = urlsplit(URL).password
    space = tmp_path / "space.toml"
    space.write_text(FCN_SPACE)

    # Random sampling gives the pruner a spread of curves to cut; 3 epochs give it steps to cut at.
    optimize_args = ["optimize", "--model", "fcn", "--dataset", learnable_npz, "--val-size", "500"]
    optimize_args += ["--trials", str(TRIALS), "--epochs", "3", "--space", str(space), "--storage", URL]
    optimize_args += ["--study-name", pg_study, "--sampler", "random", "--pruner", "percentile"]
    local = ["--device", "cpu", "--threads", "1"]
    # The first process creates the study and runs one trial, then waits (a fault point) until
    # both workers have joined and started trials, so that all three share the study however
    # long the workers take to start.
    mark = tmp_path / "optimize-waits"
    procs = [Proc([*optimize_args, *local], tmp_path, fault_env("trial", 1, mark), name="optimize")]
    try:
        wait_for(mark.exists, "the first trial", procs[0])
        worker_args = ["worker", "--study", pg_study, "--storage", URL]
        procs += [Proc([*worker_args, *local], tmp_path, name=f"worker{i}") for i in (1, 2)]

        def workers_joined() -> bool:
            owners = {
                r["user_attrs"].get("worker", {}).get("pid") for r in trial_records(URL, pg_study).values()
            }
            return all(p.popen.pid in owners for p in procs[1:]) or any(
                p.popen.poll() is not None for p in procs
            )

        wait_for(workers_joined, "the workers to start trials", every=0.5)
        mark.unlink()
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:
            p.stop()
    for p, code in zip(procs, codes, strict=True):
        assert code == 0, p.stderr

    trials = trial_records(URL, pg_study)
    # Exactly the requested number, none failed or left running, every number once.
    assert len(finished(trials)) == TRIALS and len(trials) == TRIALS
    assert sorted(trials) == list(range(TRIALS))
    # All three processes ran trials.
    pids = {r["user_attrs"]["worker"]["pid"] for r in trials.values()}
    assert pids == {p.popen.pid for p in procs}
    # Pruning worked across workers: some trials were pruned by comparing with trials that
    # other processes had reported to the shared database.
    pruned = [r for r in trials.values() if r["user_attrs"].get("outcome") == "pruned"]
    assert pruned, "a 33rd-percentile pruner over 15 random trials prunes some"
    for r in pruned:
        assert "pruned by percentile" in r["user_attrs"]["reason"]

    def compared_with_another_process(r: dict) -> bool:
        earlier = [o for o in trials.values() if o["state"] == "COMPLETE" and o["completed"] < r["completed"]]
        return any(o["user_attrs"]["worker"]["pid"] != r["user_attrs"]["worker"]["pid"] for o in earlier)

    assert any(compared_with_another_process(r) for r in pruned)

    # The password appears in no output, study attribute or trial attribute, nor in the report.
    report = tmp_path / "report.html"
    show = Proc(["show", pg_study, "--storage", URL, "--json"], tmp_path, name="show")
    listing = Proc(["studies", "--storage", URL, "--json"], tmp_path, name="studies")
    html = Proc(["report", pg_study, "--storage", URL, "--out", str(report)], tmp_path, name="report")
    for p in (show, listing, html):
        assert p.wait() == 0, p.stderr
    assert json.loads(show.stdout)["counts"]["running"] == 0
    texts = [p.stdout + p.stderr for p in (*procs, show, listing, html)]
    study = optuna.load_study(study_name=pg_study, storage=URL)
    attrs = [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
    texts += [report.read_text(), json.dumps([trials, attrs], default=str)]
    for text in texts:
        assert password not in text
