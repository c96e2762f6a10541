"""``hpsearch export`` / ``predict``: the exported model reloads and predicts exactly as in memory."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import optuna
import pytest
import torch
from helpers import run

from hpsearch.bundle import load_bundle, load_torchscript, read_images
from hpsearch.config import DataConfig, SearchConfig
from hpsearch.data import load_dataset
from hpsearch.errors import ConfigError, StudyError
from hpsearch.study import artifact_dir, export_trial, open_storage, run_study
from hpsearch.train import prepare_inputs

# A small CNN with batch norm, pooling and dropout: every layer kind the exporter must carry.
CNN_SPACE = """
[space]
n_blocks = 1
filters = { low = 4, high = 8 }
kernel = 3
padding = "same"
pool = "max"
pool_size = 2
pool_stride = 2
n_dense = 1
width = 16
activation = ["relu", "gelu"]
batch_norm = true
dropout = 0.2
optimizer = "adam"
lr = { low = 1e-3, high = 1e-2, log = true }
batch_size = 32
"""


@pytest.fixture
def cnn_study(workdir, tiny_npz):
    (workdir / "cnn.toml").write_text(CNN_SPACE)
    cfg = SearchConfig(
        model="cnn",
        trials=3,
        epochs=1,
        data=DataConfig(dataset=tiny_npz, val_size=100),
        space_file=str(workdir / "cnn.toml"),
        study_name="cnn",
        seed=0,
        sampler="random",
        pruner="none",
        device="cpu",
        threads=1,
    )
    run_study(cfg)
    study = optuna.load_study(study_name="cnn", storage=open_storage(None))
    # Chance-level trials end as "diverged"; the tests need two completed ones.
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 2, [t.user_attrs.get("reason") for t in study.trials]
    return study, cfg


def _test_images(cfg):
    data = load_dataset(cfg.data)
    return data, data.x_test


def _in_memory_logits(model, data, images) -> torch.Tensor:
    """What the trained model itself says, with the trainer's own preprocessing."""
    model = model.cpu().eval()
    with torch.inference_mode():
        return model(prepare_inputs(images, data.mean, data.std, torch.device("cpu")))


