"""``hpsearch optimize | worker | studies | show | dashboard | space``."""

from __future__ import annotations

import json
import shlex
import sys
import time
from typing import Annotated

import typer

from hpsearch.cli._app import DataDir, Dataset, Device, Json, Quiet, SplitSeed, Storage, Threads, ValSize, app
from hpsearch.config import DataConfig, SearchConfig
from hpsearch.errors import ConfigError

StudyName = Annotated[
    str | None, typer.Option("--study-name", help="Study name (default: <model>-<dataset>).")
]
Timeout = Annotated[
    float | None, typer.Option("--timeout", help="Stop starting trials after this many seconds.")
]


class _Progress:
    """Live progress: one line per finished trial, or JSON lines, or nothing."""

    def __init__(self, total: int, quiet: bool, as_json: bool):
        self.total, self.quiet, self.as_json = total, quiet, as_json
        self.start = time.time()
        self.done = 0
        self.best: float | None = None

    def started(self, facts: dict) -> None:
        self.total = facts["trials"]
        if self.as_json:
            print(json.dumps({"event": "start", **facts}), flush=True)
        elif not self.quiet:
            resumed = f", resuming after {facts['resumed']} finished" if facts["resumed"] else ""
            typer.echo(
                f"study {facts['study']} in {facts['storage']}: {facts['trials']} trials, "
                f"{facts['jobs']} worker(s){resumed}",
                err=True,
            )

    def trial(self, t, counts) -> None:
        if t.state.name in ("COMPLETE", "PRUNED"):
            self.done += 1
        complete = t.state.name == "COMPLETE"
        feasible = all(v <= 0 for v in t.constraints.values())  # an infeasible trial is never "best"
        if complete and feasible and (self.best is None or t.values[0] > self.best):
            self.best = t.values[0]
        if self.as_json:
            print(
                json.dumps(
                    {
                        "event": "trial",
                        "number": t.number,
                        "state": t.state.name,
                        "values": t.values,
                        "outcome": t.user_attrs.get("outcome"),
                        "reason": t.user_attrs.get("reason"),
                        "epochs": len(t.user_attrs.get("curve", [])),
                        "params": t.params,
                    }
                ),
                flush=True,
            )
            return
        if self.quiet:
            return
        elapsed = time.time() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        value = f"{t.values[0]:.4f}" if complete else t.user_attrs.get("outcome", t.state.name.lower())
        value += "" if feasible else " (infeasible)"
        best = f"{self.best:.4f}" if self.best is not None else "-"
        typer.echo(
            f"[{self.done}/{self.total}] trial {t.number}: {value:<10} best {best}  pruned {counts.pruned}  "
            f"failed {counts.failed}  elapsed {elapsed:.0f}s  eta {eta:.0f}s",
            err=True,
        )


def _command_line(args: list[str]) -> str:
    """``hpsearch ARGS`` as a shell line, with any password in a --storage URL replaced by ***."""
    from hpsearch.study import redact_url

    out, after_storage = [], False
    for arg in args:
        if after_storage:
            arg = redact_url(arg)
        elif arg.startswith("--storage="):
            arg = "--storage=" + redact_url(arg.split("=", 1)[1])
        after_storage = arg == "--storage"
        out.append(arg)
    return "hpsearch " + shlex.join(out)


def _finish(summary, resume_cmd: str, as_json: bool, finish_cmd: str | None = None) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "event": "end",
                    "study": summary.study_name,
                    "counts": vars(summary.counts),
                    "best_value": summary.best_value,
                    "best_trial": summary.best_number,
                    "seconds": round(summary.seconds, 2),
                    "interrupted": summary.interrupted,
                }
            )
        )
    else:
        c = summary.counts
        best = (
            f"{summary.best_value:.4f} (trial {summary.best_number})"
            if summary.best_value is not None
            else "-"
        )
        typer.echo(
            f"study {summary.study_name}: {c.complete} complete, {c.pruned} pruned, {c.failed} failed; "
            f"best val acc {best}; {summary.seconds:.0f}s"
        )
    if summary.interrupted:
        done, left = summary.counts.finished, max(summary.target - summary.counts.finished, 0)
        lines = [
            f"interrupted: every finished trial is kept ({done} of {summary.target} done); "
            "the trial that was running is marked failed and runs again when you resume."
        ]
        if finish_cmd and left:
            lines += [f"Finish the {left} trials left with:", f"  {finish_cmd}"]
            lines += ["or run the same command again to add its --trials on top:", f"  {resume_cmd}"]
        else:
            lines += ["Resume with:", f"  {resume_cmd}"]
        typer.echo("\n".join(lines), err=True)
        raise typer.Exit(130)


