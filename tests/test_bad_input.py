"""Bad input, table-driven: one line on stderr naming the problem and the fix, exit 2, no traceback,
and the study database exactly as it was.

Every case runs the real CLI in a directory holding a copy of one small study (``fcn-tiny``,
2 finished trials); the database is compared by a SQL dump before and after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from processes import FCN_SPACE

from hpsearch.cli import main
from hpsearch.config import DataConfig, SearchConfig
from hpsearch.study import run_study
from hpsearch.synthetic import write_idx_dataset, write_npz

SECRET = "S3cretPassw0rd"  # must never appear in any output


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory, tiny_npz):
    """A directory with studies/hpsearch.db holding study fcn-tiny (2 trials), and its space file."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "space.toml").write_text(FCN_SPACE)
    cfg = SearchConfig(
        model="fcn",
        trials=2,
        epochs=2,
        data=DataConfig(dataset=tiny_npz, val_size=100),
        storage=f"sqlite:///{root}/studies/hpsearch.db",
        space_file=str(root / "space.toml"),
        seed=0,
        device="cpu",
        threads=1,
    )
    assert run_study(cfg).counts.finished == 2
    return root


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: nothing listens there


# Setups: each damages or creates something in the case's directory and returns placeholders.


def _file(tmp: Path) -> dict:
    (tmp / "plain.txt").write_text("not a folder, not a database\n")
    return {"file": str(tmp / "plain.txt")}


def _npz(name: str, **arrays) -> Callable[[Path], dict]:
    def setup(tmp: Path) -> dict:
        np.savez(tmp / name, **arrays)
        return {"data": str(tmp / name)}

    return setup


