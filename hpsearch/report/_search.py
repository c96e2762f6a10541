"""Section 2, the search, as plain data: history, importances, parallel coordinates, slices,
contour, empirical distribution, timeline, and warnings for best values at a range's edge.

All plots are of the first objective (validation accuracy); the importances of a
multi-objective study are those of reaching its Pareto front.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any, NamedTuple

import numpy as np
import optuna

from hpsearch.errors import ConfigError
from hpsearch.report._trials import ParamRange, TrialRow, best_row
from hpsearch.space import FloatRange, IntRange, SearchSpace

__all__ = [
    "EDGE",
    "ContourData",
    "HistoryPoint",
    "Importance",
    "ParallelData",
    "SearchData",
    "SlicePoints",
    "TimelineBar",
    "collect_search",
    "compute_contour",
    "compute_importance",
    "compute_parallel",
    "edge_warnings",
    "fmt_number",
]

EDGE = 0.03  # a best value within 3% of a range's end (log scale for log ranges) is "at the edge"
MIN_IMPORTANCE_TRIALS = 5  # PED-ANOVA compares the top 10% with the rest; fewer is noise
MAX_AXES = 8  # parallel coordinates beyond this many axes are unreadable
GRID = 30  # contour grid points per side


class HistoryPoint(NamedTuple):
    number: int
    value: float
    best: float  # best feasible value up to and including this trial
    feasible: bool


class Importance(NamedTuple):
    method: str  # names the evaluator, for the section text
    values: list[tuple[str, float]]  # most important first; empty when not computed
    note: str  # why there are none, or how to read them


class ParallelData(NamedTuple):
    """Axes and one line per complete trial; positions are 0..1 along each axis."""

    axes: list[ParamRange]
    numbers: list[int]
    values: list[float]  # the objective, the first axis
    positions: list[list[float]]  # per trial, per axis
    raw: list[list[Any]]  # per trial, per axis: the parameter values, for hover


class SlicePoints(NamedTuple):
    range: ParamRange
    numbers: list[int]
    xs: list[Any]
    values: list[float]


class ContourData(NamedTuple):
    """The objective interpolated over the two most important numeric parameters."""

    x: ParamRange
    y: ParamRange
    grid_x: list[float]
    grid_y: list[float]
    z: list[list[float]]  # z[j][i] at (grid_x[i], grid_y[j])
    points: list[tuple[int, float, float, float]]  # (trial, x, y, value)


class TimelineBar(NamedTuple):
    number: int
    category: str
    start: float
    duration: float


class SearchData(NamedTuple):
    history: list[HistoryPoint]
    importance: Importance
    parallel: ParallelData | None
    slices: list[SlicePoints]
    contour: ContourData | None
    edf: list[float]  # sorted objective values of the complete trials
    timeline: list[TimelineBar]
    edge_warnings: list[str]
    notes: dict[str, str]  # plot name -> why it is not drawn
    maximize: bool = True


def collect_search(
    study: optuna.Study, rows: list[TrialRow], ranges: dict[str, ParamRange], record: dict[str, Any]
) -> SearchData:
    """Compute the search section from the study's rows (and, for importances, the study)."""
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    done = [r for r in rows if r.values and math.isfinite(r.values[0])]
    importance = compute_importance(study, len(done))
    order = [n for n, _ in importance.values] + sorted(n for n in ranges if n not in dict(importance.values))
    notes: dict[str, str] = {}
    if not done:
        notes["all"] = "no trial has completed yet, so there is nothing to plot"
    parallel = compute_parallel(done, ranges, order)
    if done and parallel is None:
        notes["parallel"] = "needs two completed trials sharing a searched parameter"
    contour = compute_contour(done, ranges, order)
    if done and contour is None:
        notes["contour"] = (
            "needs three completed trials and two numeric parameters that every one of them sampled"
        )
    best = best_row(rows, maximize)
    space = _space(record)
    return SearchData(
        history=_history(done, maximize),
        importance=importance,
        parallel=parallel,
        slices=_slices(done, ranges, order),
        contour=contour,
        edf=sorted(r.values[0] for r in done),
        timeline=[
            TimelineBar(r.number, r.category, r.start, r.end - r.start)
            for r in rows
            if r.start is not None and r.end is not None
        ],
        edge_warnings=edge_warnings(best, ranges, space) if best else [],
        notes=notes,
        maximize=maximize,
    )


