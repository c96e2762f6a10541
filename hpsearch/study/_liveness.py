"""Which process runs a trial, and failing (then retrying) the trials of processes that died.

Heartbeats find a dead worker anywhere, but only after the grace period (a
minute), and journal files have no heartbeats at all. A worker killed on *this*
machine can be recognised at once: every trial records its owner (host, PID
namespace, PID and the process start time), and a RUNNING trial whose owner is a
process of this machine that no longer exists is failed and its configuration
queued again, exactly as the heartbeat would do later. The start time guards
against a recycled PID; the namespace against containers that share a host name.
"""

from __future__ import annotations

import copy
import os
import socket
import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.study._storage import MAX_RETRY, RetryKilledTrial

__all__ = ["OWNER_KEY", "fail_dead_trials", "owner", "retry_trial", "running_here"]

OWNER_KEY = "worker"  # trial user attribute: the process that runs (or ran) the trial


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux: host name and PID alone
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3 of stat(5)); the start time is field 22.
    return None if fields[0] == "Z" else fields[19]


def owner() -> dict[str, Any]:
    """This process as a trial owner."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid_ns": _pid_namespace(), "pid": pid, "started": _start_time(pid)}


def _same_machine(who: Any, here: dict[str, Any]) -> bool:
    return isinstance(who, dict) and (who.get("host"), who.get("pid_ns")) == (here["host"], here["pid_ns"])


def running_here(study: optuna.Study) -> int:
    """RUNNING trials whose owner is a process of this machine."""
    here = owner()
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return sum(_same_machine(t.user_attrs.get(OWNER_KEY), here) for t in trials)


def _is_dead(who: dict[str, Any], here: dict[str, Any]) -> bool:
    """True only when ``who`` is certainly a process of this machine that has exited."""
    if not _same_machine(who, here):
        return False  # another machine or container: the heartbeat decides
    pid = who.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process; /proc may hide it from us, so call it alive
        return False
    started = _start_time(pid)
    if started is None:
        return os.path.isdir("/proc")  # a zombie (killed, not yet reaped by its parent), or just gone
    return who.get("started") is not None and started != who["started"]  # the PID was reused


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose owner on this machine has died; queue their configurations again.

    Returns:
        The numbers of the trials failed here.
    """
    storage, here, failed = study._storage, owner(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = trial.user_attrs.get(OWNER_KEY)
        if not isinstance(who, dict) or not _is_dead(who, here):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, "outcome", "killed")
            storage.set_trial_user_attr(
                trial._trial_id, "reason", f"worker process {who['pid']} on {who['host']} died"
            )
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker (or the heartbeat) got there first
        failed.append(trial.number)
        retry_trial(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return failed


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's configuration again (at most MAX_RETRY times), as heartbeats do."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryKilledTrial(max_retry=MAX_RETRY)(study, trial)
