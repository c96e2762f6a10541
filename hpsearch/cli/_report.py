"""``hpsearch report``: one self-contained HTML page about a study."""

from __future__ import annotations

from typing import Annotated

import typer

from hpsearch.cli._app import DataDir, Storage, app


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: Storage = None,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="HTML file to write (default: reports/<study>.html)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write an HTML report of a study: search, learning curves, best model, baselines, Pareto front."""
    from hpsearch.report import write_report

    path = write_report(study, storage, out, data_dir=data_dir)
    typer.echo(f"report written to {path}")
