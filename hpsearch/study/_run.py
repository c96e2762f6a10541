"""Creating, resuming and running studies with one or more worker processes."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import hpsearch
from hpsearch.baselines import BASELINES
from hpsearch.config import DataConfig, SearchConfig
from hpsearch.errors import ConfigError, StudyError
from hpsearch.space import SearchSpace, load_space, spec_to_params
from hpsearch.study._choices import PRUNERS, SAMPLERS, make_pruner, make_sampler
from hpsearch.study._storage import artifact_dir, open_storage, redact_url, resolve_storage_url
from hpsearch.study._worker import TrialCounts, count_trials, quiet_optuna, raise_on_sigterm, run_worker

__all__ = [
    "RECORD_KEY",
    "RunSummary",
    "config_from_record",
    "join_study",
    "load_study",
    "open_study",
    "run_study",
    "study_record",
]

RECORD_KEY = "hpsearch"  # the study user attribute holding the run's defining configuration
# A resumed run must agree on these, or its trials would not be comparable with the stored ones.
IDENTITY = ("model", "dataset", "val_size", "split_seed", "epochs", "space", "objectives", "constraints")


@dataclass
class RunSummary:
    study_name: str
    storage: str  # password redacted
    counts: TrialCounts
    target: int
    ran: int
    seconds: float
    best_value: float | None
    best_number: int | None
    interrupted: bool = False


def study_record(cfg: SearchConfig, space: SearchSpace) -> dict[str, Any]:
    """The stored definition of a study: what must match on resume, and how it was run."""
    return {
        "model": cfg.model,
        "dataset": cfg.data.dataset,
        "val_size": cfg.data.val_size,
        "split_seed": cfg.data.split_seed,
        "epochs": cfg.epochs,
        "space": space.to_dict(),
        "objectives": list(cfg.objectives),
        "constraints": {
            "max_params": cfg.max_params,
            "max_flops": cfg.max_flops,
            "max_latency_ms": cfg.max_latency_ms,
        },
        "sampler": cfg.sampler,
        "pruner": cfg.pruner,
        "seed": cfg.seed,
        "hpsearch_version": hpsearch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def config_from_record(record: dict[str, Any], **overrides: Any) -> SearchConfig:
    """Rebuild a run configuration from a study's record (for workers joining it)."""
    data = DataConfig(dataset=record["dataset"], val_size=record["val_size"], split_seed=record["split_seed"])
    cfg = SearchConfig(
        model=record["model"],
        epochs=record["epochs"],
        data=data,
        sampler=record.get("sampler", "tpe"),
        pruner=record.get("pruner", "median"),
        seed=record.get("seed"),
        objectives=tuple(record.get("objectives", ["accuracy"])),
        **{k: v for k, v in record.get("constraints", {}).items()},
    )
    for key, value in overrides.items():
        if key == "data_dir":
            cfg.data.data_dir = value
        elif value is not None:
            setattr(cfg, key, value)
    return cfg


def _conflicts(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    out = []
    for key in IDENTITY:
        if stored.get(key) != wanted.get(key):
            if key == "space":
                out.append("the search space differs")
            else:
                out.append(f"{key} was {stored.get(key)!r}, now {wanted.get(key)!r}")
    return out


def load_study(name: str, url: str | None, **kwargs: Any) -> optuna.Study:
    """Load an existing study, with a clear error (listing the studies) when it does not exist."""
    storage = kwargs.pop("storage", None) or open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        known = f"studies here: {', '.join(names)}" if names else "there are no studies in this storage"
        raise StudyError(
            f"no study named {name!r} in {redact_url(resolve_storage_url(url))}; {known}"
        ) from None


def open_study(cfg: SearchConfig, space: SearchSpace, storage) -> optuna.Study:
    """Create the study, or resume it after checking the stored definition matches this run."""
    wanted = study_record(cfg, space)
    sampler = make_sampler(cfg.sampler, cfg.seed, len(cfg.objectives))
    pruner = make_pruner(cfg.pruner, cfg.epochs)
    directions = ["maximize"] + ["minimize"] * (len(cfg.objectives) - 1)
    try:
        study = optuna.load_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        try:
            study = optuna.create_study(
                study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner, directions=directions
            )
            study.set_user_attr(RECORD_KEY, wanted)
            return study
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
            study = optuna.load_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner)
    stored = study.user_attrs.get(RECORD_KEY)
    if stored is None:
        raise StudyError(f"study {cfg.name!r} was not created by hpsearch; choose another --study-name")
    problems = _conflicts(stored, wanted)
    if problems:
        raise StudyError(
            f"study {cfg.name!r} exists with other settings ({'; '.join(problems)}); rerun with the "
            f"original settings to resume it, or start a new study with --study-name"
        )
    return study