@app.command()
def optimize(
    model: Annotated[str, typer.Option("--model", help="fcn or cnn.")] = "cnn",
    trials: Annotated[int, typer.Option("--trials", help="Trials to add (completed + pruned).")] = 100,
    epochs: Annotated[
        int, typer.Option("--epochs", help="Epochs per trial (pruning stops many early).")
    ] = 10,
    dataset: Dataset = "fashion-mnist",
    data_dir: DataDir = None,
    val_size: ValSize = 5000,
    split_seed: SplitSeed = 0,
    storage: Storage = None,
    study_name: StudyName = None,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random, gp, cmaes, qmc or nsga2.")] = "tpe",
    pruner: Annotated[
        str,
        typer.Option(
            "--pruner", help="sha (successive halving), median, hyperband, percentile, patient or none."
        ),
    ] = SearchConfig.pruner,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Sampler seed (trial seeds derive from it).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes on this machine.")] = 1,
    timeout: Timeout = None,
    space: Annotated[
        str | None, typer.Option("--space", help="TOML file narrowing or fixing the space.")
    ] = None,
    enqueue_baselines: Annotated[
        bool,
        typer.Option("--enqueue-baselines", help="Start with the hand-tuned baselines of this model type."),
    ] = False,
    objectives: Annotated[
        str,
        typer.Option(
            "--objectives", help="accuracy, or accuracy plus any of params, flops, latency (comma-separated)."
        ),
    ] = "accuracy",
    max_params: Annotated[
        int | None, typer.Option("--max-params", help="Constraint: at most N parameters.")
    ] = None,
    max_flops: Annotated[
        int | None, typer.Option("--max-flops", help="Constraint: at most N FLOPs/sample.")
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option("--max-latency-ms", help="Constraint: CPU ms per batch of 256.")
    ] = None,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Search FCN or CNN hyperparameters with Optuna; resumes a study of the same name."""
    from hpsearch.study import run_study

    cfg = SearchConfig(
        model=model,
        trials=trials,
        epochs=epochs,
        storage=storage,
        study_name=study_name,
        data=DataConfig(dataset=dataset, data_dir=data_dir, val_size=val_size, split_seed=split_seed),
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        jobs=jobs,
        timeout=timeout,
        space_file=space,
        enqueue_baselines=enqueue_baselines,
        objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
        max_params=max_params,
        max_flops=max_flops,
        max_latency_ms=max_latency_ms,
        device=device,
        threads=threads,
    ).validate()
    progress = _Progress(trials, quiet, as_json)
    summary = run_study(cfg, on_trial=progress.trial, on_start=progress.started)
    finish = ["worker", "--study", summary.study_name]
    finish += (["--storage", storage] if storage else []) + (["--data-dir", data_dir] if data_dir else [])
    _finish(
        summary,
        _command_line(sys.argv[1:]) if sys.argv[1:] else "hpsearch optimize ...",
        as_json,
        _command_line(finish),
    )


@app.command()
def worker(
    study: Annotated[str, typer.Option("--study", help="Name of an existing study to work on.")],
    storage: Storage = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="Add this many to the study's target (default: work to the current target).",
        ),
    ] = None,
    timeout: Timeout = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Join an existing study from this process or machine (the storage must be reachable)."""
    from hpsearch.study import join_study

    progress = _Progress(trials or 0, quiet, as_json)
    summary = join_study(
        study,
        storage,
        trials=trials,
        timeout=timeout,
        on_trial=progress.trial,
        on_start=progress.started,
        data_dir=data_dir,
        device=device,
        threads=threads,
    )
    _finish(summary, _command_line(sys.argv[1:]), as_json)


studies_app = typer.Typer(help="List studies, or delete one.", no_args_is_help=False)
app.add_typer(studies_app, name="studies")


@studies_app.callback(invoke_without_command=True)
def studies(ctx: typer.Context, storage: Storage = None, as_json: Json = False) -> None:
    """List studies: model, dataset, trials complete/pruned/failed/running, best validation accuracy."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = storage
        return
    from hpsearch.study import list_studies

    rows = list_studies(storage)
    if as_json:
        typer.echo(json.dumps([{**vars(r), "counts": vars(r.counts)} for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no studies yet: run hpsearch optimize")
        return
    table = [("name", "model", "dataset", "complete", "pruned", "failed", "running", "best val acc")]
    for r in rows:
        c = r.counts
        table.append(
            (
                r.name,
                r.model,
                r.dataset,
                str(c.complete),
                str(c.pruned),
                str(c.failed),
                str(c.running),
                f"{r.best_value:.4f}" if r.best_value is not None else "-",
            )
        )
    typer.echo(_format_table(table))


@studies_app.command("delete")
def studies_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The study to delete.")],
    storage: Storage = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a study, its trials and its saved weights."""
    from hpsearch.study import delete_study, load_study, open_storage

    url = storage or ctx.obj
    n = len(load_study(name, url, storage=open_storage(url, heartbeat=False, create=False)).trials)
    if not yes and not typer.confirm(f"delete study {name!r} and its {n} trials?", default=False):
        typer.echo("nothing deleted")
        raise typer.Exit(1)
    delete_study(name, url)
    typer.echo(f"deleted study {name!r} ({n} trials)")


def _format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


@app.command()
def show(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: Storage = None,
    as_json: Json = False,
) -> None:
    """Show a study's best trial (or Pareto set): parameters, spec and learning-curve summary."""
    from hpsearch.study import show_study

    info = show_study(study, storage)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    rec, c = info["record"], info["counts"]
    typer.echo(
        f"study {study}: model {rec.get('model')}, dataset {rec.get('dataset')}, epochs {rec.get('epochs')}, "
        f"sampler {rec.get('sampler')}, pruner {rec.get('pruner')}"
    )
    typer.echo(
        f"trials: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed, {c['running']} running"
    )
    best = [info["best"]] if info.get("best") else info.get("pareto", [])
    if not best:
        typer.echo("no completed feasible trial yet")
    if "pareto" in info and best:
        _show_pareto(best, rec.get("objectives", []))
        best = best[:1]  # the full story of the most accurate Pareto-optimal trial
    for t in best:
        _show_trial(t, "best")
    if info.get("evaluation"):
        _show_evaluation(info["evaluation"])


def _show_pareto(front: list[dict], objectives: list[str]) -> None:
    names = objectives if len(objectives) == len(front[0]["values"] or []) else ["accuracy"]
    typer.echo(f"Pareto set: {len(front)} feasible trial(s), none beaten in every objective by another")
    rows = [("trial", *names)]
    for t in front:
        rows.append((str(t["number"]), *(f"{v:.6g}" for v in t["values"])))
    typer.echo("\n".join("  " + line for line in _format_table(rows).splitlines()))


def _show_evaluation(ev: dict) -> None:
    def mean_sd(mean, sd) -> str:
        if mean is None:
            return "-"
        return f"{mean:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")

    typer.echo("re-evaluation (hpsearch evaluate; winner by mean validation accuracy, marked *):")
    for row in ev.get("rows", []):
        gap = row.get("optimism_gap")
        typer.echo(
            f"  trial {row['number']}{' *' if row['number'] == ev.get('winner') else ''}: "
            f"search val {row['search_val']:.4f}  val {mean_sd(row['val_mean'], row['val_sd'])}  "
            f"test {mean_sd(row['test_mean'], row['test_sd'])}  "
            f"gap {'-' if gap is None else f'{gap:+.4f}'}  ({row['runs']} runs)"
        )


