"""Optuna trials -> plain rows: the one place that reads FrozenTrial and the trial attributes.

Everything else in the report works on :class:`TrialRow` and :class:`ParamRange`, so it can be
tested with hand-made rows and never touches the storage again.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, NamedTuple

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = ["ParamRange", "TrialRow", "best_row", "param_ranges", "trial_rows"]

_STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


class TrialRow(NamedTuple):
    """What the report needs of one trial.

    ``start`` and ``end`` are seconds after the study's first trial started (``end`` of a
    running trial is the time the report was made). ``category`` is what the learning-curve
    plot colours by: complete, pruned, diverged, failed or running.
    """

    number: int
    state: str  # complete | pruned | failed | running | waiting
    outcome: str  # the objective's user attr, else the state
    values: tuple[float, ...] | None
    params: dict[str, Any]
    curve: tuple[dict[str, Any], ...]
    start: float | None
    end: float | None
    constraints: dict[str, float]
    baseline: str | None = None
    reason: str = ""
    params_count: int | None = None
    flops: int | None = None
    weights_artifact: str | None = None
    spec: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None

    @property
    def feasible(self) -> bool:
        """Optuna's rule: feasible when every constraint value is <= 0."""
        return all(v <= 0 for v in self.constraints.values())

    @property
    def category(self) -> str:
        if self.outcome == "diverged":
            return "diverged"
        return self.state

    @property
    def curve_seconds(self) -> float:
        return float(sum(ep.get("seconds", 0.0) or 0.0 for ep in self.curve))


class ParamRange(NamedTuple):
    """A parameter's search range, from the trials' distributions."""

    name: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def position(self, value: Any) -> float:
        """Where ``value`` lies in the range: 0 at low, 1 at high (log scale for log ranges);
        for a categorical, the index of the choice."""
        if self.kind == "categorical":
            return float(_index(self.choices, value))
        if self.high == self.low:
            return 0.5
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)


def _index(choices: tuple[Any, ...], value: Any) -> int:
    for i, c in enumerate(choices):
        if c == value and isinstance(c, bool) == isinstance(value, bool):
            return i
    return -1


def trial_rows(trials: list[FrozenTrial], now: datetime | None = None) -> list[TrialRow]:
    """Turn a study's trials into rows, in trial-number order."""
    now = now or datetime.now()
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    origin = min(starts) if starts else now
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        state = _STATES.get(t.state, t.state.name.lower())
        end_time = t.datetime_complete or (now if state == "running" else None)
        attrs = t.user_attrs
        rows.append(
            TrialRow(
                number=t.number,
                state=state,
                outcome=str(attrs.get("outcome") or state),
                values=tuple(t.values) if t.values is not None and state == "complete" else None,
                params=dict(t.params),
                curve=tuple(ep for ep in attrs.get("curve") or () if isinstance(ep, dict)),
                start=_seconds(t.datetime_start, origin),
                end=_seconds(end_time, origin),
                constraints=dict(t.constraints),
                baseline=attrs.get("baseline"),
                reason=str(attrs.get("reason") or ""),
                params_count=attrs.get("params_count"),
                flops=attrs.get("flops"),
                weights_artifact=attrs.get("weights_artifact"),
                spec=attrs.get("spec"),
                evaluation=attrs.get("evaluation") if isinstance(attrs.get("evaluation"), dict) else None,
            )
        )
    return rows


def _seconds(when: datetime | None, origin: datetime) -> float | None:
    return None if when is None else (when - origin).total_seconds()


def param_ranges(trials: list[FrozenTrial]) -> dict[str, ParamRange]:
    """Every parameter's range, as the first trial that asked for it declared it."""
    out: dict[str, ParamRange] = {}
    for t in sorted(trials, key=lambda t: t.number):
        for name, dist in t.distributions.items():
            if name in out:
                continue
            if isinstance(dist, CategoricalDistribution):
                out[name] = ParamRange(name, "categorical", choices=tuple(dist.choices))
            elif isinstance(dist, IntDistribution):
                out[name] = ParamRange(name, "int", dist.low, dist.high, dist.log, dist.step)
            elif isinstance(dist, FloatDistribution):
                out[name] = ParamRange(name, "float", dist.low, dist.high, dist.log, dist.step)
    return out


def best_row(rows: list[TrialRow], maximize: bool = True) -> TrialRow | None:
    """The feasible complete trial with the best first objective (validation accuracy).

    Ties go to the earlier trial. For a multi-objective study this is the most accurate
    Pareto-optimal trial, the one ``show`` and the weights saver call "best".
    """
    done = [r for r in rows if r.values and r.feasible and math.isfinite(r.values[0])]
    if not done:
        return None
    sign = 1.0 if maximize else -1.0
    return max(done, key=lambda r: (sign * r.values[0], -r.number))
