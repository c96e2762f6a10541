"""``hpsearch train``: train one configuration (a hand-tuned baseline or a spec file)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from hpsearch.baselines import BASELINES, get_baseline
from hpsearch.cli._app import DataDir, Dataset, Device, Json, Quiet, SplitSeed, Storage, Threads, ValSize, app
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


def _resolve_config(baseline: str | None, spec: str | None, from_trial: str | None, storage: str | None):
    """(name, model, train, stored data config or None) from exactly one of the three sources."""
    if sum(x is not None for x in (baseline, spec, from_trial)) != 1:
        raise ConfigError(
            "give exactly one of --baseline NAME, --spec FILE or --from-trial STUDY:N (see --list-baselines)"
        )
    if baseline is not None:
        b = get_baseline(baseline)
        return b.id, b.model, b.train, None
    if spec is not None:
        model, train = load_spec_file(spec)
        return spec, model, train or TrainConfig(), None
    study, _, number = from_trial.rpartition(":")
    if not study or not number.isdigit():
        raise ConfigError(f"--from-trial takes STUDY:N, e.g. cnn-fashion-mnist:12; got {from_trial!r}")
    from hpsearch.study import trial_config

    model, train, data = trial_config(study, storage, int(number))
    return from_trial, model, train, data


class _EpochBar:
    """A progress bar over epochs on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.bar = total, quiet, None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
            self.bar = Progress(*columns, console=Console(stderr=True))
            self.task = self.bar.add_task(f"epoch 0/{total}", total=total)
            self.bar.start()

    def __call__(self, ep) -> None:
        text = (
            f"epoch {ep.epoch}/{self.total}  train loss {ep.train_loss:.4f}  val loss {ep.val_loss:.4f}  "
            f"val acc {ep.val_acc:.4f}  {ep.seconds:.2f}s"
        )
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=text)
        elif not self.quiet:
            typer.echo(text, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
def train(
    baseline: Annotated[str | None, typer.Option("--baseline", help="A hand-tuned baseline id.")] = None,
    spec: Annotated[
        str | None, typer.Option("--spec", help="A JSON spec file (model, or model+train).")
    ] = None,
    from_trial: Annotated[
        str | None, typer.Option("--from-trial", help="Retrain one trial of a study exactly: STUDY:N.")
    ] = None,
    storage: Storage = None,
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
    """Train one configuration (a baseline, a spec file or a stored trial) and report its accuracy."""
    if list_baselines:
        typer.echo(_baseline_table())
        return
    from hpsearch.data import load_dataset
    from hpsearch.train import fit, resolve_device

    dev = resolve_device(device)  # a bad --device fails before any data is loaded
    name, model, train_cfg, stored_data = _resolve_config(baseline, spec, from_trial, storage)
    overrides = {
        k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("seed", seed)) if v is not None
    }
    train_cfg = TrainConfig.from_dict({**train_cfg.to_dict(), **overrides})
    data_cfg = DataConfig(dataset=dataset, data_dir=data_dir, val_size=val_size, split_seed=split_seed)
    if stored_data is not None:  # a trial is retrained on its own study's data and split
        data_cfg = DataConfig(stored_data.dataset, data_dir, stored_data.val_size, stored_data.split_seed)
    data = load_dataset(data_cfg)
    bar = _EpochBar(train_cfg.epochs, quiet or as_json)
    try:
        result = fit(model, train_cfg, data, device=dev, threads=threads, on_epoch=bar, eval_test=test)
    finally:
        bar.close()
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
