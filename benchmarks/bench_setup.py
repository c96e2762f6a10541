"""Per-trial set-up outside the epochs: what a study pays again for every trial.

Fits a small FCN for one epoch six times on one in-memory Fashion-MNIST-sized dataset
(55,000 + 5,000 synthetic images), as the trials of a study do in one worker, and prints the
time each ``fit`` spends outside its epochs (model build, input conversion). Since the
prepared float32 splits are kept on the Dataset (``hpsearch.train.prepared_split``), only the
first fit converts them.

    .venv/bin/python benchmarks/bench_setup.py
"""

from __future__ import annotations

import statistics

from hpsearch.config import ModelSpec, TrainConfig
from hpsearch.synthetic import make_dataset
from hpsearch.train import fit


def main() -> None:
    data = make_dataset(n_train=60_000, n_test=1_000, val_size=5_000, shape=(28, 28), seed=0)
    spec, cfg = ModelSpec(kind="fcn", hidden=[64]), TrainConfig(epochs=1, batch_size=256)
    outside = []
    for _ in range(6):
        result = fit(spec, cfg, data, device="cpu", threads=2)
        outside.append(result.seconds - sum(e.seconds for e in result.epochs))
    print(
        f"seconds outside the epochs: first fit {outside[0]:.3f}, later fits (median) {statistics.median(outside[1:]):.3f}"
    )


if __name__ == "__main__":
    main()
