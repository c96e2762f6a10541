"""An exported model: one folder to ship, reload and predict with, without the study.

``hpsearch export`` writes it and ``hpsearch predict`` reads it::

    model.json   spec, training config, preprocessing (input shape, mean/std, class names), source
    weights.pt   state dict of ``hpsearch.models.build_model(spec, input_shape, len(classes))``,
                 plain tensors: ``torch.load(path, weights_only=True)``
    model.ts     TorchScript, uint8 images N x C x H x W -> logits N x K with the normalisation
                 inside: ``torch.jit.load(path)`` needs neither hpsearch nor model.json

Loading never unpickles arbitrary objects: the metadata is JSON, the weights load with
``weights_only=True``, and a TorchScript archive is read by TorchScript's own loader.
(``torch.export`` is TorchScript's successor, but ``torch.export.load`` unpickles, so it
is not used here.)
"""

from __future__ import annotations

import csv
import json
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import hpsearch
from hpsearch.config import ModelSpec, TrainConfig
from hpsearch.errors import ConfigError, DataError
from hpsearch.models import build_model

__all__ = [
    "FORMAT",
    "Bundle",
    "Normalized",
    "Prediction",
    "load_bundle",
    "load_torchscript",
    "read_images",
    "write_bundle",
    "write_predictions",
]

FORMAT = "hpsearch-model"
VERSION = 1
META_FILE, WEIGHTS_FILE, SCRIPT_FILE = "model.json", "weights.pt", "model.ts"
BATCH = 4096


class Normalized(nn.Module):
    """The trainer's preprocessing in front of a classifier: 0-255 images in, logits out."""

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model = model
        self.mean = float(mean)
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The same operations, in the same order, as hpsearch.train.prepare_inputs.
        return self.model(((x.float() / 255.0) - self.mean) / self.std)


@dataclass
class Prediction:
    labels: torch.Tensor  # int64 N
    probabilities: torch.Tensor  # float32 N x K (softmax of the logits)


