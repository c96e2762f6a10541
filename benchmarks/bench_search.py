"""Benchmark whole searches: against Optuna's PyTorch example, across pruners, and with 2 workers.

All three parts run on synthetic Fashion-MNIST (60,000 + 10,000 images of
28 x 28, 10 classes) written as IDX files in a temp dir; hpsearch reads
subsamples of it saved as ``.npz`` files, through ``load_dataset`` as usual.

(a) hpsearch against Optuna's ``pytorch/pytorch_simple.py``, rewritten here
    from its description: FashionMNIST through torchvision with ``ToTensor``,
    batch 128, 30 training batches (3,840 images) drawn from the shuffled
    60,000 and 10 validation batches (1,280) from the shuffled test set per
    epoch, 10 epochs; n_layers 1-3, n_units_l{i} 4-128, dropout_l{i} 0.2-0.5,
    Adam/RMSprop/SGD, lr 1e-5-1e-1 (log); TPE and the median pruner; the
    datasets are re-created in every trial, as the example does. hpsearch does
    the same work: an ``.npz`` of the first 5,120 training images with
    ``val_size`` 1,280 trains on 3,840 and validates on 1,280 images per
    epoch, for 10 epochs, in the closest space hpsearch has (one dropout for
    all layers instead of one per layer; widths uniform, not log; batch 128,
    ReLU, default init, no weight decay, L1, batch norm, momentum or schedule).
    Both run the same trials with the same sampler seed, twice: without
    pruning (equal work: every trial trains 10 epochs, except that hpsearch
    stops a net still at chance after 2 epochs) and with the median pruner.
(b) Each pruner against ``none``: total epochs trained and best validation
    accuracy after N trials of the default fcn space on a 12,000-image
    subsample (10,000 train, 2,000 validation), same sampler seeds.
(c) ``jobs=2`` against ``jobs=1``: trials per hour, on a fixed-cost space
    (only lr varies, so every trial is the same work) and on the default fcn
    space with the default (median) pruner.

Runs are interleaved and repeated; timings are medians. Each run has its own
sqlite file in the temp dir.

    .venv/bin/python benchmarks/bench_search.py                # ~20 min on 2 cores
    .venv/bin/python benchmarks/bench_search.py --quick        # smoke run, ~2 min
    .venv/bin/python benchmarks/bench_search.py --parts a      # one part
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FULL_TEST, FULL_TRAIN, machine, median, table, verdict, write_fashion_mnist, write_json

from hpsearch.config import DataConfig, SearchConfig
from hpsearch.study import run_study

PRUNERS = ("median", "percentile", "patient", "sha", "hyperband")
DEFAULT_PRUNER = SearchConfig.pruner

# Part (a): Optuna's example, sizes as in pytorch_simple.py.
BATCH = 128
N_TRAIN_EXAMPLES = BATCH * 30
N_VALID_EXAMPLES = BATCH * 10
EXAMPLE_OPTIMIZERS = {"Adam": torch.optim.Adam, "RMSprop": torch.optim.RMSprop, "SGD": torch.optim.SGD}

# hpsearch's closest equivalent of the example's space (see the module docstring).
EXAMPLE_SPACE = """\
model = "fcn"

[space]
n_layers = { low = 1, high = 3, log = false }
width = { low = 4, high = 128, log = false }
activation = "relu"
batch_norm = false
dropout = { low = 0.2, high = 0.5, log = false }
init = "default"
optimizer = ["adam", "rmsprop", "sgd"]
lr = { low = 1e-5, high = 0.1, log = true }
momentum = 0.0
nesterov = false
use_weight_decay = false
use_l1 = false
batch_size = 128
label_smoothing = 0.0
schedule = "none"
"""

# Part (c): every trial the same work (2 x 256 units, batch 128, adam); only lr varies,
# within a range that does not diverge, so no trial stops early.
FIXED_COST_SPACE = """\
model = "fcn"

