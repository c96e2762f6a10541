"""Loading, splitting and validating datasets, through the real files and torchvision.

Every dataset here is synthetic (hpsearch.synthetic) but written in the real
formats, so the IDX files go through torchvision's own reader and the .npz
files through numpy's; no test touches the network.
"""

from __future__ import annotations

import json
import shutil
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torchvision

from hpsearch.config import DataConfig
from hpsearch.data import DATASETS, Dataset, build_dataset, default_data_dir, load_dataset, stratified_split
from hpsearch.errors import DataError, UnknownChoiceError
from hpsearch.synthetic import make_dataset, make_images, write_idx_dataset, write_npz

N_TRAIN, N_TEST, VAL = 300, 100, 50
FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file written by hand (not by the code under test)."""
    magic = 0x0800 + array.ndim if magic is None else magic
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory):
    """A data dir with a small synthetic Fashion-MNIST, shared by tests that only read it."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root, n_train=N_TRAIN, n_test=N_TEST, seed=3)
    return root


@pytest.fixture
def root(tmp_path):
    """A fresh data dir a test may damage."""
    write_idx_dataset(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=3)
    return tmp_path


def load(root, **kwargs) -> Dataset:
    cfg = DataConfig(data_dir=str(root), val_size=kwargs.pop("val_size", VAL), **kwargs)
    return load_dataset(cfg, download=False)


# Loading IDX files ---------------------------------------------------------------------


def test_idx_files_load_with_shapes_dtypes_and_stats(clean_root):
    data = load(clean_root)
    assert data.name == "fashion-mnist"
    assert data.classes[0] == "T-shirt/top" and data.classes[-1] == "Ankle boot"
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert data.x_train.shape == (N_TRAIN - VAL, 1, 28, 28) and data.x_val.shape == (VAL, 1, 28, 28)
    assert data.x_test.shape == (N_TEST, 1, 28, 28)
    for x in (data.x_train, data.x_val, data.x_test):
        assert x.dtype == torch.uint8 and x.is_contiguous()
    for y in (data.y_train, data.y_val, data.y_test):
        assert y.dtype == torch.int64
    pixels = data.x_train.double() / 255
    assert data.mean == pytest.approx(pixels.mean().item(), abs=1e-9)
    assert data.std == pytest.approx(pixels.std(correction=0).item(), abs=1e-9)
    assert json.loads(json.dumps(data.split)) == data.split
    assert data.split | {"val_sha256": None} == {
        "val_size": VAL,
        "split_seed": 0,
        "n_train": N_TRAIN - VAL,
        "n_val": VAL,
        "n_test": N_TEST,
        "val_sha256": None,
    }


def test_loaded_data_is_what_torchvision_reads(clean_root):
    data = load(clean_root)
    train = torchvision.datasets.FashionMNIST(clean_root, train=True, download=False)
    test = torchvision.datasets.FashionMNIST(clean_root, train=False, download=False)
    assert torch.equal(data.x_test[:, 0], test.data) and torch.equal(data.y_test, test.targets)
    # Train and validation together are the training file, each image once.
    images = torch.cat([data.x_train, data.x_val]).flatten(1).numpy()
    ours = sorted(zip(map(bytes, images), torch.cat([data.y_train, data.y_val]).tolist(), strict=True))
    theirs = sorted(zip(map(bytes, train.data.flatten(1).numpy()), train.targets.tolist(), strict=True))
    assert ours == theirs


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_registered_dataset_loads(tmp_path, name):
    raw = write_idx_dataset(tmp_path, name=name, n_train=60, n_test=20)
    assert raw == tmp_path / DATASETS[name].cls.__name__ / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)
    data = load(tmp_path, dataset=name, val_size=10)
    assert data.classes == list(DATASETS[name].classes) and len(data.classes) == 10
    assert len(data.y_train) == 50 and len(data.y_test) == 20


