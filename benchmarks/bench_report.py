"""Benchmark ``hpsearch report`` on a 100-trial study (acceptance: under 10 s).

The study is synthetic (``tests/report_fixtures.py``): 100 trials of the CNN space with the
attributes hpsearch's objective writes, a third of them pruned, some diverged, learning curves,
and saved weights for each new best trial. The dataset is synthetic Fashion-MNIST at full size
(60,000 training and 10,000 test images as IDX files), so the best model's confusion matrix is
computed on 10,000 test images as it would be for a real study.

Two figures, each the median of several repeats:

- ``write_report`` in a warm process, split into collect (read the study, compute every
  section, evaluate the best model), render (HTML and figure JSON) and write (atomic);
- ``hpsearch report`` as a user runs it: a fresh process, so Python start-up and imports
  (torch, optuna, plotly) count too.

    .venv/bin/python benchmarks/bench_report.py              # ~1 min on 2 cores
    .venv/bin/python benchmarks/bench_report.py --quick      # 20 trials, 1,000 test images
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic studies
import report_fixtures as rf
from _common import FULL_TEST, FULL_TRAIN, machine, median, table, verdict, write_fashion_mnist, write_json

from hpsearch.report import collect_report, render_report
from hpsearch.report._write import write_text_atomic

LIMIT_SECONDS = 10.0  # the acceptance criterion


def _timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def bench_in_process(name: str, url: str, data_dir: str, out: Path, repeats: int) -> dict[str, float]:
    """Median seconds of each stage of ``write_report``, after one warm-up run."""
    stages: dict[str, list[float]] = {"collect": [], "render": [], "write": [], "total": []}
    for i in range(repeats + 1):
        data, t_collect = _timed(collect_report, name, url, data_dir)
        html, t_render = _timed(render_report, data)
        _, t_write = _timed(write_text_atomic, out, html)
        if i == 0:
            continue  # the first run pays for imports and reading plotly.js from disk
        for key, value in zip(
            stages, (t_collect, t_render, t_write, t_collect + t_render + t_write), strict=True
        ):
            stages[key].append(value)
    return {key: median(values) for key, values in stages.items()}


def bench_cli(name: str, url: str, data_dir: str, out: Path, repeats: int) -> float:
    """Median wall seconds of ``hpsearch report`` in a fresh process."""
    cmd = [sys.executable, "-m", "hpsearch", "report", name, "--storage", url]
    cmd += ["--data-dir", data_dir, "--out", str(out)]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--model", choices=("fcn", "cnn"), default="cnn")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20 trials, small data, 2 repeats")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    n_train, n_test = FULL_TRAIN, FULL_TEST
    if args.quick:
        args.trials, args.repeats, n_train, n_test = 20, 2, 6_000, 1_000

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url, name = f"sqlite:///{root / 'studies.db'}", f"{args.model}-bench"
        print(f"building a {args.trials}-trial {args.model} study and {n_train:,} + {n_test:,} images ...")
        write_fashion_mnist(root / "data", n_train, n_test)
        study = rf.build_study(
            url, name, model=args.model, n_trials=args.trials, baselines=True, val_size=5_000
        )
        out = root / "reports" / f"{name}.html"
        stages = bench_in_process(name, url, str(root / "data"), out, args.repeats)
        cli = bench_cli(name, url, str(root / "data"), out, args.repeats)
        size = out.stat().st_size
        data = collect_report(name, url, str(root / "data"))

    print(f"\n{len(study.trials)} trials, {data.summary.counts['pruned']} pruned; report {size / 1e6:.1f} MB")
    print(f"best model evaluated on {data.best_model.evaluation.n:,} test images\n")
    rows = [["stage", "median seconds"]]
    rows += [[f"write_report: {key}", f"{value:.2f}"] for key, value in stages.items()]
    rows.append(["hpsearch report (fresh process)", f"{cli:.2f}"])
    print(table(rows))
    ok = max(cli, stages["total"]) < LIMIT_SECONDS
    print(f"\nacceptance (< {LIMIT_SECONDS:.0f} s for a 100-trial study): {verdict(ok)}")
    write_json(
        args.json,
        {
            "machine": machine(),
            "trials": len(study.trials),
            "model": args.model,
            "test_images": n_test,
            "repeats": args.repeats,
            "report_bytes": size,
            "write_report_seconds": stages,
            "cli_seconds": cli,
        },
    )


if __name__ == "__main__":
    main()
