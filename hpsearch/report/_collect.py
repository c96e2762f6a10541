"""A study -> :class:`ReportData`: every figure and table of the report as plain data.

Nothing here draws. :func:`collect_report` reads the study once, turns its trials into
:class:`~hpsearch.report._trials.TrialRow` rows and computes each section from those rows;
:mod:`hpsearch.report._render` turns the result into HTML. Torch is imported only to evaluate
the best model (:mod:`hpsearch.report._model`), and plotly not at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import optuna

import hpsearch
from hpsearch.baselines import BASELINES
from hpsearch.errors import StudyError
from hpsearch.report._model import BestModel, collect_best_model
from hpsearch.report._search import SearchData, collect_search
from hpsearch.report._trials import TrialRow, best_row, param_ranges, trial_rows
from hpsearch.study._run import RECORD_KEY, load_study
from hpsearch.study._storage import artifact_dir, open_storage, redact_url, resolve_storage_url

__all__ = [
    "BaselineRow",
    "CurveLine",
    "EvalRow",
    "ParetoData",
    "ParetoPoint",
    "ReportData",
    "Summary",
    "collect_baselines",
    "collect_curves",
    "collect_evaluation",
    "collect_pareto",
    "collect_report",
    "summarize",
]


@dataclass
class Summary:
    """Section 1: what the study is and what it cost."""

    study_name: str
    storage: str  # password redacted
    record: dict[str, Any]  # the study's hpsearch record ({} when hpsearch did not create it)
    directions: list[str]
    counts: dict[str, int]  # complete, pruned, diverged (of the pruned), failed, running, waiting
    wall_seconds: float  # first trial start to last trial end (or now, while trials run)
    trial_seconds: float  # sum of the trials' own durations (greater than wall time with workers)
    best_number: int | None
    best_value: float | None
    best_test: EvalRow | None  # the best trial's re-evaluation by ``hpsearch evaluate``
    epochs_trained: int  # sum of len(curve) over every trial
    epochs_without_pruning: int  # the same, with every pruned trial trained to the study's epochs
    train_seconds: float  # sum of every curve's epoch seconds
    pruned_seconds: float  # ... of the pruned trials (pruned by the pruner, diverged, bad geometry)

    @property
    def objectives(self) -> list[str]:
        return list(self.record.get("objectives") or ["accuracy"])


class CurveLine(NamedTuple):
    """One trial's validation accuracy per epoch (section 3)."""

    number: int
    category: str  # complete | pruned | diverged | failed | running
    epochs: list[int]
    val_acc: list[float]


class EvalRow(NamedTuple):
    """One trial re-trained over several seeds by ``hpsearch evaluate``."""

    number: int
    val_mean: float | None
    val_sd: float | None
    test_mean: float | None
    test_sd: float | None
    optimism_gap: float | None


class BaselineRow(NamedTuple):
    """Section 5: one hand-tuned configuration against the search."""

    id: str
    reported: str
    reported_accuracy: float | None
    reported_split: str  # test | validation | -
    number: int | None  # its trial in this study, when it was enqueued
    state: str | None
    value: float | None
    note: str  # why it is missing, or the baseline's own notes


class ParetoPoint(NamedTuple):
    number: int
    values: tuple[float, ...]
    feasible: bool
    on_front: bool
    params: dict[str, Any]
    constraints: dict[str, float]


class ParetoData(NamedTuple):
    """Section 6: every complete trial in objective space, and which are Pareto-optimal."""

    objectives: list[str]
    directions: list[str]
    points: list[ParetoPoint]

    @property
    def front(self) -> list[ParetoPoint]:
        return sorted((p for p in self.points if p.on_front), key=lambda p: (*p.values[1:], p.number))


@dataclass
class ReportData:
    """Everything the report shows; :func:`hpsearch.report.render_report` draws it."""

    summary: Summary
    trials: list[TrialRow]
    search: SearchData
    curves: list[CurveLine]
    best_curve: tuple[int, list[dict[str, Any]]] | None  # (trial number, its curve)
    best_model: BestModel
    baselines: list[BaselineRow]
    pareto: ParetoData | None
    evaluation: list[EvalRow]
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    version: str = hpsearch.__version__


def collect_report(study_name: str, url: str | None, data_dir: str | None = None) -> ReportData:
    """Read a study and compute every section of its report.

    Args:
        study_name: The study.
        url: Its storage URL (None: the default storage).
        data_dir: Where the study's dataset lives, for the best model's confusion matrix
            (default: ``$HPSEARCH_DATA_DIR`` or the per-user cache). Nothing is downloaded.

    Returns:
        The report's data. Raises :class:`~hpsearch.errors.StudyError` when the study or
        storage does not exist; anything missing inside the study becomes a note instead.
    """
    url = resolve_storage_url(url)
    _require_storage_file(url)
    study = load_study(study_name, url, storage=open_storage(url, heartbeat=False))
    trials = study.get_trials(deepcopy=False)
    rows = trial_rows(trials)
    ranges = param_ranges(trials)
    record = study.user_attrs.get(RECORD_KEY) or {}
    directions = [d.name.lower() for d in study.directions]
    evaluation = collect_evaluation(study.user_attrs.get("evaluation"), rows)
    best = best_row(rows, maximize=directions[0] == "maximize")
    return ReportData(
        summary=summarize(study_name, redact_url(url), record, directions, rows, evaluation),
        trials=rows,
        search=collect_search(study, rows, ranges, record),
        curves=collect_curves(rows),
        best_curve=(best.number, list(best.curve)) if best is not None and best.curve else None,
        best_model=collect_best_model(rows, best, record, artifact_dir(url), data_dir),
        baselines=collect_baselines(record, rows, study.user_attrs.get("baselines_skipped") or {}),
        pareto=collect_pareto(study, rows, record) if len(directions) > 1 else None,
        evaluation=evaluation,
    )