def test_gzipped_files_are_unpacked_without_downloading(tmp_path):
    raw = write_idx_dataset(tmp_path, n_train=60, n_test=20, gzip=True)
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{f}.gz" for f in FILES)
    data = load(tmp_path, val_size=10)
    assert len(data.y_train) == 50 and all((raw / f).is_file() for f in FILES)


# The validation split ------------------------------------------------------------------


def test_split_is_stratified_even_for_unbalanced_classes():
    y = np.repeat(np.arange(5), [400, 250, 200, 100, 50])
    for val_size in (1, 7, 100, 333, 999):
        mask = stratified_split(y, val_size, seed=1)
        assert mask.sum() == val_size
        share = np.bincount(y[mask], minlength=5)
        assert np.all(np.abs(share - np.bincount(y) * val_size / len(y)) < 1)


def test_split_is_deterministic_per_seed_and_disjoint(clean_root):
    a, b, other = load(clean_root), load(clean_root), load(clean_root, split_seed=1)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_val, b.y_val)
    assert a.split["val_sha256"] == b.split["val_sha256"] != other.split["val_sha256"]
    assert not torch.equal(a.x_val, other.x_val)
    train_images = set(map(bytes, a.x_train.flatten(1).numpy()))
    assert not train_images & set(map(bytes, a.x_val.flatten(1).numpy()))
    counts = torch.bincount(a.y_val, minlength=10)
    expected = torch.bincount(torch.cat([a.y_train, a.y_val]), minlength=10) * VAL / N_TRAIN
    assert torch.all((counts - expected).abs() < 1)


def test_split_is_pinned():
    # Studies compare splits by hash, so a seed must pick the same images on
    # every numpy/torch version: these constants must never change.
    labels = torch.arange(1000) % 10
    images = torch.zeros(1000, 1, 2, 2, dtype=torch.uint8)
    data = build_dataset("t", list("0123456789"), images, labels, val_size=100, split_seed=0)
    first = np.flatnonzero(stratified_split(labels, 100, seed=0))[:8]
    assert first.tolist() == [1, 14, 27, 31, 45, 55, 60, 65]
    assert data.split["val_sha256"] == "51f21aa694446258"


@pytest.mark.parametrize("val_size", [0, -1, N_TRAIN, N_TRAIN + 1, 2.5])
def test_val_size_out_of_range(clean_root, val_size):
    with pytest.raises(DataError, match=f"val_size must be .* 1 to {N_TRAIN - 1}"):
        load(clean_root, val_size=val_size)


# .npz files ------------------------------------------------------------------------------


def test_npz_with_grey_images(tmp_path):
    path = write_npz(tmp_path / "grey.npz", n_train=200, n_test=40, num_classes=4)
    data = load(tmp_path, dataset=str(path), val_size=20)
    assert data.classes == ["0", "1", "2", "3"] and data.input_shape == (1, 28, 28)
    assert len(data.y_train) == 180 and data.x_test.shape == (40, 1, 28, 28)
    assert data.name == str(path)


def test_npz_with_colour_images_and_no_test_split(tmp_path):
    path = write_npz(tmp_path / "colour.npz", n_train=200, n_test=0, channels=3, shape=(32, 32))
    assert sorted(np.load(path).files) == ["x", "y"]
    data = load(tmp_path, dataset=str(path), val_size=20)
    assert data.input_shape == (3, 32, 32) and data.x_train.is_contiguous()
    assert data.x_test is None and data.y_test is None and data.split["n_test"] == 0


