"""``hpsearch evaluate``: retrain the top trials with fresh seeds; mean ± sd and the optimism gap."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hpsearch.cli._app import DataDir, Device, Json, Quiet, Storage, Threads, app


def _fmt(mean: float | None, sd: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f} ± {sd:.4f}" if sd is not None else f"{mean:.4f}"


class _Progress:
    """One line per finished retrain on stderr, JSON lines on stdout, or nothing."""

    def __init__(self, quiet: bool, as_json: bool):
        self.quiet, self.as_json = quiet, as_json

    def started(self, facts: dict) -> None:
        if self.as_json:
            print(json.dumps({"event": "start", **facts}), flush=True)
        elif not self.quiet:
            trials = ", ".join(map(str, facts["trials"]))
            done = f", {facts['reused']} already done" if facts["reused"] else ""
            typer.echo(
                f"study {facts['study']}: retraining trials {trials} × {facts['seeds']} seeds "
                f"({facts['total']} runs{done})",
                err=True,
            )

    def run(self, run: dict) -> None:
        if self.as_json:
            print(json.dumps({"event": "run", **run}), flush=True)
        elif not self.quiet:
            test = f"{run['test_acc']:.4f}" if run["test_acc"] is not None else "-"
            typer.echo(
                f"[{run['done']}/{run['total']}] trial {run['number']} seed {run['seed_index']}: "
                f"val {run['val_acc']:.4f}  test {test}  {run['status']}  {run['seconds']:.1f}s",
                err=True,
            )


def _table(ev) -> str:
    rows = [("trial", "search val", "val mean ± sd", "test mean ± sd", "optimism gap", "runs")]
    for r in ev.rows:
        gap = f"{r.optimism_gap:+.4f}" if r.optimism_gap is not None else "-"
        mark = " *" if r.number == ev.winner else ""
        rows.append(
            (
                f"{r.number}{mark}",
                f"{r.search_val:.4f}",
                _fmt(r.val_mean, r.val_sd),
                _fmt(r.test_mean, r.test_sd),
                gap,
                f"{r.runs}/{ev.seeds}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


@app.command()
def evaluate(
    study: Annotated[str, typer.Argument(help="Study name.")],
    top: Annotated[int, typer.Option("--top", min=1, help="Retrain the K best feasible trials.")] = 3,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Retrains per trial, each a fresh seed.")] = 3,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs per retrain (default: the study's).")
    ] = None,
    storage: Storage = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Retrain the top-K trials with fresh seeds; pick the winner by mean validation accuracy."""
    from hpsearch.study import evaluate_study

    progress = _Progress(quiet, as_json)
    ev = evaluate_study(
        study,
        storage,
        top=top,
        seeds=seeds,
        epochs=epochs,
        data_dir=data_dir,
        device=device,
        threads=threads,
        on_start=progress.started,
        on_run=progress.run,
    )
    if as_json:
        print(json.dumps({"event": "end", **ev.to_dict()}), flush=True)
    else:
        typer.echo(_table(ev))
        for note in ev.notes:
            typer.echo(f"note: {note}")
        if ev.winner is not None:
            typer.echo(
                f"winner (* above): trial {ev.winner}, by mean validation accuracy; "
                "test accuracy is shown, never used to choose"
            )
    if ev.interrupted:
        typer.echo(
            f"interrupted: {ev.reused + ev.trained} finished retrains are stored in the study; "
            "run the same command again to finish the rest",
            err=True,
        )
        raise typer.Exit(130)
