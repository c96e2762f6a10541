"""Time one training epoch on a CUDA GPU: the idiomatic DataLoader loop against hpsearch's trainer.

The GPU counterpart of ``bench_train.py`` (same data, models and definitions):

(a) idiomatic: torchvision FashionMNIST with ToTensor + Normalize, ``DataLoader(batch_size=128,
    shuffle=True, pin_memory=True)`` with 0 and 4 workers (the faster is compared), each batch copied
    to the GPU with ``non_blocking=True``, Adam, the textbook loop, a validation pass;
(b) hpsearch: ``fit(..., device="cuda")``, whose splits live on the GPU as tensors.

Figure: the median over repeats of the last epoch's seconds (train + validation), and achieved
training GFLOP/s (3 x forward FLOPs x 55,000 images / seconds) against a float32 matmul peak
measured in the same run (TF32 off, PyTorch's default for matmuls).

    python benchmarks/bench_gpu.py              # needs a CUDA GPU
    python benchmarks/bench_gpu.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FULL_TEST, FULL_TRAIN, FULL_VAL, machine, median, table, write_fashion_mnist, write_json
from bench_train import BATCH, INPUT_SHAPE, NUM_CLASSES, load_both, run_idiomatic

from hpsearch.baselines import get_baseline
from hpsearch.geometry import count_flops
from hpsearch.train import fit


def gpu_peak(n: int = 8192, reps: int = 10) -> float:
    """float32 matmul GFLOP/s on the GPU (CUDA events, after a warm-up)."""
    a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
    torch.mm(a, b)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        torch.mm(a, b)
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1000) / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="6,000 images, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["fcn-000-final", "cnn-003"])
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU")
    n_train, n_test, n_val = (6000, 1000, 500) if args.quick else (FULL_TRAIN, FULL_TEST, FULL_VAL)
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        write_fashion_mnist(tmp, n_train, n_test)
        data, source, train_idx, val_idx = load_both(Path(tmp), n_val)
        peak = gpu_peak()
        rows, out = [], {"machine": machine(), "gpu": torch.cuda.get_device_name(), "peak_gflops": peak}
        for name in args.models:
            b = get_baseline(name)
            cfg = dataclasses.replace(b.train, batch_size=BATCH, epochs=args.epochs)
            flops = 3 * count_flops(b.model, INPUT_SHAPE, NUM_CLASSES) * len(train_idx)
            ours, theirs = [], {0: [], 4: []}
            for _ in range(repeats):
                ours.append(fit(b.model, cfg, data, device="cuda").epochs[-1].seconds)
                for workers in theirs:
                    theirs[workers].append(
                        run_idiomatic(
                            b.model, cfg, source, train_idx, val_idx, workers, args.epochs, device="cuda"
                        ).epoch_seconds[-1]
                    )
            best_workers = min(theirs, key=lambda w: median(theirs[w]))
            ours_s, theirs_s = median(ours), median(theirs[best_workers])
            out[name] = {
                "hpsearch_s": ours_s,
                "idiomatic_s": theirs_s,
                "idiomatic_workers": best_workers,
                "speedup": theirs_s / ours_s,
                "hpsearch_gflops": flops / ours_s / 1e9,
                "idiomatic_gflops": flops / theirs_s / 1e9,
            }
            rows.append(
                (
                    name,
                    f"{theirs_s:.2f} ({best_workers} workers)",
                    f"{ours_s:.3f}",
                    f"{theirs_s / ours_s:.1f}x",
                    f"{flops / ours_s / 1e9:.0f}",
                    f"{flops / ours_s / 1e9 / peak:.1%}",
                )
            )
    print(
        f"GPU {out['gpu']}; float32 matmul peak {peak:.0f} GFLOP/s; batch {BATCH}; epoch = train + validation"
    )
    print(
        table(
            [
                ("model", "idiomatic s/epoch", "hpsearch s/epoch", "speed-up", "hpsearch GFLOP/s", "of peak"),
                *rows,
            ]
        )
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