@dataclass
class Bundle:
    """A loaded export: its metadata and the classifier with its weights, in eval mode on the CPU."""

    path: Path
    spec: ModelSpec
    input_shape: tuple[int, int, int]
    classes: list[str]
    mean: float
    std: float
    meta: dict[str, Any]
    model: nn.Module  # takes normalised float inputs, as in training

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for uint8 images N x C x H x W."""
        net = Normalized(self.model, self.mean, self.std).eval()
        with torch.inference_mode():
            return torch.cat([net(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])

    def predict(self, images: torch.Tensor) -> Prediction:
        """Class indices and probabilities for uint8 images N x C x H x W."""
        logits = self.logits(images)
        return Prediction(logits.argmax(1), torch.softmax(logits, 1))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".tmp-{path.name}")  # keeps the suffix: np.savez would add ".npz"
    write(tmp)
    os.replace(tmp, path)


def _prepare_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder to write the model into")
    if out.is_dir() and any(out.iterdir()) and not (out / META_FILE).exists():
        raise ConfigError(f"--out {out} is a folder with other files in it; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)


def write_bundle(
    out_dir: str | os.PathLike,
    model: nn.Module,
    spec: ModelSpec,
    train: TrainConfig,
    *,
    input_shape: tuple[int, int, int],
    classes: list[str],
    mean: float,
    std: float,
    source: dict[str, Any],
) -> Path:
    """Write ``model`` with its metadata, weights and a TorchScript file into ``out_dir``.

    Args:
        out_dir: A new, empty or previously exported folder.
        model: The trained classifier (any device, any memory format).
        spec: Its spec; ``build_model(spec, input_shape, len(classes))`` must match ``model``.
        train: How it was trained (recorded only).
        input_shape: ``(C, H, W)`` of one image.
        classes: Class names in label order.
        mean: Training-pixel mean, on the [0, 1] scale.
        std: Training-pixel standard deviation, on the [0, 1] scale.
        source: Where the model came from (study, trial, ...), recorded in model.json.

    Returns:
        The folder.
    """
    out = Path(out_dir)
    _prepare_dir(out)
    # A fresh contiguous CPU copy: what load_bundle rebuilds, so both give the same numbers.
    net = build_model(spec, input_shape, len(classes))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    net.load_state_dict(state)
    net.eval()
    _atomic_write(out / WEIGHTS_FILE, lambda p: torch.save(state, p))
    with warnings.catch_warnings():
        # torch 2.14 marks TorchScript deprecated; it is still the format that loads without pickle.
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(Normalized(net, mean, std).eval())
    _atomic_write(out / SCRIPT_FILE, lambda p: scripted.save(str(p)))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.to_dict(),
        "train": train.to_dict(),
        "preprocessing": {
            "input_shape": list(input_shape),
            "dtype": "uint8",
            "scale": 255.0,
            "mean": mean,
            "std": std,
            "formula": "((x / scale) - mean) / std",
        },
        "classes": list(classes),
        "files": {"weights": WEIGHTS_FILE, "torchscript": SCRIPT_FILE},
        "torchscript": "uint8 images N x C x H x W in, logits N x K out; the normalisation is inside",
        "source": source,
        "versions": {"hpsearch": hpsearch.__version__, "torch": torch.__version__},
    }
    _atomic_write(out / META_FILE, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    return out


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    if not path.is_file():
        what = "does not exist" if not folder.exists() else f"has no {META_FILE}"
        raise ConfigError(f"{folder} {what}: it is not an exported model; write one with hpsearch export")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); export the model again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an hpsearch model description; export the model again")
    if meta.get("version", 0) > VERSION:
        raise ConfigError(
            f"{path} was written by a newer hpsearch (format {meta['version']}); upgrade hpsearch"
        )
    return meta


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Load an exported model folder: the spec from JSON, the weights with ``weights_only=True``."""
    folder = Path(path)
    meta = _read_meta(folder)
    try:
        spec = ModelSpec.from_dict(meta["spec"])
        pre = meta["preprocessing"]
        shape = tuple(int(n) for n in pre["input_shape"])
        classes = [str(c) for c in meta["classes"]]
        mean, std = float(pre["mean"]), float(pre["std"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{folder / META_FILE} is incomplete ({exc}); export the model again") from None
    weights = folder / meta.get("files", {}).get("weights", WEIGHTS_FILE)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{weights} is missing; export the model again") from None
    except Exception as exc:  # a damaged file, or one holding more than plain tensors
        raise ConfigError(f"{weights} cannot be loaded as plain weights ({exc}); export again") from None
    model = build_model(spec, shape, len(classes))
    model.load_state_dict(state)
    return Bundle(folder, spec, shape, classes, mean, std, meta, model.eval())  # type: ignore[arg-type]


def load_torchscript(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """The exported TorchScript module (uint8 images in, logits out), on the CPU."""
    folder = Path(path)
    meta = _read_meta(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(folder / meta["files"]["torchscript"]), map_location="cpu").eval()


def read_images(path: str | os.PathLike, input_shape: tuple[int, int, int]) -> tuple[torch.Tensor, Any]:
    """Images (key ``x``) and, when present, labels (key ``y``) from an ``.npz`` file.

    Args:
        path: An ``.npz`` with ``x``: uint8 N x H x W (one channel) or N x C x H x W.
        input_shape: ``(C, H, W)`` the model takes.

    Returns:
        ``x`` as uint8 N x C x H x W, and ``y`` as an int64 tensor or None.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file; write the images with np.savez(path, x=images)")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{path} holds a single array; save images with np.savez(path, x=images)")
            if "x" not in npz.files:
                held = ", ".join(npz.files) or "nothing"
                raise DataError(
                    f"{path} has no array x (it holds: {held}); save with np.savez(path, x=images)"
                )
            x = npz["x"]
            y = npz["y"] if "y" in npz.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"{path} is not a valid .npz file ({exc}); write it with np.savez(path, x=images)"
        ) from None
    return _check_images(path, x, input_shape), _check_labels(path, y, len(x))


def _check_images(path: Path, x: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    c, h, w = shape
    want = f"uint8 images N x {c} x {h} x {w}" + (f" (or N x {h} x {w})" if c == 1 else "")
    if x.dtype != np.uint8:
        raise DataError(f"{path}: x has dtype {x.dtype}; this model takes {want} with values 0-255")
    given = tuple(x.shape)
    if x.ndim == 3 and c == 1:
        x = x[:, None]
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        hint = ""
        if x.ndim == 4 and tuple(x.shape[1:]) == (h, w, c):
            hint = "; the images look channels-last: use x.transpose(0, 3, 1, 2)"
        raise DataError(f"{path}: x has shape {given}; this model takes {want}{hint}")
    if len(x) == 0:
        raise DataError(f"{path}: x holds no images")
    return torch.from_numpy(np.ascontiguousarray(x))


def _check_labels(path: Path, y: np.ndarray | None, n: int) -> torch.Tensor | None:
    # Labels are optional; ones that do not fit are ignored rather than fatal for a prediction run.
    if y is None or y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer):
        return None
    return torch.from_numpy(y.astype(np.int64))


def write_predictions(path: str | os.PathLike, pred: Prediction, classes: list[str]) -> Path:
    """Save predictions as ``.csv`` (index,label,class,probability), ``.npz`` or ``.json``."""
    path = Path(path)
    if path.suffix not in (".csv", ".npz", ".json"):
        raise ConfigError(f"--out {path}: use a .csv, .npz or .json file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = pred.labels.tolist()
    confidence = pred.probabilities.max(1).values.tolist()
    rows = [(i, k, classes[k], p) for i, (k, p) in enumerate(zip(labels, confidence, strict=True))]

    def write(tmp: Path) -> None:
        if path.suffix == ".npz":
            np.savez(
                tmp, labels=pred.labels.numpy(), probabilities=pred.probabilities.numpy(), classes=classes
            )
        elif path.suffix == ".json":
            keys = ("index", "label", "class", "probability")
            doc = {"classes": classes, "predictions": [dict(zip(keys, r, strict=True)) for r in rows]}
            tmp.write_text(json.dumps(doc) + "\n")
        else:
            with open(tmp, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["index", "label", "class", "probability"])
                out.writerows((i, k, name, f"{p:.6f}") for i, k, name, p in rows)

    _atomic_write(path, write)
    return path
