"""Re-evaluating the top trials with fresh seeds: how much of the best score was luck.

The best of many noisy trials overstates its own accuracy (the winner's curse). This module
retrains each of the top-K feasible completed trials (ranked by search-time validation accuracy)
S times with new seeds and reports per trial validation and test accuracy as mean ± sd, and the
optimism gap: search-time validation accuracy minus the re-evaluated validation mean. The
winner is the trial with the best mean *validation* accuracy; test accuracy is reported and
never used to choose.

Everything is stored in the study user attribute ``evaluation`` (:data:`EVAL_KEY`), rewritten
after every finished retrain, so an interrupted run resumes where it stopped and ``show``, the
report and optuna-dashboard all read the same figures::

    {"version": 1,
     "settings": {"top": K, "seeds": S, "epochs": E or null (each trial's own), "updated": ISO time},
     "runs": [{"number", "seed_index", "seed", "epochs", "status", "val_acc", "test_acc",
               "seconds", "finished"}, ...],          # every retrain ever finished
     "rows": [{"number", "search_val", "epochs", "runs", "val_mean", "val_sd", "test_mean",
               "test_sd", "optimism_gap"}, ...],      # the latest call's top-K, in search order
     "winner": trial number or null}

A retrain is identified by (trial number, seed index, epochs); its seed follows from the
trial's own seed and the index, so a later call with more ``--seeds`` or a larger ``--top``
reuses every finished retrain and only trains the missing ones.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpsearch.config import ModelSpec, TrainConfig
from hpsearch.errors import ConfigError, StudyError
from hpsearch.study._manage import ranked_trials
from hpsearch.study._run import RECORD_KEY, config_from_record, load_study
from hpsearch.study._storage import open_storage

__all__ = [
    "EVAL_KEY",
    "EvalRow",
    "Evaluation",
    "RetrainJob",
    "RetrainResult",
    "evaluate_study",
    "evaluation_seed",
    "retrain",
    "summarize_runs",
]

EVAL_KEY = "evaluation"
SEED_STRIDE = 1_000_003  # evaluation seeds sit this far apart from the trial's own seed


@dataclass
class RetrainJob:
    """One retrain: a trial's model and training config with a fresh seed."""

    number: int
    seed_index: int
    spec: ModelSpec
    train: TrainConfig  # the trial's config with the evaluation seed and epochs


@dataclass
class RetrainResult:
    val_acc: float  # validation accuracy after the last epoch, as the search measured it
    test_acc: float | None  # None when the dataset has no test split or the run diverged
    seconds: float
    status: str = "completed"  # completed | diverged


@dataclass
class EvalRow:
    """One re-evaluated trial; ``val_sd``/``test_sd`` are None below two runs."""

    number: int
    search_val: float
    epochs: int
    runs: int
    val_mean: float | None
    val_sd: float | None
    test_mean: float | None
    test_sd: float | None
    optimism_gap: float | None  # search_val - val_mean: positive when the search was lucky


@dataclass
class Evaluation:
    study: str
    top: int
    seeds: int
    rows: list[EvalRow]
    winner: int | None  # by mean validation accuracy
    trained: int  # retrains run by this call
    reused: int  # finished retrains found in the study
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Retrain = Callable[[RetrainJob, Any], RetrainResult]


def evaluation_seed(trial_seed: int, index: int) -> int:
    """The training seed of the ``index``-th retrain: never the trial's own seed."""
    return trial_seed + SEED_STRIDE * (index + 1)


def retrain(job: RetrainJob, data, *, device="auto", threads: int | None = None) -> RetrainResult:
    """Train one job on ``data`` and measure validation and test accuracy."""
    from hpsearch.train import fit

    result = fit(job.spec, job.train, data, device=device, threads=threads, eval_test=True)
    return RetrainResult(result.val_acc, result.test_acc, round(result.seconds, 3), result.status)


def _jobs(trial: FrozenTrial, seeds: int, epochs: int | None) -> list[RetrainJob]:
    attrs = trial.user_attrs
    spec = ModelSpec.from_dict(attrs["spec"])
    base = attrs["train"]
    return [
        RetrainJob(
            trial.number,
            i,
            spec,
            TrainConfig.from_dict(
                {**base, "seed": evaluation_seed(base["seed"], i), "epochs": epochs or base["epochs"]}
            ),
        )
        for i in range(seeds)
    ]


def _key(number: int, seed_index: int, epochs: int) -> tuple[int, int, int]:
    return (number, seed_index, epochs)


def _run_key(run: dict) -> tuple[int, int, int]:
    return _key(run["number"], run["seed_index"], run["epochs"])


def _stored_runs(study: optuna.Study) -> list[dict]:
    stored = study.user_attrs.get(EVAL_KEY)
    runs = stored.get("runs") if isinstance(stored, dict) else None
    return [r for r in runs or [] if isinstance(r, dict) and {"number", "seed_index", "epochs"} <= set(r)]


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summarize_runs(
    chosen: list[FrozenTrial], runs: list[dict], seeds: int, epochs: int | None
) -> tuple[list[EvalRow], int | None]:
    """Rows for ``chosen`` (in search order) from the matching runs, and the winner.

    The winner has the highest mean validation accuracy; ties go to the better search rank.
    Test accuracy plays no part in it.
    """
    rows = []
    for t in chosen:
        n_epochs = epochs or t.user_attrs["train"]["epochs"]
        mine = [
            r for r in runs if r["number"] == t.number and r["epochs"] == n_epochs and r["seed_index"] < seeds
        ]
        val_mean, val_sd = _mean_sd([r["val_acc"] for r in mine])
        test_mean, test_sd = _mean_sd([r["test_acc"] for r in mine if r.get("test_acc") is not None])
        search_val = t.values[0]
        gap = None if val_mean is None else search_val - val_mean
        rows.append(
            EvalRow(t.number, search_val, n_epochs, len(mine), val_mean, val_sd, test_mean, test_sd, gap)
        )
    scored = [r for r in rows if r.val_mean is not None]
    winner = max(scored, key=lambda r: r.val_mean, default=None)  # max keeps the first of ties
    return rows, winner.number if winner else None