def bad_npz(tmp_path, **arrays):
    base = {"x": np.zeros((20, 8, 8), np.uint8), "y": np.arange(20) % 4}
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in (base | arrays).items() if v is not None})
    return str(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y": None}, r"has no y array \(it holds: x\)"),
        ({"x_test": np.zeros((5, 8, 8), np.uint8)}, "has no y_test array"),
        (
            {"x": np.zeros((20, 8, 8), np.float32)},
            r"x has dtype float32, expected uint8; .*astype\(np.uint8\)",
        ),
        ({"x": np.zeros((20, 64), np.uint8)}, r"x has shape \(20, 64\); expected N x H x W"),
        ({"x": np.zeros((20, 8, 8, 3), np.uint8)}, "looks like N x H x W x C"),
        ({"y": np.arange(19) % 4}, "y has 19 labels but x has 20 images"),
        ({"y": np.arange(20) % 4 - 1}, "y has label -1"),
        ({"y": np.arange(20) * 3}, "y has label 57 but only 20 images"),
        ({"y": np.zeros(20, np.int64)}, "at least two classes"),
        ({"y": (np.arange(20) % 4).astype(np.float32)}, "integer class indices"),
        (
            {"x_test": np.zeros((5, 8, 8), np.uint8), "y_test": np.arange(5)},
            "y_test has label 4 but .* up to 3",
        ),
        ({"x_test": np.zeros((5, 9, 9), np.uint8), "y_test": np.arange(5) % 4}, "x_test images are"),
    ],
)
def test_npz_problems_are_data_errors(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, dataset=bad_npz(tmp_path, **arrays), val_size=4)


def test_npz_that_is_not_an_archive(tmp_path):
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(DataError, match=r"nowhere\.npz does not exist"):
        load(tmp_path, dataset=str(missing))
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(DataError, match=r"text\.npz is not a valid \.npz file"):
        load(tmp_path, dataset=str(text))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(write_npz(tmp_path / "ok.npz", 50, 10).read_bytes()[:3000])
    with pytest.raises(DataError, match=r"truncated\.npz"):
        load(tmp_path, dataset=str(truncated))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match="holds a single array"):
        load(tmp_path, dataset=str(single))


# Missing, undownloadable and corrupt IDX files ---------------------------------------------


def test_missing_files_without_download_say_what_to_place_where(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path)), download=False)
    message = str(info.value)
    assert f"{tmp_path / 'MNIST' / 'raw'}/" in message and "downloading is off" in message
    assert all(f in message and f"{f}.gz" in message for f in FILES)
    assert torchvision.datasets.MNIST.mirrors[0] in message


def test_failed_download_is_one_data_error(tmp_path, monkeypatch):
    tried = []

    def offline(request, *args, **kwargs):
        tried.append(request.full_url if hasattr(request, "full_url") else request)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(tmp_path)), download=True)
    message = str(info.value)
    assert message.startswith("could not download fashion-mnist (") and "network is unreachable" in message
    assert f"{tmp_path / 'FashionMNIST' / 'raw'}/ and run again" in message
    assert all(f"{f}.gz" in message for f in FILES)
    mirror = torchvision.datasets.FashionMNIST.mirrors[0]
    assert mirror in message and tried and tried[0].startswith(mirror)


def test_download_skips_files_already_in_place(root, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("tried the network"))
    data = load_dataset(DataConfig(data_dir=str(root), val_size=VAL), download=True)
    assert len(data.y_train) == N_TRAIN - VAL


def damage(root, file: str, content: bytes) -> None:
    (root / "FashionMNIST" / "raw" / file).write_bytes(content)


def test_truncated_idx_file(root):
    raw = root / "FashionMNIST" / "raw"
    damage(root, FILES[0], (raw / FILES[0]).read_bytes()[:-100])
    with pytest.raises(DataError, match=f"{FILES[0]} is truncated: .* 300 x 28 x 28 = 235200 bytes"):
        load(root)
    damage(root, FILES[0], b"\x00\x00")
    with pytest.raises(DataError, match="not an IDX image file"):
        load(root)


def test_bad_magic_number(root):
    damage(root, FILES[2], idx_bytes(np.zeros((N_TEST, 28, 28)), magic=0x0D03))
    with pytest.raises(DataError, match=f"{FILES[2]} is not an IDX image file .*magic number 3331"):
        load(root)
    damage(root, FILES[2], idx_bytes(np.zeros((N_TEST, 784))))  # a 2-d array, not images
    with pytest.raises(DataError, match="magic number 2050, expected magic 2051"):
        load(root)


