"""The CLI as a user meets it: help everywhere, the train command, baselines, clean errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from helpers import run

from hpsearch.baselines import BASELINES
from hpsearch.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
SHARED_BASELINES = Path(__file__).resolve().parents[2] / "shared" / "baselines.md"


def _command_names() -> list[str]:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    return names + [g.name for g in app.registered_groups]


def test_every_command_has_help_and_is_in_the_readme(capsys):
    readme = README.read_text()
    for name in _command_names():
        code, out, _ = run(capsys, name, "--help")
        assert code == 0 and "Usage" in out, name
        assert f"hpsearch {name}" in readme, f"README does not mention 'hpsearch {name}'"


def test_list_baselines_shows_every_row_with_its_accuracy(capsys):
    code, out, _ = run(capsys, "train", "--list-baselines")
    assert code == 0
    for b in BASELINES.values():
        assert b.id in out and b.reported in out


@pytest.mark.skipif(not SHARED_BASELINES.exists(), reason="shared/baselines.md is not beside the checkout")
def test_baselines_cover_every_row_of_the_shared_table():
    ids = set(re.findall(r"^\| ((?:fcn|cnn)-[\w-]+) \|", SHARED_BASELINES.read_text(), flags=re.M))
    assert ids == set(BASELINES)


def test_train_baseline_json_on_fashion_mnist_shaped_dir(capsys, fmnist_dir):
    code, out, _ = run(
        capsys,
        "train",
        "--baseline",
        "fcn-000-final",
        "--epochs",
        "1",
        "--json",
        "--data-dir",
        fmnist_dir,
        "--val-size",
        "100",
        "--device",
        "cpu",
    )
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "completed"
    assert 0.0 <= result["val_acc"] <= 1.0
    assert result["epochs"][0]["seconds"] > 0
    assert result["split"]["n_val"] == 100 and result["params"] == 625_810


def test_train_npz_dataset_works_the_same_way(capsys, tiny_npz):
    code, out, _ = run(
        capsys,
        "train",
        "--baseline",
        "fcn-002-best",
        "--epochs",
        "1",
        "--json",
        "--dataset",
        tiny_npz,
        "--val-size",
        "50",
        "--test",
    )
    assert code == 0
    result = json.loads(out)
    assert result["data"]["dataset"] == tiny_npz and result["test_acc"] is not None


def test_train_spec_file_and_geometry_error(capsys, tiny_npz, tmp_path):
    spec = tmp_path / "net.json"
    spec.write_text(
        json.dumps(
            {
                "model": {
                    "kind": "cnn",
                    "hidden": [],
                    "convs": [{"filters": 4, "kernel": 5, "padding": "valid", "pool": "max"}] * 3,
                }
            }
        )
    )
    code, out, err = run(capsys, "train", "--spec", str(spec), "--dataset", tiny_npz, "--val-size", "50")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "conv block" in err and "Traceback" not in err


def test_train_from_trial_repeats_the_trial(capsys, workdir, tiny_npz):
    code, _, _ = run(
        capsys,
        "optimize",
        "--model",
        "fcn",
        "--trials",
        "1",
        "--epochs",
        "2",
        "--dataset",
        tiny_npz,
        "--val-size",
        "100",
        "--device",
        "cpu",
        "--pruner",
        "none",
        "--quiet",
        "--seed",
        "3",
        "--threads",
        "1",
    )
    assert code == 0
    trial = optuna.load_study(study_name="fcn-tiny", storage="sqlite:///studies/hpsearch.db").trials[0]
    code, out, _ = run(
        capsys, "train", "--from-trial", "fcn-tiny:0", "--json", "--device", "cpu", "--threads", "1"
    )
    assert code == 0
    retrained = json.loads(out)
    assert retrained["model"] == trial.user_attrs["spec"]
    assert [e["val_acc"] for e in retrained["epochs"]] == [e["val_acc"] for e in trial.user_attrs["curve"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train"], "give exactly one of"),
        (["train", "--baseline", "fcn-999"], "unknown baseline 'fcn-999'; choose one of: fcn-000-final"),
        (["train", "--baseline", "cnn-003", "--device", "tpu"], "unknown device"),
        (["train", "--spec", "/nonexistent.json"], "does not exist"),
        (["train", "--from-trial", "nocolon"], "STUDY:N"),
        (["train", "--bogus"], "No such option"),
        (["optimize", "--trials", "0"], "--trials must be a positive integer"),
        (["optimize", "--model", "rnn"], "unknown model 'rnn'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, workdir, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_optuna_cli_reads_the_study_as_a_normal_study(capsys, workdir, tiny_npz):
    """Optuna's own tools see every trial: `optuna trials` lists them with their values."""
    import subprocess
    import sys

    args = ["optimize", "--model", "fcn", "--trials", "3", "--epochs", "1", "--dataset", tiny_npz]
    code, _, _ = run(capsys, *args, "--val-size", "100", "--quiet", "--seed", "1", "--threads", "1")
    assert code == 0
    url = "sqlite:///studies/hpsearch.db"
    optuna_cli = Path(sys.executable).with_name("optuna")
    listed = subprocess.run(
        [str(optuna_cli), "trials", "--storage", url, "--study-name", "fcn-tiny", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = json.loads(listed.stdout)
    stored = optuna.load_study(study_name="fcn-tiny", storage=url).trials
    assert sorted(r["number"] for r in rows) == [t.number for t in stored] == [0, 1, 2]
    assert {r["number"]: r["state"] for r in rows} == {t.number: t.state.name for t in stored}
