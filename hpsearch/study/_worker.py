"""One worker: ask for a trial, run it with a heartbeat, tell the result; repeat until the study is full.

Workers (processes on this machine, or ``hpsearch worker`` anywhere) share
nothing but the storage. Each loop:

1. fails trials whose worker stopped sending heartbeats, or whose worker process on this
   machine has died (they are retried as WAITING copies);
2. under a claim lock, counts finished + running trials against the target and asks for a
   trial only if one is still needed, so N workers finish exactly the requested number;
   the new trial records its owner process at once, inside the lock;
3. runs the objective with a heartbeat thread and tells the state (COMPLETE, PRUNED, FAIL).

Ctrl-C/SIGTERM mark the running trial FAIL (outcome ``interrupted``), queue its configuration
again and stop the worker; every finished trial is already stored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import StudyError
from hpsearch.study import _faults
from hpsearch.study._liveness import OWNER_KEY, fail_dead_trials, owner, retry_trial, running_here
from hpsearch.study._storage import claim_lock

__all__ = [
    "TrialCounts",
    "count_trials",
    "quiet_optuna",
    "raise_on_sigterm",
    "run_worker",
    "sigterm_as_interrupt",
]

POLL_SECONDS = 2.0  # how often an idle worker checks whether a running trial failed
MAX_CONSECUTIVE_ERRORS = 3  # an objective that keeps crashing is a bug, not bad luck


@dataclass
class TrialCounts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        """Trials that count towards ``--trials``: completed or pruned."""
        return self.complete + self.pruned


def count_trials(study: optuna.Study) -> TrialCounts:
    counts = TrialCounts()
    names = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }
    for t in study.get_trials(deepcopy=False):
        setattr(counts, names[t.state], getattr(counts, names[t.state]) + 1)
    return counts


def quiet_optuna() -> None:
    """hpsearch reports progress itself; Optuna's per-trial log lines and notices are noise here."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # We run the heartbeat thread ourselves around ask/tell (see _run_one).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def raise_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C (KeyboardInterrupt) in this process."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises KeyboardInterrupt (in the main thread); the old handler returns after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _claim(study: optuna.Study, url: str | None, target: int) -> optuna.Trial | bool | None:
    """A new trial, None to wait for running ones, or False when the study has enough."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # We run the heartbeat thread ourselves around ask/tell (see _run_one).
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        optuna.storages.fail_stale_trials(study)
        with claim_lock(url, study.study_name):
            fail_dead_trials(study)  # so every RUNNING trial of this machine is alive
            counts = count_trials(study)
            if counts.finished >= target:
                return False
            # Without heartbeats a RUNNING trial of another machine may belong to a dead process
            # forever: wait only on this machine's (journal files).
            running = counts.running if is_heartbeat_enabled(study._storage) else running_here(study)
            if counts.waiting == 0 and counts.finished + running >= target:
                return None
            trial = study.ask()
            trial.set_user_attr(OWNER_KEY, owner())
            return trial


def _run_one(study: optuna.Study, trial: optuna.Trial, objective: Callable) -> FrozenTrial:
    with get_heartbeat_thread(trial._trial_id, study._storage):
        try:
            values = objective(trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            values, state = None, TrialState.PRUNED
        except KeyboardInterrupt:
            trial.set_user_attr("outcome", "interrupted")
            trial.set_user_attr("reason", "interrupted (Ctrl-C or SIGTERM)")
            # A stopped job (Slurm time limit, preempted pod) did not judge the configuration:
            # it runs again when the study resumes.
            retry_trial(study, study.tell(trial, state=TrialState.FAIL))
            raise
        except Exception as exc:  # a bug or a resource error: record it and carry on
            trial.set_user_attr("outcome", "error")
            trial.set_user_attr("reason", f"{type(exc).__name__}: {exc}"[:500])
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            values, state = None, TrialState.FAIL
    return study.tell(trial, values, state=state)


def run_worker(
    study: optuna.Study,
    objective: Callable,
    *,
    target: int,
    url: str | None,
    deadline: float | None = None,
    on_trial: Callable[[FrozenTrial], None] | None = None,
) -> int:
    """Run trials until ``target`` trials are finished (complete or pruned) or ``deadline`` passes.

    Args:
        study: The loaded study (with this run's sampler and pruner).
        objective: Called with each trial; returns values or raises ``optuna.TrialPruned``.
        target: Finished trials the study must reach.
        url: The storage URL (for the claim lock).
        deadline: ``time.time()`` after which no new trial starts.
        on_trial: Called with each trial this worker finished.

    Returns:
        The number of trials this worker ran.
    """
    _faults.arm(study._storage)
    ran = errors = 0
    while deadline is None or time.time() < deadline:
        trial = _claim(study, url, target)
        if trial is False:
            break
        if trial is None:
            time.sleep(POLL_SECONDS)
            continue
        frozen = _run_one(study, trial, objective)
        ran += 1
        _faults.reach("trial")
        if on_trial is not None:
            on_trial(frozen)
        errors = errors + 1 if frozen.user_attrs.get("outcome") == "error" else 0
        if errors >= MAX_CONSECUTIVE_ERRORS:
            raise StudyError(
                f"{errors} trials in a row failed with errors; last: {frozen.user_attrs.get('reason')} "
                f"(see trial {frozen.number}'s 'traceback' attribute)"
            )
    return ran