def _show_trial(t: dict, label: str) -> None:
    values = ", ".join(f"{v:.6g}" for v in t["values"] or [])
    typer.echo(
        f"{label} trial {t['number']}: values [{values}]  params {t['params_count']:,}  "
        f"FLOPs {t['flops']:,}" + (f"  (baseline {t['baseline']})" if t.get("baseline") else "")
    )
    for key, value in t["params"].items():
        typer.echo(f"  {key} = {value}")
    curve = t["curve"]
    if curve:
        typer.echo("  epoch  train loss  val loss  val acc")
        for ep in curve:
            typer.echo(
                f"  {ep['epoch']:>5}  {ep['train_loss']:>10.4f}  {ep['val_loss']:>8.4f}  {ep['val_acc']:>7.4f}"
            )


@app.command()
def dashboard(
    storage: Storage = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8080,
) -> None:
    """Browse the studies live in optuna-dashboard (same storage)."""
    from hpsearch.study import artifact_dir, open_storage, redact_url, resolve_storage_url

    url = resolve_storage_url(storage)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: binding {host}: optuna-dashboard has no authentication; anyone who can reach "
            f"this address can read and change your studies",
            err=True,
        )
    store = open_storage(url, heartbeat=False)
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    # The trials' saved weights (optuna.artifacts) show on their trial pages; only an existing
    # store is served, so browsing never creates folders.
    artifacts = artifact_dir(url)
    artifact_store = FileSystemArtifactStore(str(artifacts)) if artifacts.is_dir() else None

    typer.echo(f"optuna-dashboard on http://{host}:{port}/ for {redact_url(url)} (Ctrl-C to stop)", err=True)
    try:
        run_server(store, host=host, port=port, artifact_store=artifact_store)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None


@app.command("space")
def space_cmd(
    model: Annotated[str, typer.Option("--model", help="fcn or cnn.")] = "cnn",
    space: Annotated[str | None, typer.Option("--space", help="A TOML file to apply first.")] = None,
) -> None:
    """Print the effective search space as TOML you can edit and pass back with --space."""
    from hpsearch.space import load_space, space_to_toml

    typer.echo(space_to_toml(load_space(model, space)), nl=False)
