"""Time one training epoch: the idiomatic PyTorch loop against hpsearch's trainer.

For each model (fcn-000-final and cnn-003 by default) and in the same run:

(a) the idiomatic way: ``torchvision.datasets.FashionMNIST`` with
    ``Compose([ToTensor(), Normalize((mean,), (std,))])``, a ``Subset`` of the
    55,000 images hpsearch trains on, ``DataLoader(batch_size=128, shuffle=True)``
    with ``num_workers`` 0 and 2 (the faster one is compared), Adam with the
    baseline's lr and weight decay, the textbook loop (zero_grad, forward, loss,
    backward, step, ``loss.item()`` for the running loss), then a validation pass
    over the 5,000 held-out images through a second DataLoader;
(b) hpsearch: ``hpsearch.train.fit`` on the same split, batch size 128.

Both use the same model from ``build_model``, the same seed and the same torch
thread count. Each variant runs ``--epochs`` epochs (default 2) and the figure
compared is the last epoch (steady state: caches, oneDNN primitives and the
allocator are warm); epoch 1 is shown too. An epoch is training plus
validation, on both sides. hpsearch converts each split to float32 once,
before its first epoch's clock starts; that one-time cost (with the model
build) is reported separately as ``setup``. The idiomatic DataLoader starts its
worker processes every epoch, inside the epoch's time, as it does by default.

Achieved GFLOP/s = training FLOPs per epoch / epoch seconds, with training
FLOPs = 3 x forward FLOPs per sample x training images (the usual convention:
the backward pass costs about twice the forward), forward FLOPs from
``hpsearch.geometry.count_flops``. Validation time is in the denominator but
its FLOPs (5,000 forward passes, ~3% more) are not counted. The peak is the
median GFLOP/s of repeated square float32 matmuls (2048, 3072, 4096) with the
same thread count, measured in every repeat; the per-repeat peak is the best
size, the reported peak the median over repeats.

Variants are interleaved (the order rotates every repeat) and each figure is
the median over ``--repeats`` runs, because the machine is shared.

    .venv/bin/python benchmarks/bench_train.py            # the real measurement (~10 min on 2 cores)
    .venv/bin/python benchmarks/bench_train.py --quick    # smoke run on 6,000 images (~1 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    FULL_TEST,
    FULL_TRAIN,
    FULL_VAL,
    machine,
    median,
    table,
    verdict,
    write_fashion_mnist,
    write_json,
)

from hpsearch.baselines import get_baseline
from hpsearch.config import DataConfig, ModelSpec, TrainConfig
from hpsearch.data import Dataset, load_dataset, stratified_split
from hpsearch.geometry import count_flops
from hpsearch.models import build_model
from hpsearch.train import fit

BATCH = 128
INPUT_SHAPE, NUM_CLASSES = (1, 28, 28), 10
ACCEPT = {"fcn-000-final": {"speedup": 3.0, "peak_share": 0.40}, "cnn-003": {"speedup": 2.0}}


@dataclasses.dataclass
class Run:
    epoch_seconds: list[float]
    val_acc: float
    setup_seconds: float = 0.0  # hpsearch only: model build + one-time float32 conversion


def measure_peak(sizes: list[int], reps: int) -> dict[int, float]:
    """Median GFLOP/s of ``reps`` timed ``n x n`` float32 matmuls, per size (after a warm-up)."""
    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t0)
        out[n] = 2 * n**3 / median(times) / 1e9
    return out


def run_idiomatic(
    spec: ModelSpec,
    cfg: TrainConfig,
    source,
    train_idx,
    val_idx,
    workers: int,
    epochs: int,
    device: str = "cpu",
) -> Run:
    """The textbook DataLoader loop; returns wall seconds per epoch (train + validation).

    On CUDA it is the textbook GPU loop: pinned memory, persistent workers, ``non_blocking``
    copies, and a synchronize before each clock reading.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(cfg.seed)
    model = build_model(spec, INPUT_SHAPE, NUM_CLASSES).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader_kw = dict(
        batch_size=BATCH, num_workers=workers, pin_memory=cuda, persistent_workers=cuda and workers > 0
    )
    train_loader = DataLoader(
        Subset(source, train_idx),
        shuffle=True,
        generator=torch.Generator().manual_seed(cfg.seed),
        **loader_kw,
    )
    val_loader = DataLoader(Subset(source, val_idx), **loader_kw)
    seconds, acc = [], 0.0
    for _ in range(epochs):
        sync()
        t0 = time.perf_counter()
        model.train()
        running_loss = 0.0
        for x, y in train_loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            running_loss += loss.item()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                correct += (model(x).argmax(1) == y).sum().item()
        sync()
        seconds.append(time.perf_counter() - t0)
        acc = correct / len(val_idx)
    return Run(seconds, acc)