def test_label_count_mismatch(root):
    damage(root, FILES[1], idx_bytes(np.zeros(N_TRAIN - 1)))
    with pytest.raises(DataError, match=f"{FILES[1]} has 299 labels but .*{FILES[0]} has 300 images"):
        load(root)


def test_label_out_of_range(root):
    damage(root, FILES[3], idx_bytes(np.full(N_TEST, 12)))
    with pytest.raises(DataError, match=f"{FILES[3]} has label 12, but fashion-mnist has 10 classes"):
        load(root)


def test_corrupt_gzip_without_download(tmp_path):
    raw = write_idx_dataset(tmp_path, n_train=60, n_test=20, gzip=True)
    (raw / f"{FILES[1]}.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=f"could not unpack .*{FILES[1]}.gz"):
        load(tmp_path, val_size=10)
    assert not (raw / FILES[1]).exists() and not list(raw.glob("*.partial"))


# Names and paths -----------------------------------------------------------------------------


def test_unknown_dataset_lists_the_names(tmp_path):
    with pytest.raises(UnknownChoiceError, match=r"fashion-mnist, mnist, kmnist; or give a path to a \.npz"):
        load(tmp_path, dataset="cifar10")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"
    monkeypatch.delenv("HPSEARCH_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_dir() == tmp_path / "cache" / "hpsearch" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "hpsearch" / "data"


def test_data_dir_from_environment(clean_root, monkeypatch, tmp_path):
    shutil.copytree(clean_root / "FashionMNIST", tmp_path / "env" / "FashionMNIST")
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path / "env"))
    assert len(load_dataset(DataConfig(val_size=VAL), download=False).y_test) == N_TEST


# Synthetic data ------------------------------------------------------------------------------


def test_make_images_is_balanced_and_deterministic():
    x, y = make_images(1003, num_classes=10, shape=(20, 24), seed=5)
    assert x.shape == (1003, 20, 24) and x.dtype == np.uint8 and y.dtype == np.int64
    assert set(np.bincount(y).tolist()) == {100, 101}
    again, y_again = make_images(1003, num_classes=10, shape=(20, 24), seed=5)
    assert np.array_equal(x, again) and np.array_equal(y, y_again)
    assert not np.array_equal(x, make_images(1003, num_classes=10, shape=(20, 24), seed=6)[0])


@pytest.fixture
def one_thread():
    # A net this small gains nothing from threads, and on a busy machine
    # OpenMP threads that wait for each other can make it 50 times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_make_images_is_learnable_but_not_trivial(one_thread):
    # One epoch of a small MLP on 3,000 images, scored on images from another
    # seed (the classes are the same across seeds): well above the 10% of
    # chance, well below perfect.
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in make_images(3000, seed=1))
    x_test, y_test = (torch.from_numpy(a) for a in make_images(1000, seed=2))
    scale = lambda images: (images.flatten(1).float() / 255 - 0.3) / 0.3  # noqa: E731
    net = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for batch in torch.randperm(3000).split(64):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(scale(x[batch])), y[batch]).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (net(scale(x_test)).argmax(1) == y_test).float().mean().item()
    assert 0.6 < accuracy < 0.95


def test_make_dataset_builds_a_valid_dataset():
    data = make_dataset(n_train=120, n_test=30, val_size=20, num_classes=3, channels=3, shape=(16, 16))
    assert data.input_shape == (3, 16, 16) and data.num_classes == 3
    assert len(data.y_train) == 100 and len(data.y_val) == 20 and len(data.y_test) == 30


def test_dataset_rejects_malformed_tensors():
    x, y = torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="x_train must be uint8"):
        Dataset("t", ["a", "b"], x.float(), y, x, y)
    with pytest.raises(ValueError, match="y_val must be int64 with 4 labels"):
        Dataset("t", ["a", "b"], x, y, x, y[:3])