[space]
n_layers = 2
width = 256
activation = "relu"
batch_norm = false
dropout = 0.0
init = "default"
optimizer = "adam"
lr = { low = 1e-4, high = 3e-3, log = true }
use_weight_decay = false
use_l1 = false
batch_size = 128
label_smoothing = 0.0
schedule = "none"
"""


def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    logging.getLogger("optuna").setLevel(logging.WARNING)


def rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


# --- data --------------------------------------------------------------------------------------


def write_subsample(root: Path, path: Path, n: int) -> str:
    """The first ``n`` synthetic training images (read back through torchvision) as an .npz."""
    import torchvision

    source = torchvision.datasets.FashionMNIST(str(root), train=True, download=False)
    np.savez(path, x=source.data[:n].numpy(), y=source.targets[:n].numpy().astype(np.int64))
    return str(path)


# --- part (a): Optuna's example ------------------------------------------------------------------


class OptunaExample:
    """Optuna's pytorch_simple.py objective, rewritten from its description."""

    def __init__(self, root: Path):
        self.root = str(root)
        self.load_seconds = 0.0  # time spent re-creating the datasets, as the example does per trial

    def loaders(self) -> tuple[DataLoader, DataLoader]:
        import torchvision
        from torchvision import transforms

        t0 = time.perf_counter()
        to_tensor = transforms.ToTensor()
        train = torchvision.datasets.FashionMNIST(self.root, train=True, download=False, transform=to_tensor)
        valid = torchvision.datasets.FashionMNIST(self.root, train=False, download=False, transform=to_tensor)
        self.load_seconds += time.perf_counter() - t0
        return DataLoader(train, batch_size=BATCH, shuffle=True), DataLoader(
            valid, batch_size=BATCH, shuffle=True
        )

    @staticmethod
    def model(trial: optuna.Trial) -> nn.Module:
        layers: list[nn.Module] = []
        features = 28 * 28
        for i in range(trial.suggest_int("n_layers", 1, 3)):
            units = trial.suggest_int(f"n_units_l{i}", 4, 128)
            layers += [nn.Linear(features, units), nn.ReLU()]
            layers.append(nn.Dropout(trial.suggest_float(f"dropout_l{i}", 0.2, 0.5)))
            features = units
        layers += [nn.Linear(features, 10), nn.LogSoftmax(dim=1)]
        return nn.Sequential(*layers)

    def __call__(self, trial: optuna.Trial) -> float:
        model = self.model(trial)
        name = trial.suggest_categorical("optimizer", list(EXAMPLE_OPTIMIZERS))
        opt = EXAMPLE_OPTIMIZERS[name](model.parameters(), lr=trial.suggest_float("lr", 1e-5, 1e-1, log=True))
        train_loader, valid_loader = self.loaders()
        accuracy = 0.0
        for epoch in range(10):
            model.train()
            for step, (x, y) in enumerate(train_loader):
                if step * BATCH >= N_TRAIN_EXAMPLES:
                    break
                opt.zero_grad()
                loss = F.nll_loss(model(x.view(len(x), -1)), y)
                loss.backward()
                opt.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                for step, (x, y) in enumerate(valid_loader):
                    if step * BATCH >= N_VALID_EXAMPLES:
                        break
                    correct += (model(x.view(len(x), -1)).argmax(1) == y).sum().item()
            accuracy = correct / min(len(valid_loader.dataset), N_VALID_EXAMPLES)
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy


def run_example(root: Path, trials: int, seed: int, prune: bool) -> dict:
    torch.set_num_threads(2)
    pruner = optuna.pruners.MedianPruner() if prune else optuna.pruners.NopPruner()
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner
    )
    objective = OptunaExample(root)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    wall = time.perf_counter() - t0
    finished = [t for t in study.trials if t.state.is_finished()]
    return {
        "wall": wall,
        "trials": len(finished),
        "epochs": sum(len(t.intermediate_values) for t in finished),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in finished),
        "best": study.best_value,
        "load_seconds": objective.load_seconds,
    }


