"""Datasets as in-memory uint8 tensors, with a stratified validation split.

A dataset is either a registered name (loaded through torchvision's own
dataset class, so downloads keep its mirrors and md5 checks) or a ``.npz``
file. Either way :func:`load_dataset` returns a :class:`Dataset` of whole
tensors: images stay uint8 N x C x H x W (60,000 Fashion-MNIST images are
47 MB) and the trainer scales them batch by batch with ``mean`` and ``std``.

Every problem with the files (not downloadable, missing, truncated, wrong
format, labels out of range) ends as one :class:`~hpsearch.errors.DataError`
that says which file is wrong and what to do about it.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpsearch.config import DataConfig
from hpsearch.errors import DataError, UnknownChoiceError
from hpsearch.registry import Registry

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "build_dataset",
    "default_data_dir",
    "load_dataset",
    "stratified_split",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: the torchvision class that reads it, and its class names.

    The class is looked up by name when first needed: importing torchvision costs about
    2 s, which ``.npz`` datasets and commands that never load data should not pay.
    """

    class_name: str  # a torchvision.datasets.MNIST subclass
    classes: tuple[str, ...]

    @property
    def cls(self) -> type:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.class_name)

    @property
    def folder(self) -> str:
        """torchvision keeps the files in ``<data_dir>/<ClassName>/raw/``."""
        return self.class_name

    @property
    def archives(self) -> list[str]:
        """The ``.gz`` files torchvision downloads."""
        return [name for name, _md5 in self.cls.resources]

    @property
    def files(self) -> list[str]:
        """The unpacked files torchvision reads (and checks for)."""
        return [name.removesuffix(".gz") for name in self.archives]


