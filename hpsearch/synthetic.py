"""Synthetic image data in the real on-disk formats, for tests and benchmarks.

:func:`make_images` draws class-conditional images that a small network can
learn but not instantly: every class is a fixed smooth blob (its prototype),
and every sample is that prototype with its own brightness, contrast, shift of
up to two pixels and noise. :func:`write_idx_dataset` and :func:`write_npz`
store them exactly as :mod:`hpsearch.data` expects to find real data, so tests
go through the same loading code as a real run, without a network.
"""

from __future__ import annotations

import gzip as gzip_module
import struct
from pathlib import Path

import numpy as np
import torch

from hpsearch.data import DATASETS, Dataset, build_dataset

__all__ = ["make_dataset", "make_images", "write_idx_dataset", "write_npz"]

# Prototypes come from this seed alone, so calls with different ``seed`` draw
# train and test sets of the same task.
_PROTOTYPE_SEED = 20240229
_MAX_SHIFT = 2  # pixels; enough to hurt a plain MLP a little, as real data does
_CHUNK = 8192  # images generated at once, to bound float32 scratch memory
_TEST_OFFSET = 1_000_003  # test samples use seed + this, a stream apart from train


def make_images(
    n: int, num_classes: int = 10, shape: tuple[int, int] = (28, 28), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` balanced, class-conditional grey images.

    The same ``num_classes`` and ``shape`` always give the same classes; ``seed``
    only changes which samples are drawn.

    Args:
        n: Number of images.
        num_classes: Number of classes (at least 2).
        shape: Image height and width.
        seed: Seeds the samples (labels, brightness, shifts, noise).

    Returns:
        ``x`` as a uint8 array N x H x W and ``y`` as an int64 array N, with
        every class appearing ``n // num_classes`` or one more times.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    rng = np.random.default_rng(seed)
    prototypes = _make_prototypes(num_classes, shape)
    y = rng.permutation(np.arange(n, dtype=np.int64) % num_classes)
    x = np.empty((n, *shape), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        x[start : start + _CHUNK] = _render(prototypes, y[start : start + _CHUNK], rng)
    return x, y


def _make_prototypes(num_classes: int, shape: tuple[int, int]) -> np.ndarray:
    """One smooth object-like image in [0, 1] per class, on a dark background."""
    rng = np.random.default_rng([_PROTOTYPE_SEED, num_classes, *shape])
    h, w = shape
    # Low-pass filtered noise gives smooth blobs. Most of it is shared by all
    # classes, so they overlap: a small MLP gets 70-80% after one epoch on
    # 3,000 images and over 90% with 20,000, much as on Fashion-MNIST.
    noise = rng.standard_normal((1, h, w)) + 0.4 * rng.standard_normal((num_classes, h, w))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    lowpass = np.exp(-(fy**2 + fx**2) / (2 * 0.08**2))
    smooth = np.fft.ifft2(np.fft.fft2(noise) * lowpass).real
    smooth = (smooth - smooth.mean(axis=(1, 2), keepdims=True)) / smooth.std(axis=(1, 2), keepdims=True)
    # A centred window darkens the border, like a photographed item on black.
    ry, rx = (np.arange(h) - (h - 1) / 2) / (h / 2), (np.arange(w) - (w - 1) / 2) / (w / 2)
    window = np.clip(1.2 - (ry[:, None] ** 2 + rx[None, :] ** 2), 0, 1)
    return (window / (1 + np.exp(-2.0 * smooth))).astype(np.float32)


def _render(prototypes: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Samples of ``prototypes[y]``, each shifted, rescaled and noised; uint8."""
    n = len(y)
    _, h, w = prototypes.shape
    # Shift by gathering through clipped index grids: one fancy-index for all images.
    dy = rng.integers(-_MAX_SHIFT, _MAX_SHIFT + 1, size=n)
    dx = rng.integers(-_MAX_SHIFT, _MAX_SHIFT + 1, size=n)
    rows = np.clip(np.arange(h)[None, :] + dy[:, None], 0, h - 1)
    cols = np.clip(np.arange(w)[None, :] + dx[:, None], 0, w - 1)
    img = prototypes[y[:, None, None], rows[:, :, None], cols[:, None, :]]
    contrast = rng.uniform(0.6, 1.3, size=(n, 1, 1)).astype(np.float32)
    brightness = rng.uniform(-0.15, 0.15, size=(n, 1, 1)).astype(np.float32)
    img = img * contrast + brightness + rng.standard_normal(img.shape, dtype=np.float32) * 0.3
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_idx_dataset(
    root: str | Path,
    name: str = "fashion-mnist",
    n_train: int = 60000,
    n_test: int = 10000,
    seed: int = 0,
    gzip: bool = False,
) -> Path:
    """Write a synthetic stand-in for a registered dataset in torchvision's raw layout.

    The four IDX files (``train``/``t10k`` images and labels) get torchvision's
    exact names under ``root/<ClassName>/raw/``, so both
    ``torchvision.datasets.FashionMNIST(root)`` and
    ``load_dataset(DataConfig(dataset=name, data_dir=root), download=False)``
    read them.

    Args:
        root: The data directory (``DataConfig.data_dir``).
        name: A name registered in :data:`hpsearch.data.DATASETS`.
        n_train: Training images.
        n_test: Test images.
        seed: Seeds the samples; train and test use different streams.
        gzip: Write only the ``.gz`` files, as a manual download leaves them.
            :func:`~hpsearch.data.load_dataset` unpacks them; torchvision alone
            does not without downloading.

    Returns:
        The raw folder the files were written to.
    """
    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    num_classes = len(info.classes)
    x_train, y_train = make_images(n_train, num_classes, seed=seed)
    x_test, y_test = make_images(n_test, num_classes, seed=seed + _TEST_OFFSET)
    for prefix, x, y in (("train", x_train, y_train), ("t10k", x_test, y_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x, gzip)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8), gzip)
    return raw


def _write_idx(path: Path, array: np.ndarray, gzip: bool) -> None:
    """Write a uint8 array as IDX: magic 0x0000080<ndim>, big-endian dims, raw bytes."""
    header = struct.pack(f">I{array.ndim}I", 0x0800 + array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    if gzip:
        # mtime=0 keeps the bytes identical across runs.
        with gzip_module.GzipFile(f"{path}.gz", "wb", compresslevel=1, mtime=0) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_npz(
    path: str | Path,
    n_train: int,
    n_test: int,
    seed: int = 0,
    channels: int | None = None,
    shape: tuple[int, int] = (28, 28),
    num_classes: int = 10,
) -> Path:
    """Write a synthetic ``.npz`` dataset with ``x``, ``y``, ``x_test`` and ``y_test``.

    Args:
        path: Where to write (parent folders are created).
        n_train: Training images.
        n_test: Test images; 0 leaves out ``x_test`` and ``y_test``.
        seed: Seeds the samples.
        channels: ``None`` stores ``x`` as N x H x W; a number stores
            N x C x H x W, each class with its own colour tint.
        shape: Image height and width.
        num_classes: Number of classes.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for key, n, sub_seed in (("", n_train, seed), ("_test", n_test, seed + _TEST_OFFSET)):
        if key and n == 0:
            continue
        x, y = make_images(n, num_classes, shape, sub_seed)
        arrays[f"x{key}"] = x if channels is None else _tint(x, y, channels, num_classes)
        arrays[f"y{key}"] = y
    np.savez(path, **arrays)
    return path


def _tint(x: np.ndarray, y: np.ndarray, channels: int, num_classes: int) -> np.ndarray:
    """Colour grey images N x H x W into N x C x H x W with a fixed tint per class."""
    rng = np.random.default_rng([_PROTOTYPE_SEED, num_classes, channels])
    tints = rng.uniform(0.4, 1.0, size=(num_classes, channels)).astype(np.float32)
    return (x[:, None].astype(np.float32) * tints[y][:, :, None, None] + 0.5).astype(np.uint8)


def make_dataset(
    n_train: int = 600,
    n_test: int = 200,
    val_size: int = 100,
    num_classes: int = 10,
    shape: tuple[int, int] = (28, 28),
    channels: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Build an in-memory :class:`~hpsearch.data.Dataset` of synthetic images, skipping the disk.

    Args:
        n_train: Images before the validation split.
        n_test: Test images (0 for none).
        val_size: Images held out of train, stratified.
        num_classes: Number of classes.
        shape: Image height and width.
        channels: ``None`` for one grey channel, else tinted C-channel images.
        seed: Seeds the samples and the split.

    Returns:
        A dataset named ``"synthetic"`` with classes ``"0"``, ``"1"``, ...
    """
    train = _as_tensors(*make_images(n_train, num_classes, shape, seed), channels, num_classes)
    test = (None, None)
    if n_test:
        test = _as_tensors(
            *make_images(n_test, num_classes, shape, seed + _TEST_OFFSET), channels, num_classes
        )
    classes = [str(k) for k in range(num_classes)]
    return build_dataset("synthetic", classes, *train, *test, val_size=val_size, split_seed=seed)


def _as_tensors(
    x: np.ndarray, y: np.ndarray, channels: int | None, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    x = x[:, None] if channels is None else _tint(x, y, channels, num_classes)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