def run_hpsearch(cfg: SearchConfig) -> dict:
    """``run_study`` timed from the outside (data load and study creation included)."""
    quiet()
    t0 = time.perf_counter()
    summary = run_study(cfg)
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=summary.study_name, storage=cfg.storage)
    finished = [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    params = [tuple(sorted(t.params.items())) for t in finished]
    # From the first trial's start to the last one's end: the search without process start-up
    # (imports, data loading), which a long search amortises.
    span = (
        max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)
    ).total_seconds()
    return {
        "wall": wall,
        "span": span,
        "trials": len(finished),
        "epochs": sum(len(t.user_attrs.get("curve", [])) for t in finished),
        "pruned": summary.counts.pruned,
        "failed": summary.counts.failed,
        "best": summary.best_value,
        "outcomes": {
            o: sum(t.user_attrs.get("outcome") == o for t in finished) for o in ("pruned", "diverged")
        },
        "duplicates": len(params) - len(set(params)),
    }


def part_a(args, root: Path, tmp: Path) -> dict:
    npz = write_subsample(root, tmp / "example-5120.npz", N_TRAIN_EXAMPLES + N_VALID_EXAMPLES)
    space = tmp / "example-space.toml"
    space.write_text(EXAMPLE_SPACE)
    runs: dict[str, list[dict]] = {}
    variants = ["example none", "hpsearch none", "example median", "hpsearch median"]
    for rep in range(args.repeats):
        for variant in rotate(variants, rep):
            side, pruner = variant.split()
            if side == "example":
                run = run_example(root, args.a_trials, args.seed, prune=pruner == "median")
            else:
                cfg = SearchConfig(
                    model="fcn",
                    trials=args.a_trials,
                    epochs=10,
                    data=DataConfig(dataset=npz, val_size=N_VALID_EXAMPLES),
                    storage=f"sqlite:///{tmp}/a-{pruner}-{rep}.db",
                    study_name="a",
                    pruner=pruner,
                    seed=args.seed,
                    space_file=str(space),
                    device="cpu",
                    threads=2,
                )
                run = run_hpsearch(cfg)
            runs.setdefault(variant, []).append(run)
            print(
                f"  (a) {variant:<16} {run['wall']:6.1f} s  {run['trials']} trials  {run['epochs']} epochs  "
                f"best {run['best']:.4f}",
                flush=True,
            )
    out = {}
    for variant, rs in runs.items():
        out[variant] = {
            "per_trial_s": median([r["wall"] / r["trials"] for r in rs]),
            "per_10_epochs_s": median([r["wall"] / r["epochs"] * 10 for r in rs]),
            "epochs": median([r["epochs"] for r in rs]),
            "pruned": median([r["pruned"] for r in rs]),
            "best": median([r["best"] for r in rs]),
            "load_per_trial_s": median([r.get("load_seconds", 0.0) / r["trials"] for r in rs]),
            "per_10_epochs_no_reload_s": median(
                [(r["wall"] - r.get("load_seconds", 0.0)) / r["epochs"] * 10 for r in rs]
            ),
            "runs": rs,
        }
    for pruner in ("none", "median"):
        ex, hp = out[f"example {pruner}"], out[f"hpsearch {pruner}"]
        out[f"ratio {pruner}"] = {
            "per_trial": ex["per_trial_s"] / hp["per_trial_s"],
            "per_10_epochs": ex["per_10_epochs_s"] / hp["per_10_epochs_s"],
            "per_10_epochs_without_example_reload": ex["per_10_epochs_no_reload_s"] / hp["per_10_epochs_s"],
        }
    return out


# --- part (b): pruners ---------------------------------------------------------------------------