def run_hpsearch(spec: ModelSpec, cfg: TrainConfig, data: Dataset, epochs: int, threads: int) -> Run:
    """``hpsearch.train.fit``; epoch seconds from ``FitResult.epochs[i].seconds``."""
    result = fit(
        spec, dataclasses.replace(cfg, batch_size=BATCH, epochs=epochs), data, device="cpu", threads=threads
    )
    seconds = [e.seconds for e in result.epochs]
    return Run(seconds, result.val_acc, result.seconds - sum(seconds))


def load_both(root: Path, val_size: int):
    """hpsearch's Dataset and the idiomatic torchvision dataset with the same train/val indices."""
    import torchvision
    from torchvision import transforms

    data = load_dataset(
        DataConfig(dataset="fashion-mnist", data_dir=str(root), val_size=val_size), download=False
    )
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((data.mean,), (data.std,))])
    source = torchvision.datasets.FashionMNIST(str(root), train=True, download=False, transform=transform)
    mask = stratified_split(source.targets, val_size, seed=0)  # the split load_dataset made
    train_idx, val_idx = np.flatnonzero(~mask).tolist(), np.flatnonzero(mask).tolist()
    assert len(train_idx) == len(data.y_train) and torch.equal(source.targets[train_idx], data.y_train)
    return data, source, train_idx, val_idx


def measure(args) -> dict:
    n_train, n_test, val_size = (6_000, 1_000, 500) if args.quick else (FULL_TRAIN, FULL_TEST, FULL_VAL)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        write_fashion_mnist(tmp, n_train, n_test)
        data, source, train_idx, val_idx = load_both(Path(tmp), val_size)
        baselines = {name: get_baseline(name) for name in args.models}
        variants = [f"idiomatic w{w}" for w in args.workers] + ["hpsearch"]
        runs: dict[str, dict[str, list[Run]]] = {m: {v: [] for v in variants} for m in args.models}
        peaks: list[dict[int, float]] = []
        for rep in range(args.repeats):
            peaks.append(measure_peak(args.sizes, args.matmul_reps))
            print(f"repeat {rep + 1}/{args.repeats}: peak {max(peaks[-1].values()):.1f} GFLOP/s", flush=True)
            order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
            for name, base in baselines.items():
                for variant in order:
                    torch.set_num_threads(args.threads)
                    if variant == "hpsearch":
                        run = run_hpsearch(base.model, base.train, data, args.epochs, args.threads)
                    else:
                        workers = int(variant.rsplit("w", 1)[1])
                        run = run_idiomatic(
                            base.model, base.train, source, train_idx, val_idx, workers, args.epochs
                        )
                    runs[name][variant].append(run)
                    secs = " ".join(f"{s:.2f}" for s in run.epoch_seconds)
                    print(
                        f"  {name:<14} {variant:<13} epochs {secs} s  val acc {run.val_acc:.4f}", flush=True
                    )
        return summarize(args, baselines, runs, peaks, len(train_idx))


