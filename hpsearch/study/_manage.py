"""Listing, showing and deleting studies: plain data for the CLI to print."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import DataConfig, ModelSpec, TrainConfig
from hpsearch.errors import StudyError
from hpsearch.study._run import RECORD_KEY, load_study
from hpsearch.study._storage import artifact_dir, open_storage
from hpsearch.study._worker import TrialCounts, count_trials

__all__ = [
    "StudyRow",
    "delete_study",
    "describe_trial",
    "is_feasible",
    "list_studies",
    "ranked_trials",
    "show_study",
    "trial_config",
]


@dataclass
class StudyRow:
    name: str
    model: str
    dataset: str
    counts: TrialCounts
    best_value: float | None
    objectives: list[str]


def is_feasible(trial: FrozenTrial) -> bool:
    """Optuna's rule: a trial is feasible when every constraint value is <= 0 (or it has none)."""
    return all(v <= 0 for v in trial.constraints.values())


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed, feasible trials, best validation accuracy (the first objective) first.

    Ties keep trial order, as Optuna's ``best_trial`` does; infeasible trials are never ranked,
    so they never become "best" for ``show``, ``evaluate`` or ``export``.
    """
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and math.isfinite(t.values[0]) and is_feasible(t)
    ]
    return sorted(done, key=lambda t: -t.values[0])


def _best_accuracy(study: optuna.Study) -> float | None:
    try:
        if len(study.directions) == 1:
            return study.best_value
        return max(t.values[0] for t in study.best_trials)
    except ValueError:
        return None


def list_studies(url: str | None) -> list[StudyRow]:
    """Every study in the storage with its trial counts and best validation accuracy."""
    storage = open_storage(url, heartbeat=False)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        record = study.user_attrs.get(RECORD_KEY, {})
        rows.append(
            StudyRow(
                name=summary.study_name,
                model=record.get("model", "?"),
                dataset=record.get("dataset", "?"),
                counts=count_trials(study),
                best_value=_best_accuracy(study),
                objectives=record.get("objectives", ["?"]),
            )
        )
    return rows


def describe_trial(trial: FrozenTrial) -> dict[str, Any]:
    """The facts about one trial that ``show`` and ``--json`` print."""
    curve = trial.user_attrs.get("curve", [])
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": trial.values,
        "outcome": trial.user_attrs.get("outcome"),
        "reason": trial.user_attrs.get("reason"),
        "baseline": trial.user_attrs.get("baseline"),
        "params": trial.params,
        "spec": trial.user_attrs.get("spec"),
        "train": trial.user_attrs.get("train"),
        "params_count": trial.user_attrs.get("params_count"),
        "flops": trial.user_attrs.get("flops"),
        "latency_ms": trial.user_attrs.get("latency_ms"),
        "seed": trial.user_attrs.get("seed"),
        "epochs_trained": len(curve),
        "curve": curve,
        "constraints": trial.constraints or None,  # relative excess over each limit; <= 0 is feasible
        "feasible": is_feasible(trial),
        "evaluation": trial.user_attrs.get("evaluation"),
        "weights_artifact": trial.user_attrs.get("weights_artifact"),
        "wall_seconds": trial.user_attrs.get("wall_seconds"),
    }


def show_study(name: str, url: str | None) -> dict[str, Any]:
    """A study's record, counts, best trial (or Pareto set) as plain data."""
    study = load_study(name, url, storage=open_storage(url, heartbeat=False, create=False))
    counts = count_trials(study)
    out: dict[str, Any] = {
        "study": name,
        "record": study.user_attrs.get(RECORD_KEY, {}),
        "counts": vars(counts),
        "directions": [d.name.lower() for d in study.directions],
        "evaluation": study.user_attrs.get("evaluation"),
    }
    try:
        if len(study.directions) == 1:
            out["best"] = describe_trial(study.best_trial)
        else:
            front = sorted(study.best_trials, key=lambda t: -t.values[0])  # feasible trials only
            out["pareto"] = [describe_trial(t) for t in front]
    except ValueError:
        out["best"] = None
    return out


def delete_study(name: str, url: str | None) -> int:
    """Delete a study and its saved weights. Returns the number of trials deleted."""
    storage = open_storage(url, heartbeat=False, create=False)
    study = load_study(name, url, storage=storage)
    trials = study.get_trials(deepcopy=False)
    folder = artifact_dir(url)
    for t in trials:
        artifact = t.user_attrs.get("weights_artifact")
        if artifact:
            with contextlib.suppress(OSError):
                (folder / artifact).unlink()
    optuna.delete_study(study_name=name, storage=storage)
    return len(trials)


def trial_config(name: str, url: str | None, number: int) -> tuple[ModelSpec, TrainConfig, DataConfig]:
    """The exact model, training config (with its seed) and data split of one stored trial.

    ``hpsearch train --from-trial STUDY:N`` retrains with these; on the CPU the result repeats the trial.
    """
    study = load_study(name, url, storage=open_storage(url, heartbeat=False, create=False))
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials:
        raise StudyError(f"study {name!r} has no trial {number}; it has trials 0-{len(study.trials) - 1}")
    attrs = trials[0].user_attrs
    if "spec" not in attrs or "train" not in attrs:
        raise StudyError(
            f"trial {number} of {name!r} never built a model ({attrs.get('reason', 'no spec stored')})"
        )
    record = study.user_attrs.get(RECORD_KEY, {})
    data = DataConfig(
        dataset=record.get("dataset", "fashion-mnist"),
        val_size=record.get("val_size", 5000),
        split_seed=record.get("split_seed", 0),
    )
    return ModelSpec.from_dict(attrs["spec"]), TrainConfig.from_dict(attrs["train"]), data
