"""Section 4, the best model: its layers, and its confusion matrix and mistakes on the test split.

The saved weights of the best trial are loaded into :func:`hpsearch.models.build_model` and run
on the study's dataset through the trainer's own input path (``prepare_inputs``, ``predict``).
When the weights or the data are not here, the section says which and how to provide them.
Torch is imported inside :func:`collect_best_model` only.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hpsearch.config import DataConfig, ModelSpec
from hpsearch.errors import HpsearchError
from hpsearch.geometry import layer_table
from hpsearch.report._trials import TrialRow

__all__ = [
    "MISCLASSIFIED",
    "BestModel",
    "LayerRow",
    "Misclassified",
    "ModelEval",
    "collect_best_model",
    "confusion_matrix",
    "png_bytes",
]

MISCLASSIFIED = 24  # test images shown in the grid of mistakes
# Input shapes to try for the layer table when the data is not here; the trial's stored
# parameter count decides which one the study used.
_GUESSED_SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)]


class LayerRow(NamedTuple):
    name: str
    kind: str
    out_shape: str  # "16x28x28"
    params: int
    flops: int
    detail: str


class Misclassified(NamedTuple):
    index: int  # in the evaluated split
    true: int
    predicted: int
    png: bytes


@dataclass
class ModelEval:
    """The best model's predictions on one split."""

    split: str  # test | validation (when the dataset has no test split)
    classes: list[str]
    confusion: list[list[int]]  # confusion[true][predicted]
    misclassified: list[Misclassified]

    @property
    def n(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float:
        return sum(self.confusion[k][k] for k in range(len(self.confusion))) / max(self.n, 1)

    @property
    def per_class(self) -> list[float | None]:
        """Recall of each true class (None when the split has none of it)."""
        return [row[k] / sum(row) if sum(row) else None for k, row in enumerate(self.confusion)]


@dataclass
class BestModel:
    number: int | None = None
    value: float | None = None
    spec: dict[str, Any] | None = None
    layers: list[LayerRow] = field(default_factory=list)
    input_shape: tuple[int, ...] | None = None
    evaluation: ModelEval | None = None
    notes: list[str] = field(default_factory=list)  # what is missing, and how to provide it


def confusion_matrix(y_true: list[int], y_pred: list[int], num_classes: int) -> list[list[int]]:
    """``m[t][p]``: how many of class ``t`` were predicted as ``p``."""
    m = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(y_true, y_pred, strict=True):
        m[t][p] += 1
    return m


def png_bytes(pixels: Any) -> bytes:
    """A uint8 C x H x W array (C = 1 grey, 3 RGB, else its first channel) as a PNG file."""
    c, h, w = pixels.shape
    if c == 3:
        rows, colour = pixels.transpose(1, 2, 0).reshape(h, w * 3), 2
    else:
        rows, colour = pixels[0], 0
    raw = b"".join(b"\x00" + bytes(row) for row in rows.tolist())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _layer_rows(spec: ModelSpec, input_shape, num_classes: int) -> list[LayerRow]:
    return [
        LayerRow(i.name, i.kind, "x".join(map(str, i.out_shape)), i.params, i.flops, i.detail)
        for i in layer_table(spec, input_shape, num_classes)
    ]


def _pick_trial(rows: list[TrialRow], best: TrialRow | None, notes: list[str]) -> TrialRow | None:
    if best is None:
        notes.append("no trial has completed (feasibly) yet, so there is no best model")
        return None
    if best.weights_artifact:
        return best
    saved = [r for r in rows if r.values and r.feasible and r.weights_artifact]
    if not saved:
        notes.append(
            f"trial {best.number} has no saved weights (weights_artifact), so there is no confusion "
            "matrix: hpsearch optimize saves the weights of each new best trial"
        )
        return best
    fallback = max(saved, key=lambda r: (r.values[0], -r.number))
    notes.append(
        f"trial {best.number} has no saved weights; showing trial {fallback.number}, "
        "the most accurate trial with saved weights"
    )
    return fallback


def collect_best_model(
    rows: list[TrialRow],
    best: TrialRow | None,
    record: dict[str, Any],
    artifacts: Path,
    data_dir: str | None,
) -> BestModel:
    """Describe the best trial's model and, when its weights and data are here, evaluate it."""
    notes: list[str] = []
    trial = _pick_trial(rows, best, notes)
    if trial is None:
        return BestModel(notes=notes)
    out = BestModel(trial.number, trial.values[0] if trial.values else None, trial.spec, notes=notes)
    if not isinstance(trial.spec, dict) or not trial.spec:
        notes.append(f"trial {trial.number} has no model spec (user attribute 'spec') to describe")
        return out
    try:
        spec = ModelSpec.from_dict(trial.spec)
    except (HpsearchError, TypeError, ValueError, AttributeError) as exc:
        notes.append(f"trial {trial.number} has no usable model spec ({exc})")
        return out
    data = _load_data(record, data_dir, notes)
    if data is None:
        _guess_layers(out, spec, trial.params_count, _class_count(record))
        return out
    out.input_shape = data.input_shape
    try:
        out.layers = _layer_rows(spec, data.input_shape, data.num_classes)
    except HpsearchError as exc:  # the dataset here is not the one the study trained on
        notes.append(f"trial {trial.number}'s model does not fit the dataset found here: {exc}")
        return out
    if trial.weights_artifact:
        out.evaluation = _evaluate(spec, data, artifacts / trial.weights_artifact, trial.number, notes)
    return out


def _load_data(record: dict[str, Any], data_dir: str | None, notes: list[str]):
    from hpsearch.data import load_dataset

    if not record.get("dataset"):
        notes.append("the study has no hpsearch record naming its dataset, so the model cannot be evaluated")
        return None
    cfg = DataConfig(
        dataset=record["dataset"],
        data_dir=data_dir,
        val_size=int(record.get("val_size", 5000)),
        split_seed=int(record.get("split_seed", 0)),
    )
    try:
        return load_dataset(cfg, download=False)
    except HpsearchError as exc:
        notes.append(
            f"the dataset {record['dataset']!r} is not available here ({exc}); pass --data-dir with the "
            "folder the study trained on (or set $HPSEARCH_DATA_DIR) to see the confusion matrix"
        )
        return None


def _class_count(record: dict[str, Any]) -> int:
    from hpsearch.data import DATASETS

    name = record.get("dataset")
    return len(DATASETS[name].classes) if name in tuple(DATASETS) else 10


def _guess_layers(out: BestModel, spec: ModelSpec, params_count: int | None, num_classes: int) -> None:
    """Without the data, find the input shape whose parameter count matches the trial's."""
    for shape in _GUESSED_SHAPES:
        try:
            layers = _layer_rows(spec, shape, num_classes)
        except HpsearchError:
            continue
        if params_count is not None and sum(r.params for r in layers) == params_count:
            out.layers, out.input_shape = layers, shape
            out.notes.append(
                f"layer shapes assume {'x'.join(map(str, shape))} inputs and {num_classes} classes "
                "(they match the trial's parameter count)"
            )
            return


def _evaluate(spec: ModelSpec, data, path: Path, number: int, notes: list[str]) -> ModelEval | None:
    import torch

    from hpsearch.models import build_model
    from hpsearch.train import predict, prepare_inputs

    if not path.is_file():
        notes.append(
            f"the weights of trial {number} ({path}) are missing: copy the study's artifacts folder "
            f"{path.parent.name}/ next to the storage file along with it"
        )
        return None
    model = build_model(spec, data.input_shape, data.num_classes)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"the weights file {path} does not fit trial {number}'s model: {first}")
        return None
    split = "test" if data.x_test is not None else "validation"
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
    if split != "test":
        notes.append("the dataset has no test split: the matrix below is on the validation split")
    pred = predict(model, prepare_inputs(x, data.mean, data.std, torch.device("cpu")))
    wrong = torch.nonzero(pred != y).flatten()[:MISCLASSIFIED].tolist()
    return ModelEval(
        split=split,
        classes=list(data.classes),
        confusion=confusion_matrix(y.tolist(), pred.tolist(), data.num_classes),
        misclassified=[Misclassified(i, int(y[i]), int(pred[i]), png_bytes(x[i].numpy())) for i in wrong],
    )
