"""Shared fixtures: tiny datasets in the real file formats, a clean working directory."""

from __future__ import annotations

import pytest
import torch

from hpsearch.synthetic import write_idx_dataset, write_npz


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tiny models are dominated by thread hand-off, and CI machines are shared: one thread is
    # both faster and steadier for the test suite.
    torch.set_num_threads(1)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty directory so the default storage studies/hpsearch.db lands there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory):
    """A 12x12, 10-class .npz with 400 train and 100 test images."""
    return str(
        write_npz(tmp_path_factory.mktemp("npz") / "tiny.npz", n_train=400, n_test=100, shape=(12, 12))
    )


@pytest.fixture(scope="session")
def fmnist_dir(tmp_path_factory):
    """A Fashion-MNIST-shaped data dir (28x28 IDX in torchvision's layout), 600 train and 200 test."""
    root = tmp_path_factory.mktemp("fmnist")
    write_idx_dataset(root, "fashion-mnist", n_train=600, n_test=200, seed=1)
    return str(root)