def part_b(args, root: Path, tmp: Path) -> dict:
    npz = write_subsample(root, tmp / f"pruners-{args.b_images}.npz", args.b_images)
    names = ["none", *PRUNERS]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    plan = []
    for i, seed in enumerate(args.b_seeds):
        for pruner in rotate(names, i):
            cfg = SearchConfig(
                model="fcn",
                trials=args.b_trials,
                epochs=args.b_epochs,
                data=DataConfig(dataset=npz, val_size=args.b_val),
                storage=f"sqlite:///{tmp}/b-{pruner}-{seed}.db",
                study_name="b",
                pruner=pruner,
                seed=seed,
                device="cpu",
                threads=2,
            )
            plan.append((seed, pruner, cfg))

    def record(seed: int, pruner: str, run: dict) -> None:
        run["seed"] = seed
        runs[pruner].append(run)
        print(
            f"  (b) seed {seed} {pruner:<10} {run['wall']:6.1f} s  {run['epochs']:3d} epochs  "
            f"pruned {run['pruned']:2d}  best {run['best']:.4f}",
            flush=True,
        )

    if args.b_parallel > 1:
        # Epochs and accuracies do not depend on timing, so on a many-core machine the runs may
        # go side by side (wall seconds then include contention and are not comparable).
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.b_parallel, mp_context=ctx) as pool:
            futures = [(seed, pruner, pool.submit(run_hpsearch, cfg)) for seed, pruner, cfg in plan]
            for seed, pruner, future in futures:
                record(seed, pruner, future.result())
        for rs in runs.values():
            rs.sort(key=lambda r: args.b_seeds.index(r["seed"]))
    else:
        for seed, pruner, cfg in plan:
            record(seed, pruner, run_hpsearch(cfg))
    out = {}
    for pruner, rs in runs.items():
        base = runs["none"]
        saved = [1 - r["epochs"] / b["epochs"] for r, b in zip(rs, base, strict=True)]
        delta = [100 * (r["best"] - b["best"]) for r, b in zip(rs, base, strict=True)]
        out[pruner] = {
            "epochs": [r["epochs"] for r in rs],
            "best": [r["best"] for r in rs],
            "wall": [r["wall"] for r in rs],
            "pruned": [r["pruned"] for r in rs],
            "epochs_saved": float(np.mean(saved)),
            "best_delta_points": float(np.mean(delta)),
            "worst_delta_points": float(min(delta)),
            "meets": float(np.mean(saved)) >= 0.40 and min(delta) >= -0.5,
        }
    return out


# --- part (c): jobs ------------------------------------------------------------------------------


def part_c(args, root: Path, tmp: Path) -> dict:
    npz = write_subsample(root, tmp / f"jobs-{args.b_images}.npz", args.b_images)
    fixed = tmp / "fixed-cost.toml"
    fixed.write_text(FIXED_COST_SPACE)
    setups = {
        "fixed-cost": dict(space_file=str(fixed), pruner="none", trials=args.c_trials, epochs=args.c_epochs),
        "default fcn, median": dict(
            space_file=None, pruner="median", trials=args.c_trials, epochs=args.c_epochs
        ),
    }
    setups = {k: v for k, v in setups.items() if k.split()[0].strip(",") in args.c_setups}
    runs: dict[tuple[str, int], list[dict]] = {}
    for rep in range(args.c_repeats):
        for setup, options in setups.items():
            for jobs in rotate([1, 2], rep):
                cfg = SearchConfig(
                    model="fcn",
                    data=DataConfig(dataset=npz, val_size=args.b_val),
                    storage=f"sqlite:///{tmp}/c-{setup.split()[0].strip(',')}-{jobs}-{rep}.db",
                    study_name="c",
                    seed=args.seed,
                    jobs=jobs,
                    device="cpu",
                    **options,
                )  # threads None: hpsearch's default, cores / jobs per worker
                run = run_hpsearch(cfg)
                run["trials_per_hour"] = run["trials"] / run["wall"] * 3600
                run["steady_trials_per_hour"] = run["trials"] / run["span"] * 3600
                runs.setdefault((setup, jobs), []).append(run)
                print(
                    f"  (c) {setup:<20} jobs {jobs}  {run['wall']:6.1f} s  {run['trials']} trials  "
                    f"{run['epochs']} epochs  {run['trials_per_hour']:.0f} trials/h "
                    f"({run['steady_trials_per_hour']:.0f} after start-up)  duplicates {run['duplicates']}",
                    flush=True,
                )
    out = {}
    for setup in setups:
        one, two = runs[(setup, 1)], runs[(setup, 2)]
        out[setup] = {
            "jobs1_trials_per_hour": median([r["trials_per_hour"] for r in one]),
            "jobs2_trials_per_hour": median([r["trials_per_hour"] for r in two]),
            "jobs1_epochs": [r["epochs"] for r in one],
            "jobs2_epochs": [r["epochs"] for r in two],
            "jobs2_duplicates": [r["duplicates"] for r in two],
            "jobs1_best": [r["best"] for r in one],
            "jobs2_best": [r["best"] for r in two],
            "runs": {"1": one, "2": two},
        }
        out[setup]["ratio"] = out[setup]["jobs2_trials_per_hour"] / out[setup]["jobs1_trials_per_hour"]
        out[setup]["steady_ratio"] = median([r["steady_trials_per_hour"] for r in two]) / median(
            [r["steady_trials_per_hour"] for r in one]
        )
        # Work-normalised: epochs per hour, for the setup where trials stop at different epochs.
        out[setup]["epoch_ratio"] = median([r["epochs"] / r["wall"] for r in two]) / median(
            [r["epochs"] / r["wall"] for r in one]
        )
    return out


