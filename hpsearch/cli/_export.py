"""``hpsearch export`` (a trial as a model folder) and ``hpsearch predict`` (use one)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated

import typer

from hpsearch.cli._app import DataDir, Device, Json, Quiet, Storage, Threads, app


@app.command()
def export(
    study: Annotated[str, typer.Argument(help="Study name.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder to write the model into.")],
    trial: Annotated[
        int | None,
        typer.Option("--trial", min=0, help="Trial number (default: the best feasible trial)."),
    ] = None,
    storage: Storage = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Write a trial's weights, spec and preprocessing (JSON) and a TorchScript file; retrain if needed."""
    from hpsearch.study import export_trial

    def on_epoch(ep) -> None:
        if not (quiet or as_json):
            typer.echo(f"  retrain epoch {ep.epoch}: val acc {ep.val_acc:.4f}", err=True)

    result = export_trial(
        study,
        storage,
        out,
        number=trial,
        data_dir=data_dir,
        device=device,
        threads=threads,
        on_epoch=on_epoch,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    search = f" (search {result.search_val:.4f})" if result.search_val is not None else ""
    test = f", test acc {result.test_acc:.4f}" if result.test_acc is not None else ""
    typer.echo(f"exported trial {result.number} of {study} to {result.path}")
    typer.echo(f"  val acc {result.val_acc:.4f}{search}{test}")
    typer.echo(f"  weights: {result.reason}")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    typer.echo(
        f"  files: model.json, weights.pt, model.ts; use it with: hpsearch predict {result.path} IMAGES.npz"
    )


@app.command()
def predict(
    model_dir: Annotated[str, typer.Argument(help="A folder written by hpsearch export.")],
    images: Annotated[
        str, typer.Argument(help=".npz with x: uint8 images N×H×W or N×C×H×W (and optionally labels y).")
    ],
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Save to .csv, .npz or .json instead of printing CSV."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Predict classes for the images of an .npz file with an exported model."""
    from hpsearch.bundle import load_bundle, read_images, write_predictions

    bundle = load_bundle(model_dir)
    x, y = read_images(images, bundle.input_shape)
    pred = bundle.predict(x)
    if out is not None:
        write_predictions(out, pred, bundle.classes)
        if not quiet:
            typer.echo(f"{len(x)} predictions written to {out}", err=True)
    else:  # CSV on stdout, the same columns as a .csv file
        confidence = pred.probabilities.max(1).values.tolist()
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["index", "label", "class", "probability"])
        for i, (k, p) in enumerate(zip(pred.labels.tolist(), confidence, strict=True)):
            writer.writerow([i, k, bundle.classes[k], f"{p:.6f}"])
    if y is not None and not quiet:
        accuracy = (pred.labels == y).float().mean().item()
        typer.echo(f"accuracy against the file's labels y: {accuracy:.4f} ({len(y)} images)", err=True)