def enqueue_baselines(study: optuna.Study, cfg: SearchConfig, space: SearchSpace) -> list[str]:
    """Enqueue the hand-tuned baselines of this model type once per study; returns their ids."""
    if study.user_attrs.get("baselines_enqueued"):
        return []
    ids, skipped = [], {}
    for baseline in BASELINES.values():
        if baseline.kind != cfg.model:
            continue
        try:
            params = spec_to_params(baseline.model, baseline.train, space)
        except ConfigError as exc:  # the user's space excludes it: say so, don't fail the run
            skipped[baseline.id] = str(exc)
            continue
        study.enqueue_trial(params, user_attrs={"baseline": baseline.id})
        ids.append(baseline.id)
    study.set_user_attr("baselines_enqueued", ids)
    study.set_user_attr("baselines_skipped", skipped)
    return ids


def _best(study: optuna.Study) -> tuple[float | None, int | None]:
    try:
        if len(study.directions) == 1:
            return study.best_value, study.best_trial.number
        best = max(study.best_trials, key=lambda t: t.values[0])
        return best.values[0], best.number
    except ValueError:
        return None, None


def _threads_per_worker(cfg: SearchConfig) -> int:
    return cfg.threads or max(1, (os.cpu_count() or 1) // cfg.jobs)


def _worker_process(
    cfg_dict: dict, name: str, url: str, target: int, deadline: float | None, index: int
) -> None:
    """Entry point of the ``index``-th spawned worker process."""
    import sys

    from hpsearch.errors import HpsearchError

    raise_on_sigterm()
    quiet_optuna()
    cfg = _config_from_dict(cfg_dict)
    seed = None if cfg.seed is None else cfg.seed + index
    try:
        _work(cfg, name, url, target, deadline, on_trial=None, sampler_seed=seed)
    except KeyboardInterrupt:
        pass
    except HpsearchError as exc:
        print(f"hpsearch worker: error: {exc}", file=sys.stderr)
        sys.exit(2)


def _config_from_dict(d: dict) -> SearchConfig:
    d = dict(d)
    d["data"] = DataConfig.from_dict(d["data"])
    d["objectives"] = tuple(d["objectives"])
    return SearchConfig(**d)


def _work(cfg, name, url, target, deadline, on_trial, sampler_seed: int | None) -> int:
    """Load data and the study in this process, then run trials.

    Every worker needs its own ``sampler_seed``: workers seeded alike sample the same
    configurations (a random or TPE start-up phase repeated once per worker).
    """
    import torch

    from hpsearch.data import load_dataset
    from hpsearch.study._objective import Objective

    torch.set_num_threads(_threads_per_worker(cfg))
    data = load_dataset(cfg.data)
    storage = open_storage(url)
    study = load_study(
        name,
        url,
        storage=storage,
        sampler=make_sampler(cfg.sampler, sampler_seed, len(cfg.objectives)),
        pruner=make_pruner(cfg.pruner, cfg.epochs),
    )
    space = SearchSpace.from_dict(study.user_attrs[RECORD_KEY]["space"])
    objective = Objective(cfg, data, space, artifact_dir(url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return run_worker(study, objective, target=target, url=url, deadline=deadline, on_trial=on_trial)


def run_study(
    cfg: SearchConfig,
    on_trial: Callable[[FrozenTrial, TrialCounts], None] | None = None,
    on_start: Callable[[dict], None] | None = None,
) -> RunSummary:
    """Create or resume ``cfg``'s study and add ``cfg.trials`` finished trials.

    Args:
        cfg: The run's configuration.
        on_trial: Called in this process for every trial that finishes (any worker).
        on_start: Called once with the run's facts (study, storage, target, resumed) before trials start.

    Returns:
        A summary. Raises :class:`StudyError`/:class:`ConfigError`/:class:`DataError` for expected
        failures, before anything is written where possible.
    """
    from hpsearch.data import load_dataset

    cfg.validate()
    SAMPLERS.check(cfg.sampler)
    PRUNERS.check(cfg.pruner)
    if len(cfg.objectives) > 1 and cfg.sampler in ("gp", "cmaes", "qmc"):
        raise ConfigError(
            f"sampler {cfg.sampler!r} does not support several objectives; use tpe, nsga2 or random"
        )
    url = resolve_storage_url(cfg.storage)
    space = load_space(cfg.model, cfg.space_file)
    data = load_dataset(cfg.data)  # fail on bad data before the study is touched
    storage = open_storage(url)
    study = open_study(cfg, space, storage)
    enqueued = enqueue_baselines(study, cfg, space) if cfg.enqueue_baselines else []
    counts = count_trials(study)
    target = counts.finished + cfg.trials
    study.set_user_attr("target", target)
    start = time.time()
    deadline = start + cfg.timeout if cfg.timeout else None
    if on_start is not None:
        on_start(
            {
                "study": cfg.name,
                "storage": redact_url(url),
                "target": target,
                "resumed": counts.finished,
                "trials": cfg.trials,
                "enqueued": enqueued,
                "jobs": cfg.jobs,
            }
        )
    report = _new_trial_reporter(study, on_trial)

    interrupted = False
    try:
        if cfg.jobs == 1:
            import torch

            from hpsearch.study._objective import Objective

            torch.set_num_threads(_threads_per_worker(cfg))
            objective = Objective(cfg, data, space, artifact_dir(url))
            run_worker(study, objective, target=target, url=url, deadline=deadline, on_trial=report)
        else:
            del data  # each worker process loads its own copy
            _run_processes(cfg, url, target, deadline, study, report)
    except KeyboardInterrupt:
        interrupted = True
    return _summarize(study, url, target, counts.finished, start, interrupted)


def _new_trial_reporter(study, on_trial) -> Callable[[FrozenTrial], None]:
    """Call ``on_trial`` once for each trial that finishes from now on, with fresh counts."""
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}

    def report(frozen: FrozenTrial) -> None:
        if on_trial is not None and frozen.number not in seen:
            seen.add(frozen.number)
            on_trial(frozen, count_trials(study))

    return report


def _summarize(study, url, target, finished_before, start, interrupted) -> RunSummary:
    counts = count_trials(study)
    best_value, best_number = _best(study)
    return RunSummary(
        study.study_name,
        redact_url(url),
        counts,
        target,
        counts.finished - finished_before,
        time.time() - start,
        best_value,
        best_number,
        interrupted,
    )


def join_study(
    name: str,
    url: str | None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    on_trial: Callable[[FrozenTrial, TrialCounts], None] | None = None,
    on_start: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> RunSummary:
    """Run trials for an existing study from this process (``hpsearch worker``).

    The worker reads the study's stored configuration; it works until the study reaches its
    target (set by the last ``optimize``), or ``trials`` more than it has now when given.
    ``overrides`` may set data_dir, device and threads, which are local to this machine.
    """
    url = resolve_storage_url(url)
    storage = open_storage(url, create=False)
    study = load_study(name, url, storage=storage)
    record = study.user_attrs.get(RECORD_KEY)
    if record is None:
        raise StudyError(f"study {name!r} was not created by hpsearch; it has no stored configuration")
    cfg = config_from_record(record, study_name=name, **overrides)
    counts = count_trials(study)
    target = counts.finished + trials if trials else study.user_attrs.get("target", counts.finished)
    if trials:
        study.set_user_attr("target", max(target, study.user_attrs.get("target", 0)))
    if on_start is not None:
        on_start(
            {
                "study": name,
                "storage": redact_url(url),
                "target": target,
                "resumed": counts.finished,
                "trials": max(target - counts.finished, 0),
                "enqueued": [],
                "jobs": 1,
            }
        )
    start = time.time()
    report = _new_trial_reporter(study, on_trial)

    interrupted = False
    try:
        # Seeded by the OS: a joining worker must not repeat the samples of the others.
        _work(
            cfg, name, url, target, start + timeout if timeout else None, on_trial=report, sampler_seed=None
        )
    except KeyboardInterrupt:
        interrupted = True
    return _summarize(study, url, target, counts.finished, start, interrupted)


def _run_processes(cfg, url, target, deadline, study, report) -> None:
    ctx = mp.get_context("spawn")
    cfg_dict = dataclasses.asdict(cfg)
    procs = [
        ctx.Process(target=_worker_process, args=(cfg_dict, cfg.name, url, target, deadline, i), daemon=False)
        for i in range(cfg.jobs)
    ]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            for t in study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
            ):
                report(t)
    except KeyboardInterrupt:
        for p in procs:  # workers mark their running trial failed on SIGTERM, like Ctrl-C
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(timeout=30)
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
    for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    ):
        report(t)
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise StudyError(f"{len(bad)} worker process(es) exited with errors {bad}; finished trials are kept")