def _save(study: optuna.Study, runs: list[dict], rows: list[EvalRow], winner, settings: dict) -> None:
    # Merge with what is stored now, so a concurrent evaluate's finished runs are not dropped.
    merged = {_run_key(r): r for r in _stored_runs(study)}
    merged.update({_run_key(r): r for r in runs})
    study.set_user_attr(
        EVAL_KEY,
        {
            "version": 1,
            "settings": {**settings, "updated": _now()},
            "runs": sorted(merged.values(), key=_run_key),
            "rows": [asdict(r) for r in rows],
            "winner": winner,
        },
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_counts(top: int, seeds: int, epochs: int | None) -> None:
    for flag, value in (("--top", top), ("--seeds", seeds), ("--epochs", epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{flag} must be a whole number of at least 1, got {value!r}")


def evaluate_study(
    name: str,
    url: str | None,
    *,
    top: int = 3,
    seeds: int = 3,
    epochs: int | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    on_start: Callable[[dict], None] | None = None,
    on_run: Callable[[dict], None] | None = None,
    retrain_fn: Retrain | None = None,
) -> Evaluation:
    """Retrain the top ``top`` trials of a study ``seeds`` times each and store the results.

    Args:
        name: The study.
        url: Its storage URL (None: the default SQLite file).
        top: How many trials: the best completed, feasible trials by search-time validation accuracy.
        seeds: Retrains per trial, each with its own fresh seed.
        epochs: Epochs per retrain (default: each trial's own).
        data_dir: Where the study's named dataset lives.
        device: ``auto|cpu|cuda|mps``.
        threads: torch CPU threads.
        on_start: Called once with the plan (trials, seeds, retrains total and already done).
        on_run: Called after every retrain this call finishes, with its figures.
        retrain_fn: ``(job, data) -> RetrainResult``; the default trains with :func:`retrain`.

    Returns:
        The rows and the winner. Ctrl-C stops after the last finished retrain (``interrupted``);
        running it again finishes the rest.
    """
    from hpsearch.data import load_dataset

    _check_counts(top, seeds, epochs)
    study = load_study(name, url, storage=open_storage(url, heartbeat=False, create=False))
    record, chosen = _choose(study, name, top)
    notes = [] if len(chosen) == top else [f"only {len(chosen)} completed feasible trial(s) to evaluate"]
    jobs = [job for t in chosen for job in _jobs(t, seeds, epochs)]
    runs = _stored_runs(study)
    done = {_run_key(r) for r in runs}
    todo = [j for j in jobs if _key(j.number, j.seed_index, j.train.epochs) not in done]
    settings = {"top": top, "seeds": seeds, "epochs": epochs}
    data = None
    if todo:  # a finished evaluation only re-summarises: no device, no data needed
        if retrain_fn is None:
            from hpsearch.train import resolve_device

            retrain_fn = partial(retrain, device=resolve_device(device), threads=threads)
        data = load_dataset(config_from_record(record, data_dir=data_dir).data)
        if data.x_test is None:
            notes.append(f"dataset {record['dataset']!r} has no test split: test accuracy is not measured")
    reused = len(jobs) - len(todo)
    if on_start is not None:
        trials = [t.number for t in chosen]
        on_start({"study": name, "trials": trials, "seeds": seeds, "total": len(jobs), "reused": reused})
    trained, interrupted = 0, False
    try:
        for job in todo:
            runs.append(_run_record(job, retrain_fn(job, data)))
            trained += 1
            rows, winner = summarize_runs(chosen, runs, seeds, epochs)
            _save(study, runs, rows, winner, settings)  # stored at once: an interruption keeps it
            if on_run is not None:
                on_run({**runs[-1], "done": reused + trained, "total": len(jobs)})
    except KeyboardInterrupt:
        interrupted = True
    rows, winner = summarize_runs(chosen, runs, seeds, epochs)
    _save(study, runs, rows, winner, settings)
    return Evaluation(name, top, seeds, rows, winner, trained, reused, interrupted, notes)


def _choose(study: optuna.Study, name: str, top: int) -> tuple[dict, list[FrozenTrial]]:
    """The study's record and its ``top`` best completed feasible trials."""
    record = study.user_attrs.get(RECORD_KEY)
    if record is None:
        raise StudyError(
            f"study {name!r} was not created by hpsearch; it has no stored dataset to retrain on"
        )
    chosen = [t for t in ranked_trials(study) if "spec" in t.user_attrs and "train" in t.user_attrs][:top]
    if not chosen:
        raise StudyError(
            f"study {name!r} has no completed feasible trial to evaluate; run hpsearch optimize first"
        )
    return record, chosen


def _run_record(job: RetrainJob, result: RetrainResult) -> dict[str, Any]:
    return {
        "number": job.number,
        "seed_index": job.seed_index,
        "seed": job.train.seed,
        "epochs": job.train.epochs,
        "status": result.status,
        "val_acc": result.val_acc,
        "test_acc": result.test_acc,
        "seconds": result.seconds,
        "finished": _now(),
    }