def _history(done: list[TrialRow], maximize: bool) -> list[HistoryPoint]:
    out, best = [], None
    for r in done:
        v = r.values[0]
        if r.feasible and (best is None or (v > best if maximize else v < best)):
            best = v
        out.append(HistoryPoint(r.number, v, best if best is not None else math.nan, r.feasible))
    return out


def compute_importance(study: optuna.Study, n_complete: int) -> Importance:
    """Parameter importances by Optuna's PED-ANOVA (its default evaluator)."""
    multi = len(study.directions) > 1
    method = (
        "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator): how much each parameter's "
        "distribution in the top 10% of trials differs from its distribution over all trials"
    )
    if multi:
        method += "; for several objectives, the top trials are those nearest the Pareto front"
    if n_complete < MIN_IMPORTANCE_TRIALS:
        return Importance(
            method,
            [],
            f"needs at least {MIN_IMPORTANCE_TRIALS} completed trials (this study has {n_complete})",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            return Importance(method, [], f"could not be computed: {exc}")
    pairs = [(k, float(v)) for k, v in values.items() if math.isfinite(v)]
    note = ""
    if caught:
        note = f"Optuna warned: {caught[0].message}"
    elif n_complete < 50:
        note = f"from {n_complete} completed trials: a rough ranking (PED-ANOVA wants 50 or more)"
    return Importance(method, pairs, note)


def _is_numeric(rng: ParamRange) -> bool:
    return rng.kind in ("int", "float") and rng.high is not None and rng.high > rng.low


def _searched(rng: ParamRange) -> bool:
    return _is_numeric(rng) or (rng.kind == "categorical" and len(rng.choices) > 1)


def _axis_position(rng: ParamRange, value: Any) -> float:
    if rng.kind == "categorical":
        n = len(rng.choices)
        return rng.position(value) / (n - 1) if n > 1 else 0.5
    return min(max(rng.position(value), 0.0), 1.0)


def compute_parallel(
    done: list[TrialRow], ranges: dict[str, ParamRange], order: list[str]
) -> ParallelData | None:
    """Up to :data:`MAX_AXES` parameters, most important first, that every complete trial has."""
    if len(done) < 2:
        return None
    names = [n for n in order if n in ranges and _searched(ranges[n]) and all(n in r.params for r in done)]
    axes = [ranges[n] for n in names[:MAX_AXES]]
    if not axes:
        return None
    return ParallelData(
        axes=axes,
        numbers=[r.number for r in done],
        values=[r.values[0] for r in done],
        positions=[[_axis_position(a, r.params[a.name]) for a in axes] for r in done],
        raw=[[r.params[a.name] for a in axes] for r in done],
    )


def _slices(done: list[TrialRow], ranges: dict[str, ParamRange], order: list[str]) -> list[SlicePoints]:
    out = []
    for name in order:
        if name not in ranges or not _searched(ranges[name]):
            continue
        have = [r for r in done if name in r.params]
        if have:
            out.append(
                SlicePoints(
                    ranges[name],
                    [r.number for r in have],
                    [r.params[name] for r in have],
                    [r.values[0] for r in have],
                )
            )
    return out


def _transform(rng: ParamRange, values: np.ndarray) -> np.ndarray:
    return np.log10(values) if rng.log else values


def compute_contour(
    done: list[TrialRow], ranges: dict[str, ParamRange], order: list[str]
) -> ContourData | None:
    """Inverse-distance-weighted interpolation on a grid (log axes for log ranges)."""
    if len(done) < 3:
        return None
    names = [
        n
        for n in order
        if n in ranges
        and _is_numeric(ranges[n])
        and all(n in r.params for r in done)
        and len({r.params[n] for r in done}) > 1
    ][:2]
    if len(names) < 2:
        return None
    xr, yr = ranges[names[0]], ranges[names[1]]
    px = np.array([float(r.params[xr.name]) for r in done])
    py = np.array([float(r.params[yr.name]) for r in done])
    value = np.array([r.values[0] for r in done])
    tx, ty = _transform(xr, px), _transform(yr, py)
    gx = np.linspace(*_transform(xr, np.array([xr.low, xr.high])), GRID)
    gy = np.linspace(*_transform(yr, np.array([yr.low, yr.high])), GRID)
    # Distances in units of each axis's span, so neither parameter dominates.
    sx, sy = (gx[-1] - gx[0]) or 1.0, (gy[-1] - gy[0]) or 1.0
    dx = (gx[None, :, None] - tx[None, None, :]) / sx
    dy = (gy[:, None, None] - ty[None, None, :]) / sy
    weight = 1.0 / np.maximum(dx**2 + dy**2, 1e-9)
    z = (weight * value).sum(axis=2) / weight.sum(axis=2)
    back_x = 10**gx if xr.log else gx
    back_y = 10**gy if yr.log else gy
    points = [
        (r.number, float(x), float(y), float(v)) for r, x, y, v in zip(done, px, py, value, strict=True)
    ]
    return ContourData(xr, yr, back_x.tolist(), back_y.tolist(), z.tolist(), points)


def _space(record: dict[str, Any]) -> SearchSpace | None:
    try:
        return SearchSpace.from_dict(record["space"])
    except (KeyError, TypeError, ConfigError):
        return None


def _space_key(name: str, space: SearchSpace) -> str | None:
    """``width_2`` -> ``width``: the space's name for a trial parameter."""
    for key in (name, re.sub(r"_\d+$", "", name)):
        if key in space.params:
            return key
    return None


def _can_widen(rng: ParamRange, space: SearchSpace | None, low_side: bool) -> bool:
    """Whether the range may grow past this end: the space's hard limits decide (n_blocks <= 4)."""
    if space is None:
        return True
    key = _space_key(rng.name, space)
    if key is None:
        return True
    lo, hi = rng.low, rng.high
    if rng.kind == "int":
        step = int(rng.step or 1)
        lo, hi = (lo - step, hi) if low_side else (lo, hi + step)
        wider = IntRange(int(lo), int(hi), rng.log, 1 if rng.log else step)
    else:
        span = (hi - lo) * 0.01
        if low_side:
            lo = lo / 2 if rng.log else lo - span
        else:
            hi = hi * 2 if rng.log else hi + span
        wider = FloatRange(float(lo), float(hi), rng.log)
    try:
        space.with_params(**{key: wider})
    except ConfigError:
        return False
    return True


def fmt_number(value: Any) -> str:
    """Short, as a range is written: 0.3, 0.0015, 1e-4, 2.5e-5, 64."""
    if not isinstance(value, float):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.3g}"


def edge_warnings(best: TrialRow, ranges: dict[str, ParamRange], space: SearchSpace | None) -> list[str]:
    """One warning per numeric parameter whose best value sits at an end of its range."""
    out = []
    for name, value in best.params.items():
        rng = ranges.get(name)
        if rng is None or not _is_numeric(rng) or isinstance(value, bool):
            continue
        if rng.kind == "int" and (rng.high - rng.low) / (rng.step or 1) < 2:
            continue  # two values: both are edges, and neither says to widen
        pos = rng.position(value)
        if EDGE < pos < 1 - EDGE:
            continue
        low_side = pos <= EDGE
        end, side, word = (rng.low, "low", "below") if low_side else (rng.high, "high", "above")
        lo, hi = fmt_number(rng.low), fmt_number(rng.high)
        text = f"{name}: best {fmt_number(value)} is at the {side} edge of [{lo}, {hi}]"
        if _can_widen(rng, space, low_side):
            # Advice in the space's own name (``width``, not ``width_2``): that is what one edits.
            key = (_space_key(name, space) if space else None) or name
            text += f": widen {key} {word} {fmt_number(end)}"
        else:
            text += f" ({fmt_number(end)} is as far as hpsearch allows)"
        out.append(text)
    return out