def _npz_bytes(kind: str) -> Callable[[Path], dict]:
    def setup(tmp: Path) -> dict:
        good = write_npz(tmp / "good.npz", n_train=200, n_test=50, shape=(12, 12))
        raw = good.read_bytes()
        data = raw[: len(raw) // 2] if kind == "truncated" else os.urandom(len(raw))
        (tmp / "bad.npz").write_bytes(data)
        return {"data": str(tmp / "bad.npz")}

    return setup


def _idx(damage: str) -> Callable[[Path], dict]:
    """A Fashion-MNIST-shaped IDX folder with one file damaged (or removed)."""

    def setup(tmp: Path) -> dict:
        write_idx_dataset(tmp / "idx", "fashion-mnist", n_train=200, n_test=50, seed=1)
        raw = tmp / "idx" / "FashionMNIST" / "raw"
        images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
        if damage == "truncated":
            images.write_bytes(images.read_bytes()[:-100])
        elif damage == "magic":
            images.write_bytes(b"\x00\x00\x09\x03" + images.read_bytes()[4:])
        elif damage == "labels":
            body = bytearray(labels.read_bytes())
            body[-1] = 12  # class 12 of 10
            labels.write_bytes(bytes(body))
        elif damage == "missing":
            (raw / "t10k-labels-idx1-ubyte").unlink()
        return {"idx": str(tmp / "idx")}

    return setup


def _toml(text: str) -> Callable[[Path], dict]:
    def setup(tmp: Path) -> dict:
        (tmp / "bad.toml").write_text(text)
        return {"toml": str(tmp / "bad.toml")}

    return setup


OPT = ["optimize", "--model", "fcn", "--dataset", "{npz}", "--val-size", "100", "--trials", "1"]
OPT += ["--epochs", "1", "--device", "cpu", "--threads", "1", "--quiet", "--space", "{space}"]
NO_SPACE = OPT[:-2]  # the stored study's space differs, so only the named setting is compared
RUN = ["optimize", "--model", "fcn", "--val-size", "50", "--trials", "1", "--epochs", "1"]
RUN += ["--device", "cpu", "--threads", "1", "--quiet"]
IDX = [*RUN, "--dataset", "fashion-mnist", "--data-dir", "{idx}"]
PG = "postgresql://hp:" + SECRET + "@127.0.0.1:{port}/db"

# (id, argv, a fragment of the message, setup)
CASES = [
    # Counts and names
    ("zero-trials", [*OPT, "--trials", "0"], "--trials must be a positive integer, got 0", None),
    ("negative-trials", [*OPT, "--trials", "-3"], "--trials must be a positive integer, got -3", None),
    ("text-trials", [*OPT, "--trials", "many"], "Invalid value for '--trials'", None),
    ("zero-epochs", [*OPT, "--epochs", "0"], "--epochs must be a positive integer", None),
    ("zero-jobs", [*OPT, "--jobs", "0"], "--jobs must be a positive integer", None),
    ("negative-timeout", [*OPT, "--timeout", "-1"], "--timeout must be positive seconds", None),
    ("unknown-model", [*OPT, "--model", "rnn"], "unknown model 'rnn'; choose one of: fcn, cnn", None),
    ("unknown-sampler", [*OPT, "--sampler", "annealing"], "unknown sampler 'annealing'; choose one of", None),
    ("unknown-pruner", [*OPT, "--pruner", "asha"], "unknown pruner 'asha'; choose one of", None),
    ("unknown-dataset", [*OPT, "--dataset", "cifar10"], "unknown dataset 'cifar10'; choose one of", None),
    ("unknown-objective", [*OPT, "--objectives", "accuracy,speed"], "unknown objective 'speed'", None),
    ("objective-order", [*OPT, "--objectives", "params"], "objectives must start with 'accuracy'", None),
    ("unknown-device", [*OPT, "--device", "tpu"], "unknown device 'tpu'", None),
    ("unknown-flag", [*OPT, "--trails", "3"], "No such option: --trails", None),
    # Storage URLs
    ("storage-not-a-url", [*OPT, "--storage", "studies.txt"], "is not a URL; use e.g. sqlite:///", None),
    ("storage-unknown-dialect", [*OPT, "--storage", "foo://bar"], "cannot open storage foo://bar", None),
    (
        "storage-malformed",
        [*OPT, "--storage", "postgresql://hp:" + SECRET + "@[::1:5/db"],
        "check the URL",
        None,
    ),
    # Connection refused, or (without the optional driver) the driver to install.
    (
        "storage-unreachable",
        [*OPT, "--storage", PG],
        "cannot open storage postgresql|needs the database driver",
        None,
    ),
    ("storage-under-a-file", [*OPT, "--storage", "sqlite:///{file}/x.db"], "cannot create", _file),
    ("storage-not-sqlite", [*OPT, "--storage", "sqlite:///{file}"], "is not a usable SQLite database", _file),
    ("journal-under-a-file", [*OPT, "--storage", "journal:///{file}/x.log"], "cannot create", _file),
    (
        "show-missing-db",
        ["show", "fcn-tiny", "--storage", "sqlite:///nowhere.db"],
        "no study storage at",
        None,
    ),
    ("dashboard-not-sqlite", ["dashboard", "--storage", "sqlite:///{file}"], "is not a usable SQLite", _file),
    # Data files
    ("npz-missing", [*OPT, "--dataset", "missing.npz"], "dataset file missing.npz does not exist", None),
    ("npz-corrupt", [*OPT, "--dataset", "{data}"], "is not a valid .npz file", _npz_bytes("random")),
    ("npz-truncated", [*OPT, "--dataset", "{data}"], "is not a valid .npz file", _npz_bytes("truncated")),
    (
        "npz-channels-last",
        [*OPT, "--dataset", "{data}"],
        "looks like N x H x W x C",
        _npz("hwc.npz", x=np.zeros((200, 12, 12, 1), np.uint8), y=np.arange(200) % 10),
    ),
    (
        "npz-float-images",
        [*OPT, "--dataset", "{data}"],
        "expected uint8",
        _npz("float.npz", x=np.zeros((200, 12, 12), np.float32), y=np.arange(200) % 10),
    ),
    (
        "npz-negative-label",
        [*OPT, "--dataset", "{data}"],
        "labels must be class indices 0 to K-1",
        _npz("neg.npz", x=np.zeros((200, 12, 12), np.uint8), y=np.arange(200) % 10 - 1),
    ),
    (
        "npz-test-label-out-of-range",
        [*OPT, "--dataset", "{data}"],
        "y_test has label 12 but the training labels only go up to 9",
        _npz(
            "test.npz",
            x=np.zeros((200, 12, 12), np.uint8),
            y=np.arange(200) % 10,
            x_test=np.zeros((5, 12, 12), np.uint8),
            y_test=np.array([0, 1, 2, 3, 12]),
        ),
    ),
    (
        "npz-label-count",
        [*OPT, "--dataset", "{data}"],
        "y has 150 labels but x has 200 images",
        _npz("count.npz", x=np.zeros((200, 12, 12), np.uint8), y=np.arange(150) % 10),
    ),
    ("val-size-too-big", [*OPT, "--val-size", "5000"], "val_size must be a whole number from 1 to 399", None),
    ("idx-truncated", IDX, "is truncated", _idx("truncated")),
    ("idx-bad-magic", IDX, "is not an IDX image file", _idx("magic")),
    ("idx-label-out-of-range", IDX, "has label 12, but fashion-mnist has 10 classes", _idx("labels")),
    ("idx-missing-offline", IDX, "could not download fashion-mnist", _idx("missing")),
    # Search-space files
    ("space-missing", [*OPT, "--space", "nowhere.toml"], "nowhere.toml does not exist", None),
    ("space-malformed", [*OPT, "--space", "{toml}"], "invalid TOML", _toml("[space\nlr = ")),
    (
        "space-unknown-name",
        [*OPT, "--space", "{toml}"],
        "unknown fcn parameter 'lrate'",
        _toml("[space]\nlrate = 0.1\n"),
    ),
    (
        "space-bad-range",
        [*OPT, "--space", "{toml}"],
        "low 1.0 is above high 0.1",
        _toml("[space]\nlr = { low = 1.0, high = 0.1 }\n"),
    ),
    (
        "space-other-model",
        [*OPT, "--space", "{toml}"],
        "unknown fcn parameter 'n_blocks'",
        _toml("[space]\nn_blocks = 2\n"),
    ),
    # Studies that do not exist, or exist for something else
    ("show-unknown-study", ["show", "nosuch"], "no study named 'nosuch'", None),
    (
        "worker-unknown-study",
        ["worker", "--study", "nosuch", "--device", "cpu"],
        "no study named 'nosuch'",
        None,
    ),
    ("report-unknown-study", ["report", "nosuch"], "no study named 'nosuch'", None),
    ("delete-unknown-study", ["studies", "delete", "nosuch", "--yes"], "no study named 'nosuch'", None),
    ("train-unknown-study", ["train", "--from-trial", "nosuch:0"], "no study named 'nosuch'", None),
    ("train-unknown-trial", ["train", "--from-trial", "fcn-tiny:99"], "has no trial 99", None),
    (
        "study-for-another-model",
        [*NO_SPACE, "--model", "cnn", "--study-name", "fcn-tiny"],
        "model was 'fcn', now 'cnn'",
        None,
    ),
    (
        "study-for-another-dataset",
        [*OPT, "--dataset", "{data}", "--study-name", "fcn-tiny"],
        "dataset was",
        _npz("other.npz", x=np.zeros((200, 12, 12), np.uint8), y=np.arange(200) % 10),
    ),
    ("study-with-other-epochs", [*OPT, "--epochs", "4"], "epochs was 2, now 4", None),
    # Folders that cannot be written
    # A regular file where the folder must go: blocks writes even for root, unlike chmod.
    ("studies-dir-blocked", [*OPT, "--storage", "sqlite:///{file}/studies/x.db"], "cannot create", _file),
    (
        "reports-dir-blocked",
        ["report", "fcn-tiny", "--out", "{file}/r.html"],
        "cannot write the report",
        _file,
    ),
]


def _digest(db: Path) -> str:
    """A dump of every table: equal digests mean equal contents, whatever SQLite did to the file."""
    with sqlite3.connect(db) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


def _files(root: Path) -> set[str]:
    """Every file under ``root`` but SQLite's transient -wal/-shm companions."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture
def case_dir(tmp_path, study_dir, monkeypatch):
    """A fresh copy of the study directory as the working directory, with the network switched off."""
    shutil.copytree(study_dir / "studies", tmp_path / "studies")
    shutil.copy(study_dir / "space.toml", tmp_path / "space.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path


@pytest.mark.parametrize(("argv", "message", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_line_and_changes_nothing(capsys, case_dir, tiny_npz, argv, message, setup):
    values = {"npz": tiny_npz, "space": str(case_dir / "space.toml"), "port": _closed_port()}
    values.update(setup(case_dir) if setup else {})
    args = [a.format(**values) for a in argv]
    db = case_dir / "studies" / "hpsearch.db"
    before, files = _digest(db), _files(case_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2, err
    assert any(m in err for m in message.split("|")), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpsearch: error: "), err
    assert "Traceback" not in out + err and SECRET not in out + err
    assert _digest(db) == before, "the study database changed"
    assert _files(case_dir) == files, "files were created or removed"


def test_the_table_covers_every_kind_of_bad_input():
    """The issue's list, each kind at least once (so a refactor cannot quietly drop a kind)."""
    ids = " ".join(c[0] for c in CASES)
    for kind in (
        "zero-trials",
        "negative-trials",
        "unknown-model",
        "unknown-sampler",
        "unknown-pruner",
        "unknown-dataset",
        "unknown-objective",
        "storage-malformed",
        "storage-unreachable",
        "npz-missing",
        "npz-corrupt",
        "npz-truncated",
        "idx-truncated",
        "idx-missing",
        "npz-channels-last",
        "label-out-of-range",
        "space-malformed",
        "show-unknown-study",
        "worker-unknown-study",
        "report-unknown-study",
        "delete-unknown-study",
        "train-unknown-study",
        "study-for-another-model",
        "study-for-another-dataset",
        "studies-dir-blocked",
        "reports-dir-blocked",
    ):
        assert kind in ids, kind


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes through any permission bits; see the *-blocked cases"
)
def test_read_only_studies_folder(capsys, case_dir, tiny_npz):
    studies = case_dir / "studies"
    before = _digest(studies / "hpsearch.db")
    os.chmod(studies, 0o555)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(
                [a.format(npz=tiny_npz, space=case_dir / "space.toml") for a in OPT] + ["--study-name", "new"]
            )
    finally:
        os.chmod(studies, 0o755)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "not writable" in err and len(err.strip().splitlines()) == 1
    assert _digest(studies / "hpsearch.db") == before