# --- report --------------------------------------------------------------------------------------


def report(out: dict, args) -> None:
    m = out["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, no GPU used; torch {m['torch']}, optuna {m['optuna']}")
    if "a" in out:
        a = out["a"]
        print(
            f"\n(a) Optuna's pytorch_simple example vs hpsearch: {args.a_trials} trials x 10 epochs, "
            f"{N_TRAIN_EXAMPLES:,} train + {N_VALID_EXAMPLES:,} val images per epoch, median of {args.repeats}"
        )
        rows = [("variant", "s/trial", "s/10 epochs", "epochs", "pruned", "best val acc", "reload s/trial")]
        for variant in ("example none", "hpsearch none", "example median", "hpsearch median"):
            v = a[variant]
            rows.append(
                (
                    variant,
                    f"{v['per_trial_s']:.2f}",
                    f"{v['per_10_epochs_s']:.2f}",
                    f"{v['epochs']:.0f}",
                    f"{v['pruned']:.0f}",
                    f"{v['best']:.4f}",
                    f"{v['load_per_trial_s']:.2f}" if variant.startswith("example") else "-",
                )
            )
        print(table(rows))
        for pruner in ("none", "median"):
            r = a[f"ratio {pruner}"]
            print(
                f"  pruner {pruner}: hpsearch {r['per_trial']:.1f}x faster per trial, {r['per_10_epochs']:.1f}x per "
                f"10 epochs of work ({r['per_10_epochs_without_example_reload']:.1f}x if the example did not "
                "re-create its datasets every trial)"
            )
        ok = a["ratio none"]["per_10_epochs"] >= 3
        print(
            f"  acceptance: hpsearch >= 3x faster per trial at equal work (no pruning, per 10 epochs): {verdict(ok)}"
        )
    if "b" in out:
        b = out["b"]
        print(
            f"\n(b) pruners vs none: {args.b_trials} trials x {args.b_epochs} epochs, default fcn space, "
            f"{args.b_images - args.b_val:,} train + {args.b_val:,} val images, seeds {args.b_seeds}"
        )
        rows = [
            (
                "pruner",
                "epochs",
                "saved",
                "pruned",
                "best val acc",
                "vs none (pts)",
                "wall s",
                ">=40% saved & >=-0.5 pt",
            )
        ]
        for pruner, v in b.items():
            rows.append(
                (
                    pruner + (" (default)" if pruner == DEFAULT_PRUNER else ""),
                    "/".join(str(e) for e in v["epochs"]),
                    f"{100 * v['epochs_saved']:.0f}%",
                    "/".join(str(p) for p in v["pruned"]),
                    "/".join(f"{x:.4f}" for x in v["best"]),
                    f"{v['best_delta_points']:+.2f} (worst {v['worst_delta_points']:+.2f})",
                    "/".join(f"{w:.0f}" for w in v["wall"]),
                    "-" if pruner == "none" else ("yes" if v["meets"] else "no"),
                )
            )
        print(table(rows))
        meeting = [p for p in PRUNERS if b[p]["meets"]]
        print(
            f"  acceptance: default pruner {DEFAULT_PRUNER!r}: {verdict(b[DEFAULT_PRUNER]['meets'])}; "
            f"pruners that meet it: {', '.join(meeting) or 'none'}"
        )
    if "c" in out:
        c = out["c"]
        print(
            f"\n(c) jobs 2 vs jobs 1: {args.c_trials} trials x {args.c_epochs} epochs, "
            f"{args.b_images - args.b_val:,} train images, median of {args.c_repeats}"
        )
        rows = [
            (
                "setup",
                "jobs 1 trials/h",
                "jobs 2 trials/h",
                "ratio",
                "after start-up",
                "epochs/h ratio",
                "epochs 1 | 2",
                "dup. configs (jobs 2)",
            )
        ]
        for setup, v in c.items():
            rows.append(
                (
                    setup,
                    f"{v['jobs1_trials_per_hour']:.0f}",
                    f"{v['jobs2_trials_per_hour']:.0f}",
                    f"{v['ratio']:.2f}x",
                    f"{v['steady_ratio']:.2f}x",
                    f"{v['epoch_ratio']:.2f}x",
                    f"{'/'.join(map(str, v['jobs1_epochs']))} | {'/'.join(map(str, v['jobs2_epochs']))}",
                    "/".join(map(str, v["jobs2_duplicates"])),
                )
            )
        print(table(rows))
        ok = c["fixed-cost"]["ratio"] >= 1.6
        print(f"  acceptance: jobs 2 >= 1.6x trials per hour (fixed-cost space): {verdict(ok)}")
        print(
            "  'after start-up' counts from the first trial's start to the last trial's end; each"
            " worker process first imports torch and loads the data (~5 s)"
        )
    if args.quick:
        print("\n(--quick: a smoke run; acceptance applies to the full run)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few trials and epochs")
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. 'a' or 'bc' (default abc)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed for (a) and (c)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats of (a) (default 2)")
    parser.add_argument("--a-trials", type=int, default=None, help="trials per run in (a) (default 20)")
    parser.add_argument("--b-trials", type=int, default=None, help="trials per pruner in (b) (default 30)")
    parser.add_argument(
        "--b-epochs", type=int, default=None, help="epochs per trial in (b) (default: optimize's, 10)"
    )
    parser.add_argument(
        "--b-seeds", type=int, nargs="+", default=None, help="sampler seeds in (b) (default 0)"
    )
    parser.add_argument(
        "--b-parallel", type=int, default=1, help="(b) runs side by side (many-core machines; default 1)"
    )
    parser.add_argument("--b-images", type=int, default=12_000, help="images in the (b)/(c) subsample")
    parser.add_argument("--b-val", type=int, default=2_000, help="of which held out for validation")
    parser.add_argument("--c-trials", type=int, default=None, help="trials per run in (c) (default 16)")
    parser.add_argument("--c-epochs", type=int, default=None, help="epochs per trial in (c) (default 3)")
    parser.add_argument("--c-repeats", type=int, default=None, help="interleaved repeats of (c) (default 1)")
    parser.add_argument(
        "--c-setups", nargs="+", default=["fixed-cost", "default"], help="(c) setups: fixed-cost, default"
    )
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = dict(
        repeats=(1, 2),
        a_trials=(4, 20),
        b_trials=(8, 30),
        b_epochs=(2, SearchConfig.epochs),
        b_seeds=([0], [0]),
        c_trials=(4, 16),
        c_epochs=(2, 3),
        c_repeats=(1, 1),
    )
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if quick:
        args.b_images, args.b_val = 3_000, 500
    quiet()
    out = {"machine": machine(), "quick": quick, "args": {k: v for k, v in vars(args).items() if k != "json"}}
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "data"
        write_fashion_mnist(root, 12_000 if quick else FULL_TRAIN, 2_000 if quick else FULL_TEST)
        for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
            if part in args.parts:
                t0 = time.perf_counter()
                out[part] = fn(args, root, tmp)
                print(f"part ({part}) took {time.perf_counter() - t0:.0f} s", flush=True)
    report(out, args)
    write_json(args.json, out)


if __name__ == "__main__":
    main()
