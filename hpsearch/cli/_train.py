"""``hpsearch train``: train one configuration (a hand-tuned baseline or a spec file)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from hpsearch.baselines import BASELINES, get_baseline
from hpsearch.cli._app import DataDir, Dataset, Device, Json, Quiet, SplitSeed, Threads, ValSize, app
from hpsearch.config import DataConfig, TrainConfig, load_spec_file
from hpsearch.errors import ConfigError


def _baseline_table() -> str:
    rows = [("id", "model", "layers", "optimizer", "lr", "epochs", "reported")]
    for b in BASELINES.values():
        layers = ", ".join(str(c.filters) for c in b.model.convs)
        layers = (f"conv {layers}; " if layers else "") + ", ".join(map(str, b.model.hidden))
        rows.append(
            (b.id, b.kind, layers, b.train.optimizer, f"{b.train.lr:g}", str(b.train.epochs), b.reported)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _resolve_config(baseline: str | None, spec: str | None):
    if (baseline is None) == (spec is None):
        raise ConfigError("give exactly one of --baseline NAME or --spec FILE (see --list-baselines)")
    if baseline is not None:
        b = get_baseline(baseline)
        return b.id, b.model, b.train
    model, train = load_spec_file(spec)
    return spec, model, train or TrainConfig()


@app.command()
def train(
    baseline: Annotated[str | None, typer.Option("--baseline", help="A hand-tuned baseline id.")] = None,
    spec: Annotated[
        str | None, typer.Option("--spec", help="A JSON spec file (model, or model+train).")
    ] = None,
    list_baselines: Annotated[
        bool, typer.Option("--list-baselines", help="Show the baselines and exit.")
    ] = False,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Override the number of epochs.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Override the batch size.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Training seed (init, dropout, batch order).")
    ] = None,
    dataset: Dataset = "fashion-mnist",
    data_dir: DataDir = None,
    val_size: ValSize = 5000,
    split_seed: SplitSeed = 0,
    device: Device = "auto",
    threads: Threads = None,
    test: Annotated[bool, typer.Option("--test", help="Also report test accuracy.")] = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Train one configuration and report validation (and optionally test) accuracy."""
    if list_baselines:
        typer.echo(_baseline_table())
        return
    from hpsearch.data import load_dataset
    from hpsearch.train import fit

    name, model, train_cfg = _resolve_config(baseline, spec)
    overrides = {
        k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("seed", seed)) if v is not None
    }
    train_cfg = TrainConfig.from_dict({**train_cfg.to_dict(), **overrides})
    data_cfg = DataConfig(dataset=dataset, data_dir=data_dir, val_size=val_size, split_seed=split_seed)
    data = load_dataset(data_cfg)

    def show(ep) -> None:
        if not quiet:
            typer.echo(
                f"epoch {ep.epoch}/{train_cfg.epochs}  train loss {ep.train_loss:.4f}  "
                f"val loss {ep.val_loss:.4f}  val acc {ep.val_acc:.4f}  {ep.seconds:.2f}s",
                err=True,
            )

    result = fit(model, train_cfg, data, device=device, threads=threads, on_epoch=show, eval_test=test)
    out = {
        "config": name,
        "model": model.to_dict(),
        "train": train_cfg.to_dict(),
        "data": data_cfg.to_dict(),
        "split": data.split,
        **result.to_dict(),
    }
    if as_json:
        json.dump(out, sys.stdout, indent=2)
        typer.echo()
        return
    typer.echo(f"{name}: {result.status}{' (' + result.reason + ')' if result.reason else ''}")
    typer.echo(f"  params {result.params:,}  forward FLOPs/sample {result.flops:,}  device {result.device}")
    typer.echo(f"  val acc {result.val_acc:.4f} (best {result.best_val_acc:.4f})  time {result.seconds:.1f}s")
    if result.test_acc is not None:
        typer.echo(f"  test acc {result.test_acc:.4f}")