def summarize(args, baselines, runs, peaks, n_used: int) -> dict:
    per_repeat_peak = [max(p.values()) for p in peaks]
    peak = median(per_repeat_peak)
    out = {
        "machine": machine(),
        "threads": args.threads,
        "quick": args.quick,
        "epochs_per_run": args.epochs,
        "measured_epoch": args.epochs,
        "repeats": args.repeats,
        "train_images": n_used,
        "flops_convention": "training FLOPs = 3 x forward FLOPs/sample (count_flops) x training images",
        "peak": {
            "gflops": peak,
            "per_repeat": per_repeat_peak,
            "by_size": {str(n): median([p[n] for p in peaks]) for n in args.sizes},
        },
        "models": {},
    }
    for name, base in baselines.items():
        fwd = count_flops(base.model, INPUT_SHAPE, NUM_CLASSES)
        train_gflop = 3 * fwd * n_used / 1e9
        variants = {}
        for variant, rs in runs[name].items():
            last = [r.epoch_seconds[-1] for r in rs]
            variants[variant] = {
                "epoch_seconds": median(last),
                "epoch_seconds_runs": last,
                "epoch1_seconds": median([r.epoch_seconds[0] for r in rs]),
                "setup_seconds": median([r.setup_seconds for r in rs]),
                "gflops": train_gflop / median(last),
                "peak_share": train_gflop / median(last) / peak,
                "val_acc": median([r.val_acc for r in rs]),
            }
        idiomatic = min((v for v in variants if v != "hpsearch"), key=lambda v: variants[v]["epoch_seconds"])
        speedup = variants[idiomatic]["epoch_seconds"] / variants["hpsearch"]["epoch_seconds"]
        # The ratio per repeat too, from runs made back to back: a check on the medians.
        paired = [
            a.epoch_seconds[-1] / b.epoch_seconds[-1]
            for a, b in zip(runs[name][idiomatic], runs[name]["hpsearch"], strict=True)
        ]
        out["models"][name] = {
            "forward_flops": fwd,
            "train_gflop_per_epoch": train_gflop,
            "variants": variants,
            "idiomatic_compared": idiomatic,
            "speedup": speedup,
            "speedup_per_repeat": paired,
        }
    return out


def report(out: dict) -> None:
    peak = out["peak"]
    print(
        f"\n{out['machine']['cpu']}, {out['machine']['cores']} cores, torch threads {out['threads']}, "
        f"no GPU used; {out['train_images']:,} training images, batch {BATCH}"
    )
    sizes = ", ".join(f"{n}: {g:.1f}" for n, g in peak["by_size"].items())
    print(
        f"peak float32 matmul: {peak['gflops']:.1f} GFLOP/s (median over repeats of the best size; {sizes})"
    )
    print(
        f"epoch = training + validation; figure = epoch {out['measured_epoch']} of {out['epochs_per_run']}, "
        f"median of {out['repeats']} interleaved runs\n"
    )
    rows = [
        ("model", "variant", "epoch 1 s", "epoch s", "runs (s)", "GFLOP/s", "% peak", "setup s", "val acc")
    ]
    for name, m in out["models"].items():
        for variant, v in m["variants"].items():
            rows.append(
                (
                    name,
                    variant,
                    f"{v['epoch1_seconds']:.2f}",
                    f"{v['epoch_seconds']:.2f}",
                    " ".join(f"{s:.2f}" for s in v["epoch_seconds_runs"]),
                    f"{v['gflops']:.1f}",
                    f"{100 * v['peak_share']:.0f}%",
                    f"{v['setup_seconds']:.2f}" if variant == "hpsearch" else "-",
                    f"{v['val_acc']:.4f}",
                )
            )
    print(table(rows))
    print()
    for name, m in out["models"].items():
        paired = " ".join(f"{r:.2f}" for r in m["speedup_per_repeat"])
        print(
            f"{name}: forward {m['forward_flops'] / 1e6:.2f} MFLOP/sample, {m['train_gflop_per_epoch']:.0f} GFLOP "
            f"per training epoch; hpsearch is {m['speedup']:.2f}x faster than {m['idiomatic_compared']} "
            f"(per repeat: {paired})"
        )
        accept = ACCEPT.get(name, {})
        if "speedup" in accept:
            print(
                f"  acceptance: >= {accept['speedup']:.0f}x faster: {verdict(m['speedup'] >= accept['speedup'])}"
            )
        if "peak_share" in accept:
            share = m["variants"]["hpsearch"]["peak_share"]
            print(
                f"  acceptance: >= {100 * accept['peak_share']:.0f}% of peak: {100 * share:.0f}%, "
                f"{verdict(share >= accept['peak_share'])}"
            )
    if out["quick"]:
        print("\n(--quick: a smoke run on 6,000 images; acceptance applies to the full run)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 6,000 images, 1 repeat, one matmul size"
    )
    parser.add_argument("--repeats", type=int, default=None, help="interleaved runs per variant (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the last one is the figure")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads for every variant")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers to try"
    )
    parser.add_argument("--models", nargs="+", default=["fcn-000-final", "cnn-003"], help="baseline ids")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.sizes = [2048] if args.quick else [2048, 3072, 4096]
    args.matmul_reps = 3 if args.quick else 5
    out = measure(args)
    report(out)
    write_json(args.json, out)


if __name__ == "__main__":
    main()
