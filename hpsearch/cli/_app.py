"""The typer application and the option aliases shared by several commands."""

from __future__ import annotations

import os
from typing import Annotated

import typer

app = typer.Typer(
    name="hpsearch",
    help="Automatic hyperparameter search for small PyTorch image classifiers, built on Optuna.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Dataset = Annotated[
    str,
    typer.Option("--dataset", help="fashion-mnist, mnist, kmnist, or a path to an .npz file."),
]
DataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir", help="Where datasets live (default: $HPSEARCH_DATA_DIR or ~/.cache/hpsearch/data)."
    ),
]
ValSize = Annotated[int, typer.Option("--val-size", help="Images held out of train for validation.")]
SplitSeed = Annotated[int, typer.Option("--split-seed", help="Seed of the stratified validation split.")]
Device = Annotated[
    str, typer.Option("--device", help="auto, cpu, cuda or mps (auto picks CUDA when present).")
]
Threads = Annotated[
    int | None, typer.Option("--threads", help="torch CPU threads (default: all cores).", min=1)
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


def default_storage() -> str:
    """``sqlite:///studies/hpsearch.db`` under the current directory, or $HPSEARCH_STORAGE."""
    return os.environ.get("HPSEARCH_STORAGE", "sqlite:///studies/hpsearch.db")


Storage = Annotated[
    str | None,
    typer.Option("--storage", help="Optuna storage URL (default: sqlite:///studies/hpsearch.db)."),
]