DATASETS: Registry[DatasetInfo] = Registry(
    "dataset",
    {
        "fashion-mnist": DatasetInfo(
            "FashionMNIST",
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
        ),
        "mnist": DatasetInfo("MNIST", tuple(str(d) for d in range(10))),
        "kmnist": DatasetInfo("KMNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
    },
)


def default_data_dir() -> Path:
    """Where datasets live when ``DataConfig.data_dir`` is not set.

    Returns:
        ``$HPSEARCH_DATA_DIR`` if set, else ``$XDG_CACHE_HOME/hpsearch/data``,
        else ``~/.cache/hpsearch/data``.
    """
    if os.environ.get("HPSEARCH_DATA_DIR"):
        return Path(os.environ["HPSEARCH_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "hpsearch" / "data"


@dataclass
class Dataset:
    """Train, validation and (optional) test images as whole tensors.

    Images are uint8 N x C x H x W and contiguous; labels are int64 N.
    ``mean`` and ``std`` are those of the training pixels scaled to [0, 1],
    computed on construction.
    """

    name: str
    classes: list[str]
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_val: torch.Tensor = field(repr=False)
    y_val: torch.Tensor = field(repr=False)
    x_test: torch.Tensor | None = field(default=None, repr=False)  # None: the source had no test split
    y_test: torch.Tensor | None = field(default=None, repr=False)
    split: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable record of the split
    mean: float = field(init=False)
    std: float = field(init=False)
    # (split, device) -> normalised float inputs and labels, filled by hpsearch.train: every
    # trial of a study trains on the same tensors, so they are converted once per process.
    prepared: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        pairs = [("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)]
        if self.x_test is not None or self.y_test is not None:
            pairs.append(("test", self.x_test, self.y_test))
        for part, x, y in pairs:
            _check_tensors(part, x, y)
        self.mean, self.std = _pixel_stats(self.x_train)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.x_train.shape[1:]
        return (c, h, w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _check_tensors(part: str, x: torch.Tensor | None, y: torch.Tensor | None) -> None:
    # A malformed Dataset is a bug in the caller, not in the user's files, so ValueError.
    if x is None or y is None:
        raise ValueError(f"x_{part} and y_{part} must both be tensors or both None")
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"x_{part} must be uint8 N x C x H x W, got {x.dtype} {tuple(x.shape)}")
    if y.dtype != torch.int64 or y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y_{part} must be int64 with {len(x)} labels, got {y.dtype} {tuple(y.shape)}")


def _pixel_stats(x: torch.Tensor) -> tuple[float, float]:
    """Mean and std of the pixels scaled to [0, 1], exactly, from a 256-bin histogram."""
    # A histogram avoids a float copy of the whole tensor (188 MB for Fashion-MNIST).
    counts = torch.bincount(x.reshape(-1), minlength=256).double()
    total = max(counts.sum().item(), 1.0)
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean = (counts * values).sum().item() / total
    var = (counts * (values - mean) ** 2).sum().item() / total
    # Constant images would otherwise make the trainer divide by zero.
    return mean, max(math.sqrt(var), 1.0 / 255.0)


def load_dataset(cfg: DataConfig, download: bool = True) -> Dataset:
    """Load a dataset and hold out a stratified validation split.

    Args:
        cfg: ``cfg.dataset`` is a name in :data:`DATASETS` or a path to a
            ``.npz`` file holding ``x`` (uint8 N x H x W or N x C x H x W) and
            ``y`` (N integer labels 0 to K-1), and optionally ``x_test`` and
            ``y_test``; ``cfg.data_dir`` is where named datasets live
            (default :func:`default_data_dir`).
        download: Fetch a named dataset that is not on disk yet.

    Returns:
        The dataset, with ``cfg.val_size`` training images moved to validation.

    Raises:
        UnknownChoiceError: ``cfg.dataset`` is neither a registered name nor a path.
        DataError: the data cannot be downloaded, found or parsed, or
            ``cfg.val_size`` does not fit.
    """
    name = cfg.dataset
    # Registry's __getitem__ raises UnknownChoiceError, not KeyError, so
    # ``name in DATASETS`` would raise for unknown names: test the names instead.
    if name in tuple(DATASETS) or not (name.lower().endswith(".npz") or Path(name).is_file()):
        try:
            info = DATASETS[name]
        except UnknownChoiceError as exc:
            raise UnknownChoiceError(f"{exc}; or give a path to a .npz file") from None
        root = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
        x, y, x_test, y_test = _load_named(name, info, root, download)
        classes = list(info.classes)
    else:
        x, y, x_test, y_test = _load_npz(Path(name).expanduser())
        classes = [str(k) for k in range(int(y.max()) + 1)]
    return build_dataset(
        name, classes, x, y, x_test, y_test, val_size=cfg.val_size, split_seed=cfg.split_seed
    )


def build_dataset(
    name: str,
    classes: list[str],
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    *,
    val_size: int,
    split_seed: int,
) -> Dataset:
    """Split training tensors into train and a stratified validation set.

    Args:
        name: Recorded as ``Dataset.name``.
        classes: Class names, index order.
        x: uint8 N x C x H x W training images.
        y: int64 N labels in ``[0, len(classes))``.
        x_test: Test images (kept as they are), or None.
        y_test: Test labels, or None.
        val_size: Images to hold out, ``1 <= val_size < N``.
        split_seed: Seeds which images are held out.

    Returns:
        The dataset; ``split`` records the sizes and a hash of the held-out indices.
    """
    n = len(y)
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 1 <= val_size < n:
        raise DataError(
            f"val_size must be a whole number from 1 to {n - 1} ({name} has {n} training images), "
            f"got {val_size!r}"
        )
    val_mask = stratified_split(y, val_size, split_seed)
    val_index = np.flatnonzero(val_mask)
    split = {
        "val_size": val_size,
        "split_seed": split_seed,
        "n_train": n - val_size,
        "n_val": val_size,
        "n_test": 0 if y_test is None else len(y_test),
        # Two runs with equal hashes held out exactly the same images.
        "val_sha256": hashlib.sha256(val_index.astype("<i8").tobytes()).hexdigest()[:16],
    }
    mask = torch.from_numpy(val_mask)
    return Dataset(name, list(classes), x[~mask], y[~mask], x[mask], y[mask], x_test, y_test, split=split)


def stratified_split(y: torch.Tensor | np.ndarray, val_size: int, seed: int) -> np.ndarray:
    """Choose ``val_size`` images so that every class keeps its share (within one image).

    Args:
        y: Non-negative integer labels, length N.
        val_size: How many to choose, ``0 <= val_size <= N``.
        seed: Seeds which images of each class are chosen.

    Returns:
        A boolean mask of length N, True for the chosen images.
    """
    y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    n = len(y)
    counts = np.bincount(y)
    # 1. Each class gets the floor of its proportional share; the images left
    #    over go to the largest remainders (ties to the lower class), in
    #    integer arithmetic so the result cannot depend on rounding.
    quota, remainder = np.divmod(counts * val_size, n)
    quota[np.argsort(-remainder, kind="stable")[: val_size - quota.sum()]] += 1
    # 2. Give every image a random rank within its class: shuffle, then
    #    stable-sort the shuffled labels. RandomState's stream is frozen by
    #    NumPy (NEP 19), so a seed picks the same images on any version.
    perm = np.random.RandomState(seed % 2**32).permutation(n)
    by_class = perm[np.argsort(y[perm], kind="stable")]
    starts = np.cumsum(counts) - counts
    rank = np.arange(n) - starts[y[by_class]]
    # 3. The lowest-ranked ``quota`` images of each class are held out.
    mask = np.zeros(n, dtype=bool)
    mask[by_class[rank < quota[y[by_class]]]] = True
    return mask


# Named datasets (torchvision) -----------------------------------------------------------

# Train images and labels, then test images and labels (None when there is no test split).
_Arrays = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]


def _load_named(name: str, info: DatasetInfo, root: Path, download: bool) -> _Arrays:
    """Train and test tensors of a registered dataset, fetched first if needed."""
    processed = root / info.folder / "processed"
    # torchvision < 0.9 cached tensors here; torchvision still prefers them over raw files.
    legacy = (processed / "training.pt").is_file() and (processed / "test.pt").is_file()
    if not legacy:
        _fetch(name, info, root, download)
    x, y = _read_split(name, info, root, train=True, check_files=not legacy)
    x_test, y_test = _read_split(name, info, root, train=False, check_files=not legacy)
    if x_test.shape[1:] != x.shape[1:]:
        raise DataError(
            f"{name} in {root / info.folder} has {tuple(x.shape[2:])} training images "
            f"but {tuple(x_test.shape[2:])} test images; replace the files"
        )
    return x, y, x_test, y_test


def _fetch(name: str, info: DatasetInfo, root: Path, download: bool) -> None:
    """Make sure the unpacked raw files exist: download them, or unpack local .gz files."""
    raw = root / info.folder / "raw"
    if not _missing(info, raw):
        return
    where = f"place {', '.join(info.archives)} (from {' or '.join(info.cls.mirrors)}) in {raw}/"
    if download:
        try:
            # torchvision's own path: every mirror in turn, md5-checked, then unpacked.
            info.cls(root=str(root), train=True, download=True)
        except Exception as exc:
            if _missing(info, raw):
                raise DataError(f"could not download {name} ({_brief(exc)}): {where} and run again") from None
            # Downloaded but unreadable: _read_split reports which file is wrong.
        return
    for file in _missing(info, raw):
        if (raw / f"{file}.gz").is_file():
            _gunzip(raw / f"{file}.gz", raw / file)
    missing = _missing(info, raw)
    if missing:
        raise DataError(
            f"{name} is not in {raw}/ (missing {', '.join(missing)}) and downloading is off: "
            f"{where} and run again, or allow downloading"
        )


def _missing(info: DatasetInfo, raw: Path) -> list[str]:
    return [file for file in info.files if not (raw / file).is_file()]


def _brief(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _gunzip(source: Path, target: Path) -> None:
    # Unpack to a temporary name first so a failure never leaves a half file
    # that the next run would take for a complete one.
    partial = target.with_name(target.name + ".partial")
    try:
        with gzip.open(source, "rb") as fin, open(partial, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        partial.replace(target)
    except (OSError, EOFError, zlib.error) as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"could not unpack {source} ({_brief(exc)}); replace it and run again") from None


def _read_split(
    name: str, info: DatasetInfo, root: Path, train: bool, check_files: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split through torchvision, as (uint8 N x 1 x H x W, int64 N)."""
    raw = root / info.folder / "raw"
    prefix = "train" if train else "t10k"
    image_file, label_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if check_files:
        # torchvision's reader asserts on bad headers; check them first to say what is wrong.
        _check_idx(image_file, ndim=3)
        _check_idx(label_file, ndim=1)
    try:
        source = info.cls(root=str(root), train=train, download=False)
    except Exception as exc:
        raise DataError(f"could not read {name} from {raw}/ ({_brief(exc)}); replace the files") from None
    x, y = source.data, source.targets.to(torch.int64)
    if len(x) != len(y):
        raise DataError(
            f"{label_file} has {len(y)} labels but {image_file} has {len(x)} images; "
            "the two files must come from the same download"
        )
    k = len(info.classes)
    if len(y) and int(y.max()) >= k:  # IDX labels are uint8, so never negative
        raise DataError(
            f"{label_file} has label {int(y.max())}, but {name} has {k} classes (labels 0 to {k - 1}); "
            "the file is corrupt or from another dataset"
        )
    return x.unsqueeze(1), y


def _check_idx(path: Path, ndim: int) -> None:
    """Check an uncompressed IDX file of uint8: magic number, dimensions, exact size."""
    kind = "image" if ndim == 3 else "label"
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    magic = int.from_bytes(header[:4], "big")
    expected = 0x0800 + ndim  # 0x08: uint8 data; low byte: number of dimensions
    if len(header) < 4 or magic != expected:
        found = f"magic number {magic}" if len(header) >= 4 else f"only {size} bytes"
        raise DataError(f"{path} is not an IDX {kind} file ({found}, expected magic {expected})")
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated: only {size} bytes, shorter than its header")
    dims = struct.unpack(f">{ndim}I", header[4:])
    stored, wanted = size - len(header), math.prod(dims)
    if stored != wanted:
        problem = "is truncated" if stored < wanted else "has extra bytes"
        raise DataError(
            f"{path} {problem}: its header promises {' x '.join(map(str, dims))} = {wanted} bytes "
            f"of {kind}s, the file holds {stored}; delete it and download again"
        )


# .npz files -------------------------------------------------------------------------------


def _load_npz(path: Path) -> _Arrays:
    """Train and test tensors from an ``.npz`` file.

    The file holds ``x`` (uint8, N x H x W or N x C x H x W) and ``y`` (N integer
    labels 0 to K-1), and optionally ``x_test`` and ``y_test`` in the same form.
    """
    arrays = _read_npz(path)
    x = _images(path, "x", arrays["x"])
    y = _labels(path, "y", arrays["y"], len(x))
    if len(y) == 0:
        raise DataError(f"{path}: x holds no images")
    k = int(y.max()) + 1
    if k < 2:
        raise DataError(f"{path}: every label in y is 0; a classifier needs at least two classes")
    if k > len(y):
        raise DataError(
            f"{path}: y has label {k - 1} but only {len(y)} images; labels must be class indices 0 to K-1"
        )
    if "x_test" not in arrays:
        return torch.from_numpy(x), torch.from_numpy(y), None, None
    x_test = _images(path, "x_test", arrays["x_test"])
    y_test = _labels(path, "y_test", arrays["y_test"], len(x_test))
    if x_test.shape[1:] != x.shape[1:]:
        raise DataError(f"{path}: x_test images are {x_test.shape[1:]} but x images are {x.shape[1:]}")
    if len(y_test) and int(y_test.max()) >= k:
        raise DataError(
            f"{path}: y_test has label {int(y_test.max())} but the training labels only go up to {k - 1}"
        )
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test), torch.from_numpy(y_test)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, without ever unpickling."""
    if not path.is_file():
        raise DataError(
            f"dataset file {path} does not exist" + (" (it is a folder)" if path.is_dir() else "")
        )
    try:
        # Our own file handle: np.load leaks its handle when the zip is damaged.
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DataError(
                    f"{path} holds a single array, not an .npz archive; save with np.savez(path, x=x, y=y)"
                )
            with loaded:
                _check_npz_keys(path, set(loaded.files))
                return {key: loaded[key] for key in ("x", "y", "x_test", "y_test") if key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"{path} is not a valid .npz file ({_brief(exc)}); write it with np.savez(path, x=x, y=y)"
        ) from None


def _check_npz_keys(path: Path, keys: set[str]) -> None:
    missing = [key for key in ("x", "y") if key not in keys]
    if missing or ("x_test" in keys) != ("y_test" in keys):
        lacking = missing or [key for key in ("x_test", "y_test") if key not in keys]
        raise DataError(
            f"{path} has no {' or '.join(lacking)} array (it holds: {', '.join(sorted(keys)) or 'nothing'}); "
            "expected x and y, and optionally both x_test and y_test"
        )


def _images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """Check one image array and return it as contiguous uint8 N x C x H x W."""
    if x.dtype != np.uint8:
        hint = (
            f"for values in [0, 1] use ({key} * 255).round().astype(np.uint8)"
            if np.issubdtype(x.dtype, np.floating)
            else f"if the values are 0-255 use {key}.astype(np.uint8)"
        )
        raise DataError(f"{path}: {key} has dtype {x.dtype}, expected uint8; {hint}")
    if x.ndim not in (3, 4) or 0 in x.shape[1:]:
        raise DataError(f"{path}: {key} has shape {x.shape}; expected N x H x W or N x C x H x W")
    if x.ndim == 4 and x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        # Images saved channels-last would otherwise be read as C=H, H=W, W=C.
        raise DataError(
            f"{path}: {key} has shape {x.shape}, which looks like N x H x W x C; "
            f"store N x C x H x W, e.g. {key}.transpose(0, 3, 1, 2)"
        )
    return np.ascontiguousarray(x if x.ndim == 4 else x[:, None])


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    """Check one label array against ``n`` images and return it as int64."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{path}: {key} must be a 1-d array of integer class indices, got {y.dtype} {y.shape}"
        )
    if len(y) != n:
        images = "x" if key == "y" else "x_test"
        raise DataError(f"{path}: {key} has {len(y)} labels but {images} has {n} images")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{path}: {key} has label {int(y.min())}; labels must be class indices 0 to K-1")
    return y.astype(np.int64)
