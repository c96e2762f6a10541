"""Exporting one trial of a study as a model folder (see :mod:`hpsearch.bundle`).

The search keeps weights only for the best-so-far trial (an Optuna artifact). Any other trial,
or one whose weights file has gone, is retrained from its stored spec, training config and
seed on the study's own data split; on the CPU that repeats the trial exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import ModelSpec, TrainConfig
from hpsearch.errors import StudyError
from hpsearch.study._manage import is_feasible, ranked_trials
from hpsearch.study._run import RECORD_KEY, config_from_record, load_study
from hpsearch.study._storage import artifact_dir, open_storage, redact_url, resolve_storage_url

__all__ = ["ExportResult", "export_trial"]


@dataclass
class ExportResult:
    path: Path
    number: int
    search_val: float | None  # the trial's validation accuracy in the search
    val_acc: float  # validation accuracy of the exported weights
    test_acc: float | None
    retrained: bool
    reason: str  # why it was retrained, or where the weights came from
    notes: list[str] = field(default_factory=list)
    model: Any = field(default=None, repr=False)  # the in-memory classifier that was exported

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "model"}
        out["path"] = str(self.path)
        return out


def _pick_trial(study, name: str, number: int | None) -> tuple[FrozenTrial, list[str]]:
    if number is None:
        ranked = ranked_trials(study)
        if not ranked:
            raise StudyError(f"study {name!r} has no completed feasible trial to export")
        return ranked[0], []
    found = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not found:
        raise StudyError(f"study {name!r} has no trial {number}; it has trials 0-{len(study.trials) - 1}")
    trial = found[0]
    if trial.state != TrialState.COMPLETE or "spec" not in trial.user_attrs:
        why = trial.user_attrs.get("reason") or trial.state.name.lower()
        raise StudyError(
            f"trial {number} of {name!r} did not complete ({why}); export a completed trial (see hpsearch show)"
        )
    notes = [] if is_feasible(trial) else [f"trial {number} violates the study's constraints"]
    return trial, notes


def _saved_weights(trial: FrozenTrial, url: str | None) -> tuple[Path | None, str]:
    artifact = trial.user_attrs.get("weights_artifact")
    if not artifact:
        return None, "only the best-so-far trial's weights are saved during the search"
    path = artifact_dir(url) / artifact
    if not path.is_file():
        return None, f"its saved weights {path} are missing"
    return path, f"saved weights {path}"


def export_trial(
    name: str,
    url: str | None,
    out_dir: str | os.PathLike,
    *,
    number: int | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    on_epoch: Callable[[Any], Any] | None = None,
) -> ExportResult:
    """Write trial ``number`` (default: the best feasible trial) of a study as a model folder.

    Args:
        name: The study.
        url: Its storage URL.
        out_dir: The folder to write (new, empty, or an earlier export).
        number: The trial; None picks the best completed feasible trial by validation accuracy.
        data_dir: Where the study's named dataset lives (its mean/std, class names and, when the
            weights were not saved, its training data are needed).
        device: Device for a retrain.
        threads: torch CPU threads for a retrain.
        on_epoch: Progress callback of a retrain.

    Returns:
        What was written and whether the trial had to be retrained.
    """
    from hpsearch.bundle import write_bundle
    from hpsearch.data import load_dataset
    from hpsearch.train import resolve_device

    study = load_study(name, url, storage=open_storage(url, heartbeat=False, create=False))
    record = study.user_attrs.get(RECORD_KEY)
    if record is None:
        raise StudyError(f"study {name!r} was not created by hpsearch; it has no stored dataset")
    trial, notes = _pick_trial(study, name, number)
    spec = ModelSpec.from_dict(trial.user_attrs["spec"])
    train = TrainConfig.from_dict(trial.user_attrs["train"])
    dev = resolve_device(device)  # a bad --device fails before the data is loaded
    data = load_dataset(config_from_record(record, data_dir=data_dir).data)
    weights, reason = _saved_weights(trial, url)
    if weights is None:
        from hpsearch.train import fit

        reason = f"retrained from its stored config with seed {train.seed}: {reason}"
        model = fit(spec, train, data, device=dev, threads=threads, on_epoch=on_epoch).model
    else:
        model = _load_weights(weights, spec, data).to(dev)
    val_acc, test_acc = _accuracies(model, data, dev)
    source = {
        "study": name,
        "storage": redact_url(resolve_storage_url(url)),
        "trial": trial.number,
        "values": trial.values,
        "dataset": record.get("dataset"),
        "split": data.split,
        "weights": "retrained" if weights is None else "saved",
        "val_acc": val_acc,
        "test_acc": test_acc,
    }
    shape, classes, mean, std = data.input_shape, data.classes, data.mean, data.std
    path = write_bundle(
        out_dir, model, spec, train, input_shape=shape, classes=classes, mean=mean, std=std, source=source
    )
    search_val = trial.values[0] if trial.values else None
    retrained = weights is None
    return ExportResult(path, trial.number, search_val, val_acc, test_acc, retrained, reason, notes, model)


def _load_weights(path: Path, spec: ModelSpec, data):
    import torch

    from hpsearch.models import build_model

    model = build_model(spec, data.input_shape, data.num_classes)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def _accuracies(model, data, device) -> tuple[float, float | None]:
    """Validation and (when the data has one) test accuracy of the model being exported."""
    from hpsearch.train import evaluate, prepared_split

    _, val_acc = evaluate(model, *prepared_split(data, "val", device))
    if data.x_test is None:
        return val_acc, None
    _, test_acc = evaluate(model, *prepared_split(data, "test", device))
    return val_acc, test_acc