def _require_storage_file(url: str) -> None:
    """A report only reads: a missing SQLite or journal file is an error, not a new empty storage."""
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix):
            path = url[len(prefix) :].split("?", 1)[0]
            if path not in ("", ":memory:") and not Path(path).exists():
                raise StudyError(
                    f"no study storage at {path}; pass --storage with the URL the study was run with"
                )


def summarize(
    name: str,
    storage: str,
    record: dict[str, Any],
    directions: list[str],
    rows: list[TrialRow],
    evaluation: list[EvalRow],
) -> Summary:
    """Section 1 from the trial rows."""
    counts = {
        k: sum(r.state == k for r in rows) for k in ("complete", "pruned", "failed", "running", "waiting")
    }
    counts["diverged"] = sum(r.category == "diverged" for r in rows)
    spans = [(r.start, r.end) for r in rows if r.start is not None and r.end is not None]
    wall = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    best = best_row(rows, maximize=not directions or directions[0] == "maximize")
    by_number = {e.number: e for e in evaluation}
    epochs = int(record.get("epochs") or 0)
    trained = sum(len(r.curve) for r in rows)
    # Without pruning, each pruned trial (stopped by the pruner or as diverged) would have trained
    # every epoch; the others cost the same either way (a net that cannot be built never trains).
    unpruned = sum(
        max(epochs - len(r.curve), 0) for r in rows if r.state == "pruned" and r.outcome != "geometry"
    )
    return Summary(
        study_name=name,
        storage=storage,
        record=record,
        directions=directions,
        counts=counts,
        wall_seconds=wall,
        trial_seconds=sum(e - s for s, e in spans),
        best_number=best.number if best else None,
        best_value=best.values[0] if best else None,
        best_test=by_number.get(best.number) if best else None,
        epochs_trained=trained,
        epochs_without_pruning=trained + unpruned,
        train_seconds=sum(r.curve_seconds for r in rows),
        pruned_seconds=sum(r.curve_seconds for r in rows if r.state == "pruned"),
    )


def collect_curves(rows: list[TrialRow]) -> list[CurveLine]:
    """Validation accuracy per epoch of every trial that finished at least one epoch."""
    out = []
    for r in rows:
        points = [(ep.get("epoch"), ep.get("val_acc")) for ep in r.curve]
        points = [(int(e), float(a)) for e, a in points if e is not None and _finite(a)]
        if points:
            out.append(CurveLine(r.number, r.category, [e for e, _ in points], [a for _, a in points]))
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _number(x: Any) -> float | None:
    return float(x) if _finite(x) else None


def collect_evaluation(study_attr: Any, rows: list[TrialRow]) -> list[EvalRow]:
    """Re-evaluation rows from the study attribute and the trials' own ``evaluation`` attrs."""
    found: dict[int, dict[str, Any]] = {}
    listed = study_attr.get("rows") if isinstance(study_attr, dict) else study_attr
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("number"), int):
            found[item["number"]] = item
    for r in rows:
        if r.evaluation is not None:
            found.setdefault(r.number, r.evaluation)
    keys = ("val_mean", "val_sd", "test_mean", "test_sd", "optimism_gap")
    return [EvalRow(n, *(_number(found[n].get(k)) for k in keys)) for n in sorted(found)]


def collect_baselines(
    record: dict[str, Any], rows: list[TrialRow], skipped: dict[str, str]
) -> list[BaselineRow]:
    """Every baseline of the study's model type, with its trial here when it was enqueued."""
    by_id = {r.baseline: r for r in rows if r.baseline}
    out = []
    for b in BASELINES.values():
        if b.kind != record.get("model"):
            continue
        split = "test" if b.reported_test is not None else "validation" if b.reported_val is not None else "-"
        trial = by_id.get(b.id)
        if trial is not None:
            note = trial.reason if trial.state != "complete" else b.notes
        elif b.id in skipped:
            note = f"not enqueued: {skipped[b.id]}"
        else:
            note = "not enqueued (run hpsearch optimize --enqueue-baselines to compare it here)"
        out.append(
            BaselineRow(
                b.id,
                b.reported,
                b.reported_accuracy,
                split,
                trial.number if trial else None,
                trial.state if trial else None,
                trial.values[0] if trial and trial.values else None,
                note,
            )
        )
    return out


def collect_pareto(study: optuna.Study, rows: list[TrialRow], record: dict[str, Any]) -> ParetoData:
    """Complete trials in objective space; the front is Optuna's (feasible trials only)."""
    front = {t.number for t in study.best_trials}
    n = len(study.directions)
    names = list(record.get("objectives") or [])
    names += [f"objective {i}" for i in range(len(names), n)]
    points = [
        ParetoPoint(r.number, r.values, r.feasible, r.number in front, r.params, r.constraints)
        for r in rows
        if r.values and len(r.values) == n
    ]
    return ParetoData(names[:n], [d.name.lower() for d in study.directions], points)