def test_exported_best_reloads_and_predicts_identically(cnn_study, workdir):
    study, cfg = cnn_study
    result = export_trial("cnn", None, workdir / "best", device="cpu")
    assert result.number == study.best_trial.number and not result.retrained
    assert result.val_acc == pytest.approx(study.best_value)  # the saved weights are the trial's
    data, images = _test_images(cfg)
    expected = _in_memory_logits(result.model, data, images)
    # 1. state dict + JSON, through hpsearch
    bundle = load_bundle(workdir / "best")
    assert bundle.classes == data.classes and bundle.input_shape == data.input_shape
    assert (bundle.mean, bundle.std) == (data.mean, data.std)
    assert torch.equal(bundle.predict(images).labels, expected.argmax(1))
    torch.testing.assert_close(bundle.logits(images), expected, rtol=1e-5, atol=1e-5)
    # 2. the plain state dict loads without unpickling code
    state = torch.load(workdir / "best" / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    # 3. TorchScript alone: uint8 images in, the same logits out
    scripted = load_torchscript(workdir / "best")
    with torch.inference_mode():
        logits = scripted(images)
    assert torch.equal(logits.argmax(1), expected.argmax(1))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    meta = json.loads((workdir / "best" / "model.json").read_text())
    assert meta["source"]["trial"] == result.number and meta["source"]["weights"] == "saved"
    assert meta["spec"]["kind"] == "cnn" and meta["preprocessing"]["input_shape"] == [1, 12, 12]


def test_trial_without_saved_weights_is_retrained_from_its_seed(cnn_study, workdir):
    study, cfg = cnn_study
    other = next(
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.number != study.best_trial.number
    )
    if "weights_artifact" in other.user_attrs:  # it was best for a while: lose its weights file
        (artifact_dir(None) / other.user_attrs["weights_artifact"]).unlink()
    result = export_trial("cnn", None, workdir / "other", number=other.number, device="cpu", threads=1)
    assert result.retrained and "retrained from its stored config" in result.reason
    assert result.val_acc == other.values[0]  # on the CPU the seeded retrain repeats the trial
    data, images = _test_images(cfg)
    expected = _in_memory_logits(result.model, data, images)
    torch.testing.assert_close(load_bundle(workdir / "other").logits(images), expected, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        scripted = load_torchscript(workdir / "other")(images)
    torch.testing.assert_close(scripted, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(scripted.argmax(1), expected.argmax(1))


def test_export_refuses_what_it_cannot_do(cnn_study, workdir):
    study, _ = cnn_study
    with pytest.raises(StudyError, match="has no trial 99"):
        export_trial("cnn", None, workdir / "x", number=99)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    with pytest.raises(StudyError, match="did not complete"):
        export_trial("cnn", None, workdir / "x", number=len(study.trials) - 1)
    (workdir / "busy").mkdir()
    (workdir / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="other files"):
        export_trial("cnn", None, workdir / "busy")
    export_trial("cnn", None, workdir / "again")
    export_trial("cnn", None, workdir / "again")  # an earlier export may be overwritten


def test_loading_never_unpickles_objects(cnn_study, workdir):
    export_trial("cnn", None, workdir / "m")
    torch.save(
        {"w": torch.zeros(1), "payload": optuna.trial.TrialState.COMPLETE}, workdir / "m" / "weights.pt"
    )
    with pytest.raises(ConfigError, match="cannot be loaded as plain weights"):
        load_bundle(workdir / "m")


def test_predict_cli_prints_saves_and_rejects_bad_input(cnn_study, workdir, tiny_npz, capsys):
    code, out, _ = run(capsys, "export", "cnn", "--out", "m", "--device", "cpu")
    assert code == 0 and "exported trial" in out
    bundle = load_bundle(workdir / "m")
    images, labels = read_images(tiny_npz, bundle.input_shape)
    expected = bundle.predict(images).labels.tolist()
    # Printed as CSV, with the accuracy against the file's labels on stderr.
    code, out, err = run(capsys, "predict", "m", tiny_npz)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [int(r["label"]) for r in rows] == expected
    assert "accuracy against the file's labels" in err and labels is not None
    for name in ("p.csv", "p.npz", "p.json"):
        code, _, _ = run(capsys, "predict", "m", tiny_npz, "--out", name, "--quiet")
        assert code == 0
    with np.load(workdir / "p.npz", allow_pickle=False) as saved:
        assert saved["labels"].tolist() == expected and saved["probabilities"].shape == (len(expected), 10)
    assert [p["label"] for p in json.loads((workdir / "p.json").read_text())["predictions"]] == expected
    # N x C x H x W works as well as N x H x W.
    np.savez(workdir / "nchw.npz", x=images.numpy())
    assert run(capsys, "predict", "m", "nchw.npz")[0] == 0
    bad = {
        "small.npz": {"x": np.zeros((2, 8, 8), np.uint8)},
        "float.npz": {"x": np.zeros((2, 12, 12), np.float32)},
        "nokey.npz": {"images": np.zeros((2, 12, 12), np.uint8)},
        "hwc.npz": {"x": np.zeros((2, 12, 12, 1), np.uint8)},
    }
    for name, arrays in bad.items():
        np.savez(workdir / name, **arrays)
    (workdir / "text.npz").write_text("not an archive")
    for args, message in (
        (("m", "small.npz"), "this model takes uint8 images N x 1 x 12 x 12"),
        (("m", "float.npz"), "dtype float32"),
        (("m", "nokey.npz"), "has no array x (it holds: images)"),
        (("m", "hwc.npz"), "channels-last"),
        (("m", "text.npz"), "is not an .npz file"),
        (("m", "missing.npz"), "does not exist"),
        (("nowhere", tiny_npz), "not an exported model"),
        (("m", tiny_npz, "--out", "p.txt"), "use a .csv, .npz or .json"),
    ):
        code, out, err = run(capsys, "predict", *args)
        assert code == 2 and err.startswith("hpsearch: error:") and message in err, err
        assert len(err.strip().splitlines()) == 1
