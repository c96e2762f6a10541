"""Helpers shared by the benchmark scripts: synthetic data, machine facts, tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

# Full-size Fashion-MNIST: 60,000 training and 10,000 test images of 28 x 28, 10 classes.
FULL_TRAIN, FULL_TEST, FULL_VAL = 60_000, 10_000, 5_000


def write_fashion_mnist(root: str | Path, n_train: int, n_test: int) -> Path:
    """Write synthetic Fashion-MNIST IDX files where torchvision and hpsearch look for them."""
    from hpsearch.synthetic import write_idx_dataset

    return write_idx_dataset(root, "fashion-mnist", n_train=n_train, n_test=n_test, seed=0)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import optuna
    import torchvision

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.is_available(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "optuna": optuna.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text table; the first row is the header."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nfigures written to {path}")
