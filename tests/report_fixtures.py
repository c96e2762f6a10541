"""Synthetic studies for the report tests and benchmark: real Optuna storages, no training.

Trials are sampled from the real search space with :func:`hpsearch.space.suggest`, get the
user attributes the objective writes (spec, train, params_count, flops, curve, outcome, ...),
made-up learning curves whose level depends on the learning rate, and are told to Optuna as
COMPLETE, PRUNED or FAIL (or left RUNNING). Each new best trial gets real (untrained) weights in
the artifact store, as the objective saves them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import TrialState

from hpsearch.baselines import BASELINES
from hpsearch.config import DataConfig, SearchConfig
from hpsearch.errors import ConfigError
from hpsearch.geometry import layer_table
from hpsearch.space import IntRange, SearchSpace, default_space, spec_to_params, suggest
from hpsearch.study import RECORD_KEY, artifact_dir, open_storage, study_record

optuna.logging.set_verbosity(optuna.logging.WARNING)

INPUT_SHAPE, NUM_CLASSES = (1, 28, 28), 10


def small_space(model: str) -> SearchSpace:
    """The default space with narrow widths, so saved weights stay small."""
    space = default_space(model).with_params(width=IntRange(16, 64, log=True))
    return space.with_params(filters=IntRange(4, 16, log=True)) if model == "cnn" else space


def _quality(params: dict, rng: np.random.Generator) -> float:
    """Final validation accuracy: best near lr 1e-3, worse far from it, plus noise."""
    lr = params.get("lr", 1e-3)
    q = 0.89 - 0.035 * (math.log10(lr) + 3.0) ** 2 + rng.normal(0, 0.01)
    return float(min(max(q, 0.2), 0.93))


def _curve(q: float, epochs: int, diverged: bool, rng: np.random.Generator) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        acc = 0.1 if diverged else 0.1 + (q - 0.1) * (1 - 0.4**e)
        loss = 2.3 if diverged else -math.log(max(acc, 1e-3)) * 0.8
        out.append(
            {
                "epoch": e,
                "train_loss": loss * 0.95,
                "train_acc": min(acc + 0.02, 1.0),
                "val_loss": loss,
                "val_acc": acc,
                "seconds": float(rng.uniform(1.0, 3.0)),
                "lr": 1e-3,
            }
        )
    return out


def _save_weights(store, trial, spec) -> str:
    import torch

    from hpsearch.models import build_model

    torch.manual_seed(trial.number)
    model = build_model(spec, INPUT_SHAPE, NUM_CLASSES)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights.pt")
        torch.save(model.state_dict(), path)
        return upload_artifact(artifact_store=store, file_path=path, study_or_trial=trial)


def build_study(
    url: str,
    name: str,
    *,
    model: str = "fcn",
    n_trials: int = 20,
    epochs: int = 4,
    objectives: tuple[str, ...] = ("accuracy",),
    max_params: int | None = None,
    prune_every: int | None = 3,
    diverged: Iterable[int] = (),
    failed: Iterable[int] = (),
    running: int = 0,
    baselines: bool = False,
    weights: bool = True,
    dataset: str = "fashion-mnist",
    val_size: int = 100,
    space: SearchSpace | None = None,
    seed: int = 0,
) -> optuna.Study:
    """Create study ``name`` in ``url`` with ``n_trials`` finished trials and ``running`` open ones.

    Trial ``i`` is pruned after one or two epochs when ``i % prune_every == prune_every - 1``,
    diverges when in ``diverged`` (or its lr is above 0.1), fails when in ``failed``.
    """
    space = space or small_space(model)
    cfg = _config(model, epochs, objectives, max_params, dataset, val_size, seed)
    # Built in memory, then copied in one go: a SQLite commit per attribute would take seconds.
    study = optuna.create_study(
        study_name=name, directions=_directions(objectives), sampler=optuna.samplers.RandomSampler(seed)
    )
    study.set_user_attr(RECORD_KEY, study_record(cfg, space))
    if baselines:
        _enqueue(study, model, space)
    folder = artifact_dir(url)
    folder.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(folder))
    rng = np.random.default_rng(seed)
    diverged, failed, best = set(diverged), set(failed), -1.0
    for i in range(n_trials + running):
        trial = study.ask()
        spec, train = suggest(trial, space, epochs, INPUT_SHAPE, NUM_CLASSES, seed=i)
        table = layer_table(spec, INPUT_SHAPE, NUM_CLASSES)
        params, flops = sum(r.params for r in table), sum(r.flops for r in table)
        for key, value in (("spec", spec.to_dict()), ("train", train.to_dict()), ("seed", i)):
            trial.set_user_attr(key, value)
        trial.set_user_attr("params_count", params)
        trial.set_user_attr("flops", flops)
        if max_params:
            trial.set_constraint("params", params / max_params - 1.0)
        q = _quality(trial.params, rng)
        is_diverged = i in diverged or train.lr > 0.1
        is_pruned = prune_every is not None and i % prune_every == prune_every - 1
        n_epochs = 2 if is_diverged else 1 + i % 2 if is_pruned else epochs
        if i >= n_trials:  # still running: half its epochs so far
            trial.set_user_attr("curve", _curve(q, max(1, epochs // 2), False, rng))
            continue
        curve = _curve(q, n_epochs, is_diverged, rng)
        trial.set_user_attr("curve", curve)
        trial.set_user_attr("wall_seconds", sum(ep["seconds"] for ep in curve))
        if i in failed:
            trial.set_user_attr("outcome", "error")
            trial.set_user_attr("reason", "RuntimeError: out of memory")
            study.tell(trial, state=TrialState.FAIL)
        elif is_diverged:
            trial.set_user_attr("outcome", "diverged")
            trial.set_user_attr("reason", "validation accuracy 0.100 is at chance after epoch 2")
            study.tell(trial, state=TrialState.PRUNED)
        elif is_pruned:
            for ep in curve if len(objectives) == 1 else ():  # Optuna has no reports for several
                trial.report(ep["val_acc"], ep["epoch"])
            trial.set_user_attr("outcome", "pruned")
            trial.set_user_attr("reason", f"pruned by median at epoch {n_epochs}")
            study.tell(trial, state=TrialState.PRUNED)
        else:
            acc = curve[-1]["val_acc"]
            feasible = not max_params or params <= max_params
            if weights and feasible and acc > best:
                best = acc
                trial.set_user_attr("weights_artifact", _save_weights(store, trial, spec))
            trial.set_user_attr("outcome", "completed")
            by_name = {"accuracy": acc, "params": params, "flops": flops, "latency": 1.0}
            values = [float(by_name[o]) for o in objectives]
            study.tell(trial, values[0] if len(values) == 1 else values)
    return _store(study, url, workers=2)


def _config(model, epochs, objectives, max_params, dataset="fashion-mnist", val_size=100, seed=0):
    return SearchConfig(
        model=model,
        epochs=epochs,
        data=DataConfig(dataset=dataset, val_size=val_size),
        sampler="random",
        seed=seed,
        objectives=objectives,
        max_params=max_params,
    )


def _directions(objectives: tuple[str, ...]) -> list[str]:
    return ["maximize"] + ["minimize"] * (len(objectives) - 1)


def empty_study(
    url: str,
    name: str,
    *,
    model: str = "fcn",
    epochs: int = 4,
    objectives: tuple[str, ...] = ("accuracy",),
    max_params: int | None = None,
    space: SearchSpace | None = None,
    record: bool = True,
) -> optuna.Study:
    """A study with hpsearch's record and no trials (``record=False``: a plain Optuna study)."""
    study = optuna.create_study(
        study_name=name, storage=open_storage(url, heartbeat=False), directions=_directions(objectives)
    )
    if record:
        cfg = _config(model, epochs, objectives, max_params)
        study.set_user_attr(RECORD_KEY, study_record(cfg, space or small_space(model)))
    return study


