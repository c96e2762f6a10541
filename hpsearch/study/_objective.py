"""The objective: sample a configuration, train it with pruning, record everything.

What each trial stores as user attributes (the report, ``show``, ``export`` and
``train --from-trial`` read these names):

- ``spec``, ``train``: the ModelSpec and TrainConfig as dicts.
- ``seed``: the training seed; with the study's data record it reproduces the trial.
- ``params_count``, ``flops``: parameters and forward FLOPs per sample (by formula).
- ``latency_ms``: median CPU inference time per batch of 256 (only when an objective or
  constraint needs it).
- ``curve``: one dict per finished epoch (epoch, train_loss, train_acc, val_loss, val_acc,
  seconds, lr), written after every epoch so a pruned or killed trial keeps its curve.
- ``outcome``: completed | pruned | diverged | geometry | interrupted | error.
- ``reason``: why a trial did not complete (pruner decision, NaN loss, bad geometry...).
- ``wall_seconds``: training time; ``repro``: versions and device.
- ``weights_artifact``: artifact id of the saved state dict (best trials only).
- ``baseline``: the hand-tuned baseline id, for enqueued baselines.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import TrialState

import hpsearch
from hpsearch.config import SearchConfig
from hpsearch.data import Dataset
from hpsearch.errors import SpecError
from hpsearch.geometry import layer_table
from hpsearch.space import SearchSpace, suggest

__all__ = ["CHANCE_EPOCHS", "Objective", "trial_seed"]

CHANCE_EPOCHS = 2  # a net still at chance after this many epochs has collapsed (seed 001, lr 0.1)
CHANCE_MARGIN = 0.02
LATENCY_BATCH = 256


def trial_seed(study_seed: int | None, number: int) -> int:
    """A distinct, reproducible training seed per trial."""
    return (study_seed or 0) * 100_003 + number


def repro_record(device: str) -> dict:
    """Versions and device, so a trial can be retrained the same way later."""
    import numpy
    import torch

    return {
        "hpsearch": hpsearch.__version__,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
    }


def measure_latency_ms(model, input_shape, repeats: int = 7) -> float:
    """Median CPU milliseconds to classify one batch of 256 (after one warm-up)."""
    import copy

    import torch

    net = copy.deepcopy(model).cpu().eval()
    x = torch.randn(LATENCY_BATCH, *input_shape)
    times = []
    with torch.inference_mode():
        net(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class _Pruned(optuna.TrialPruned):
    def __init__(self, trial: optuna.Trial, outcome: str, reason: str):
        trial.set_user_attr("outcome", outcome)
        trial.set_user_attr("reason", reason)
        super().__init__(reason)


class Objective:
    """Callable objective for one worker; the dataset is loaded once and reused by every trial.

    Args:
        cfg: The run's configuration (objectives, constraints, device, seed).
        data: The in-memory dataset.
        space: The search space.
        artifact_path: Folder of the artifact store that keeps the best weights.
    """

    def __init__(
        self, cfg: SearchConfig, data: Dataset, space: SearchSpace, artifact_path: str | os.PathLike
    ):
        from hpsearch.train import resolve_device

        self.cfg, self.data, self.space = cfg, data, space
        self.device = resolve_device(cfg.device)
        os.makedirs(artifact_path, exist_ok=True)
        self.store = FileSystemArtifactStore(str(artifact_path))
        self.chance = 1.0 / data.num_classes

    def __call__(self, trial: optuna.Trial):
        from hpsearch.train import fit

        cfg, data = self.cfg, self.data
        seed = trial_seed(cfg.seed, trial.number)
        trial.set_user_attr("seed", seed)
        try:
            spec, train = suggest(
                trial, self.space, cfg.epochs, data.input_shape, data.num_classes, seed=seed
            )
            table = layer_table(spec, data.input_shape, data.num_classes)
        except SpecError as exc:
            raise _Pruned(trial, "geometry", f"geometry: {exc}") from None
        params, flops = sum(i.params for i in table), sum(i.flops for i in table)
        for key, value in (
            ("spec", spec.to_dict()),
            ("train", train.to_dict()),
            ("params_count", params),
            ("flops", flops),
            ("repro", repro_record(str(self.device))),
        ):
            trial.set_user_attr(key, value)
        self._set_constraints(trial, params, flops)
        curve: list[dict] = []
        verdict: dict[str, str] = {}

        def on_epoch(ep) -> bool:
            curve.append(asdict(ep))
            trial.set_user_attr("curve", curve)
            if ep.epoch >= CHANCE_EPOCHS and ep.val_acc <= self.chance + CHANCE_MARGIN:
                verdict["diverged"] = (
                    f"validation accuracy {ep.val_acc:.3f} is at chance after epoch {ep.epoch}"
                )
                return True
            return self._should_stop(trial, ep, verdict)

        result = fit(spec, train, data, device=self.device, threads=cfg.threads, on_epoch=on_epoch)
        trial.set_user_attr("wall_seconds", round(result.seconds, 3))
        if result.status == "diverged" or "diverged" in verdict:
            raise _Pruned(trial, "diverged", verdict.get("diverged") or result.reason)
        if result.status == "stopped":
            raise _Pruned(trial, "pruned", verdict["pruned"])
        values = self._values(trial, result, params, flops)
        trial.set_user_attr("outcome", "completed")
        self._keep_if_best(trial, result.val_acc, result.model)
        return values[0] if len(values) == 1 else tuple(values)

    def _should_stop(self, trial: optuna.Trial, ep, verdict: dict) -> bool:
        """Pruning: Optuna's pruner for one objective, our own curve rule for several."""
        if len(self.cfg.objectives) == 1:
            trial.report(ep.val_acc, ep.epoch)
            if trial.should_prune():
                verdict["pruned"] = (
                    f"pruned by {self.cfg.pruner} at epoch {ep.epoch} (val acc {ep.val_acc:.4f})"
                )
                return True
            return False
        # Optuna does not prune multi-objective studies. A trial whose accuracy at this epoch is
        # below the median of completed trials at the same epoch is stopped the same way.
        if self.cfg.pruner == "none" or ep.epoch < 2:
            return False
        peers = [
            c[ep.epoch - 1]["val_acc"]
            for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(c := t.user_attrs.get("curve", [])) >= ep.epoch
        ]
        if len(peers) >= 5 and ep.val_acc < statistics.median(peers):
            verdict["pruned"] = (
                f"stopped at epoch {ep.epoch}: val acc {ep.val_acc:.4f} below the median "
                f"{statistics.median(peers):.4f} of {len(peers)} completed trials"
            )
            return True
        return False

    def _set_constraints(self, trial, params: int, flops: int) -> None:
        """Optuna constraints are feasible when <= 0; we store the relative excess over each limit."""
        cfg = self.cfg
        if cfg.max_params:
            trial.set_constraint("params", params / cfg.max_params - 1.0)
        if cfg.max_flops:
            trial.set_constraint("flops", flops / cfg.max_flops - 1.0)

    def _values(self, trial, result, params: int, flops: int) -> list[float]:
        needs_latency = "latency" in self.cfg.objectives or self.cfg.max_latency_ms
        latency = measure_latency_ms(result.model, self.data.input_shape) if needs_latency else None
        if latency is not None:
            trial.set_user_attr("latency_ms", round(latency, 4))
            if self.cfg.max_latency_ms:
                trial.set_constraint("latency", latency / self.cfg.max_latency_ms - 1.0)
        by_name = {"accuracy": result.val_acc, "params": params, "flops": flops, "latency": latency}
        return [float(by_name[name]) for name in self.cfg.objectives]

    def _keep_if_best(self, trial: optuna.Trial, accuracy: float, model) -> None:
        """Save the weights when this trial beats every completed (feasible) trial so far."""
        import torch

        if any(v > 0 for v in trial.constraints.values()):
            return  # infeasible trials never become "best"
        best = max(
            (
                t.values[0]
                for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if all(v <= 0 for v in t.constraints.values())  # an infeasible peer is no bar
            ),
            default=float("-inf"),
        )
        if accuracy <= best:
            return
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"trial-{trial.number}-weights.pt")
            torch.save(state, path)  # plain tensors: loads with torch.load(weights_only=True)
            artifact_id = upload_artifact(
                artifact_store=self.store,
                file_path=path,
                study_or_trial=trial,
                mimetype="application/x-pytorch",
            )
        trial.set_user_attr("weights_artifact", artifact_id)