def make_curve(val_acc: Iterable[float], seconds: float = 1.0) -> list[dict]:
    """A learning curve with these validation accuracies, each epoch taking ``seconds``."""
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_acc": a,
            "val_loss": 1.2 / e,
            "val_acc": a,
            "seconds": seconds,
            "lr": 1e-3,
        }
        for e, a in enumerate(val_acc, start=1)
    ]


def add_trial(
    study: optuna.Study,
    params: dict,
    distributions: dict,
    *,
    state: TrialState = TrialState.COMPLETE,
    values: Iterable[float] | None = None,
    curve: list[dict] | None = None,
    outcome: str | None = None,
    constraints: dict[str, float] | None = None,
    **attrs,
) -> None:
    """Add one finished trial with exactly these parameters, curve and attributes."""
    outcome = outcome or {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned"}.get(state, "error")
    user_attrs = {"curve": curve or [], "outcome": outcome, **attrs}
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            values=list(values) if values is not None else None,
            params=params,
            distributions={k: distributions[k] for k in params},
            user_attrs=user_attrs,
            constraints=constraints,
        )
    )


def _store(study: optuna.Study, url: str, workers: int) -> optuna.Study:
    """Copy ``study`` into ``url`` in one go, with trial times as ``workers`` workers would have
    them (a SQLite commit per attribute would take seconds; in memory all trials start at once)."""
    storage = open_storage(url, heartbeat=False)
    target = optuna.create_study(study_name=study.study_name, storage=storage, directions=study.directions)
    for key, value in study.user_attrs.items():
        target.set_user_attr(key, value)
    trials = study.get_trials(deepcopy=True)
    total = sum(t.user_attrs.get("wall_seconds", 0.0) for t in trials) / workers
    free = [datetime.now() - timedelta(seconds=total + 10.0)] * workers  # when each worker is next idle
    for t in trials:
        w = min(range(workers), key=free.__getitem__)
        t.datetime_start = free[w]
        if t.state.is_finished():
            t.datetime_complete = free[w] + timedelta(seconds=t.user_attrs.get("wall_seconds", 1.0) + 0.5)
            free[w] = t.datetime_complete
        else:
            free[w] = datetime.now() + timedelta(days=1)
        storage.create_new_trial(target._study_id, template_trial=t)
    return target


def _enqueue(study: optuna.Study, model: str, space: SearchSpace) -> None:
    """As ``hpsearch optimize --enqueue-baselines`` does: those outside the space are skipped."""
    ids, skipped = [], {}
    for b in BASELINES.values():
        if b.kind != model:
            continue
        try:
            params = spec_to_params(b.model, b.train, space)
        except ConfigError as exc:
            skipped[b.id] = str(exc)
            continue
        study.enqueue_trial(params, user_attrs={"baseline": b.id})
        ids.append(b.id)
    study.set_user_attr("baselines_enqueued", ids)
    study.set_user_attr("baselines_skipped", skipped)


def write_data(root: Path) -> str:
    """Tiny synthetic Fashion-MNIST files in ``root``; returns the data dir to pass to the report."""
    from hpsearch.synthetic import write_idx_dataset

    write_idx_dataset(root, "fashion-mnist", n_train=600, n_test=200)
    return str(root)
