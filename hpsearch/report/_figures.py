"""Report data -> plotly figures, as plain JSON-able dicts (``{"data": [...], "layout": {...}}``).

Only SVG trace types are used (scatter, bar, heatmap, contour), never WebGL, so every plot
draws in any browser, headless ones included. Text that came from users (parameter values,
class names) is HTML-escaped, because plotly interprets a subset of HTML in labels.
"""

from __future__ import annotations

import html
import itertools
import math
from typing import Any

from hpsearch.report._collect import CurveLine, ParetoData
from hpsearch.report._model import ModelEval
from hpsearch.report._search import (
    ContourData,
    HistoryPoint,
    Importance,
    ParallelData,
    SlicePoints,
    TimelineBar,
)
from hpsearch.report._trials import ParamRange

__all__ = [
    "COLOURS",
    "best_curve_figure",
    "confusion_figure",
    "contour_figure",
    "curves_figure",
    "edf_figure",
    "history_figure",
    "importance_figure",
    "parallel_figure",
    "pareto_figures",
    "slice_figure",
    "timeline_figure",
]

Figure = dict[str, Any]

COLOURS = {
    "complete": "#1f77b4",
    "pruned": "#9e9e9e",
    "diverged": "#d62728",
    "failed": "#ff7f0e",
    "running": "#2ca02c",
    "waiting": "#bcbd22",
    "infeasible": "#d62728",
    "best": "#111111",
}
# Viridis at five stops, for colouring lines by value (plotly cannot colour whole lines by scale).
_VIRIDIS = [
    (0.0, (68, 1, 84)),
    (0.25, (59, 82, 139)),
    (0.5, (33, 145, 140)),
    (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
]


def esc(value: Any) -> str:
    """Text for a plotly label: plotly renders tags like <b> and decodes entities."""
    return html.escape(str(value), quote=False)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def _layout(height: int = 360, **extra: Any) -> dict[str, Any]:
    base = {
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 24, "b": 56},
        "hovermode": "closest",
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
    }
    base.update(extra)
    return base


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": esc(title)}, "zeroline": False, "gridcolor": "#e6e6e6", **extra}


def viridis(t: float) -> str:
    t = min(max(t, 0.0), 1.0)
    for (a, ca), (b, cb) in itertools.pairwise(_VIRIDIS):
        if t <= b:
            f = (t - a) / (b - a)
            return "rgb({},{},{})".format(*(round(x + (y - x) * f) for x, y in zip(ca, cb, strict=True)))
    return "rgb(253,231,37)"


def history_figure(points: list[HistoryPoint], label: str) -> Figure | None:
    if not points:
        return None
    feasible = [p for p in points if p.feasible]
    infeasible = [p for p in points if not p.feasible]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "trial",
            "x": [p.number for p in feasible],
            "y": [p.value for p in feasible],
            "marker": {"color": COLOURS["complete"], "size": 7},
            "hovertemplate": "trial %{x}<br>%{y:.4f}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "best so far",
            "x": [p.number for p in points if math.isfinite(p.best)],
            "y": [p.best for p in points if math.isfinite(p.best)],
            "line": {"color": COLOURS["best"], "shape": "hv", "width": 2},
            "hoverinfo": "skip",
        },
    ]
    if infeasible:
        data.insert(
            1,
            {
                "type": "scatter",
                "mode": "markers",
                "name": "infeasible",
                "x": [p.number for p in infeasible],
                "y": [p.value for p in infeasible],
                "marker": {"color": COLOURS["infeasible"], "symbol": "x", "size": 8},
                "hovertemplate": "trial %{x} (infeasible)<br>%{y:.4f}<extra></extra>",
            },
        )
    return {"data": data, "layout": _layout(xaxis=_axis("trial"), yaxis=_axis(label))}


def _log_axis() -> dict[str, Any]:
    return {"type": "log", "exponentformat": "e"}


def importance_figure(importance: Importance) -> Figure | None:
    if not importance.values:
        return None
    pairs = list(reversed(importance.values))  # plotly draws the first bar at the bottom
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [v for _, v in pairs],
                "y": [esc(n) for n, _ in pairs],
                "marker": {"color": COLOURS["complete"]},
                "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
            }
        ],
        "layout": _layout(
            max(240, 22 * len(pairs) + 80),
            xaxis=_axis("importance (sums to 1)"),
            yaxis={"automargin": True},
            margin={"l": 130, "r": 24, "t": 32, "b": 56},
        ),
    }


def _tick_labels(axis: ParamRange, x: float) -> list[dict[str, Any]]:
    """Annotations that label one parallel-coordinates axis with its range or choices."""
    common = {"xref": "x", "yref": "y", "showarrow": False, "font": {"size": 10}}
    if axis.kind == "categorical":
        n = len(axis.choices)
        return [
            {**common, "x": x, "y": i / (n - 1), "text": esc(c), "xanchor": "left", "xshift": 4}
            for i, c in enumerate(axis.choices)
        ]
    return [
        {**common, "x": x, "y": 0, "text": _fmt(axis.low), "yanchor": "top", "yshift": -4},
        {**common, "x": x, "y": 1, "text": _fmt(axis.high), "yanchor": "bottom", "yshift": 4},
    ]


def parallel_figure(par: ParallelData | None, label: str) -> Figure | None:
    """Parallel coordinates drawn as SVG lines: first axis the objective, then the parameters."""
    if par is None:
        return None
    lo, hi = min(par.values), max(par.values)
    span = (hi - lo) or 1.0
    xs = list(range(len(par.axes) + 1))
    names = [label, *(a.name + (" (log)" if a.log else "") for a in par.axes)]
    order = sorted(range(len(par.numbers)), key=lambda i: par.values[i])  # best drawn last, on top
    data = []
    for i in order:
        t = (par.values[i] - lo) / span
        hover = [f"trial {par.numbers[i]}<br>{esc(label)}: {par.values[i]:.4f}"]
        hover += [
            f"trial {par.numbers[i]}<br>{esc(n)}: {_fmt(v)}"
            for n, v in zip(names[1:], par.raw[i], strict=True)
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": [t, *par.positions[i]],
                "line": {"color": viridis(t), "width": 1.5},
                "opacity": 0.8,
                "showlegend": False,
                "text": hover,
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": [0] * len(par.values),
            "y": [(v - lo) / span for v in par.values],
            "marker": {
                "color": par.values,
                "colorscale": "Viridis",
                "size": 6,
                "showscale": True,
                "colorbar": {"title": {"text": esc(label)}, "thickness": 12},
            },
            "showlegend": False,
            "hoverinfo": "skip",
        }
    )
    ann = _tick_labels(ParamRange(label, "float", lo, hi), 0)
    for x, axis in enumerate(par.axes, start=1):
        ann += _tick_labels(axis, x)
    ann += [
        {"x": x, "y": 1.12, "xref": "x", "yref": "y", "text": f"<b>{esc(n)}</b>", "showarrow": False}
        for x, n in enumerate(names)
    ]
    shapes = [
        {"type": "line", "x0": x, "x1": x, "y0": 0, "y1": 1, "line": {"color": "#444", "width": 1}}
        for x in xs
    ]
    layout = _layout(
        420,
        xaxis={"visible": False, "range": [-0.6, len(names) - 0.4]},
        yaxis={"visible": False, "range": [-0.12, 1.2]},
        annotations=ann,
        shapes=shapes,
        margin={"l": 24, "r": 24, "t": 16, "b": 16},
    )
    return {"data": data, "layout": layout}


def _param_axis(rng: ParamRange) -> dict[str, Any]:
    if rng.kind == "categorical":
        return {"type": "category", "categoryorder": "array", "categoryarray": [esc(c) for c in rng.choices]}
    return _log_axis() if rng.log else {}


def slice_figure(slices: list[SlicePoints], label: str, columns: int = 3) -> Figure | None:
    """One small scatter per parameter, in a grid of subplots."""
    if not slices:
        return None
    rows = math.ceil(len(slices) / columns)
    layout = _layout(230 * rows + 40, showlegend=False, margin={"l": 56, "r": 16, "t": 28, "b": 40})
    data, ann = [], []
    gap_x, gap_y = 0.06, 0.5 / rows
    for k, s in enumerate(slices):
        row, col = divmod(k, columns)
        x0 = col / columns + (gap_x / 2 if col else 0)
        x1 = (col + 1) / columns - (gap_x / 2 if col < columns - 1 else 0)
        y1 = 1 - row / rows - (gap_y / 2 if row else 0)
        y0 = 1 - (row + 1) / rows + (gap_y / 2 if row < rows - 1 else 0)
        suffix = "" if k == 0 else str(k + 1)
        layout[f"xaxis{suffix}"] = {
            "domain": [x0, x1],
            "anchor": f"y{suffix}",
            "gridcolor": "#e6e6e6",
            **_param_axis(s.range),
        }
        layout[f"yaxis{suffix}"] = {
            "domain": [y0, y1],
            "anchor": f"x{suffix}",
            "gridcolor": "#e6e6e6",
            "title": {"text": esc(label) if col == 0 else ""},
        }
        xs = [esc(x) for x in s.xs] if s.range.kind == "categorical" else s.xs
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": s.values,
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
                "marker": {
                    "color": s.numbers,
                    "colorscale": "Blues",
                    "reversescale": True,
                    "size": 6,
                    "line": {"color": "#555", "width": 0.5},
                },
                "text": [f"trial {n}" for n in s.numbers],
                "hovertemplate": "%{text}<br>%{x}<br>%{y:.4f}<extra></extra>",
            }
        )
        ann.append(
            {
                "text": f"<b>{esc(s.range.name)}</b>",
                "x": (x0 + x1) / 2,
                "y": y1,
                "xref": "paper",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    layout["annotations"] = ann
    return {"data": data, "layout": layout}


def contour_figure(c: ContourData | None, label: str) -> Figure | None:
    if c is None:
        return None
    data = [
        {
            "type": "contour",
            "x": c.grid_x,
            "y": c.grid_y,
            "z": c.z,
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": esc(label)}, "thickness": 12},
            "contours": {"coloring": "heatmap"},
            "hovertemplate": f"{esc(c.x.name)} %{{x:.3g}}<br>{esc(c.y.name)} %{{y:.3g}}<br>~%{{z:.4f}}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [p[1] for p in c.points],
            "y": [p[2] for p in c.points],
            "text": [f"trial {p[0]}: {p[3]:.4f}" for p in c.points],
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"color": "white", "size": 7, "line": {"color": "black", "width": 1}},
            "showlegend": False,
        },
    ]
    xa = _axis(c.x.name, **(_log_axis() if c.x.log else {}))
    ya = _axis(c.y.name, **(_log_axis() if c.y.log else {}))
    return {"data": data, "layout": _layout(420, xaxis=xa, yaxis=ya)}


def edf_figure(values: list[float], label: str) -> Figure | None:
    if not values:
        return None
    n = len(values)
    trace = {
        "type": "scatter",
        "mode": "lines",
        "x": values,
        "y": [(i + 1) / n for i in range(n)],
        "line": {"shape": "hv", "color": COLOURS["complete"]},
        "hovertemplate": "%{x:.4f}: %{y:.0%} of trials at or below<extra></extra>",
    }
    return {
        "data": [trace],
        "layout": _layout(xaxis=_axis(label), yaxis=_axis("fraction of completed trials", range=[0, 1.02])),
    }


def timeline_figure(bars: list[TimelineBar]) -> Figure | None:
    if not bars:
        return None
    data = []
    for cat in COLOURS:
        mine = [b for b in bars if b.category == cat]
        if mine:
            data.append(
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": cat,
                    "y": [b.number for b in mine],
                    "x": [max(b.duration, 1e-3) for b in mine],
                    "base": [b.start for b in mine],
                    "marker": {"color": COLOURS[cat]},
                    "text": [
                        f"trial {b.number}: started at {b.start:.0f}s, ran {b.duration:.1f}s" for b in mine
                    ],
                    "textposition": "none",
                    "hovertemplate": "%{text}<extra>" + cat + "</extra>",
                }
            )
    height = min(900, max(260, 9 * len(bars) + 100))
    return {
        "data": data,
        "layout": _layout(
            height,
            barmode="overlay",
            xaxis=_axis("seconds since the first trial started"),
            yaxis=_axis("trial"),
        ),
    }


def curves_figure(lines: list[CurveLine], best_number: int | None) -> Figure | None:
    """Validation accuracy per epoch of every trial, coloured by how the trial ended."""
    if not lines:
        return None
    data, shown = [], set()
    for line in sorted(lines, key=lambda c: c.number == best_number):
        best = line.number == best_number
        group = "best" if best else line.category
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(line.epochs) == 1 else "lines",
                "name": f"best (trial {line.number})" if best else line.category,
                "legendgroup": group,
                "showlegend": group not in shown,
                "x": line.epochs,
                "y": line.val_acc,
                "line": {
                    "color": COLOURS.get(group, "#888"),
                    "width": 3 if best else 1.2,
                },
                "opacity": 1.0 if best else 0.7,
                "hovertemplate": f"trial {line.number} ({line.category})<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>",
            }
        )
        shown.add(group)
    return {
        "data": data,
        "layout": _layout(400, xaxis=_axis("epoch", dtick=1), yaxis=_axis("validation accuracy")),
    }


def best_curve_figure(curve: list[dict[str, Any]]) -> Figure | None:
    """Loss (left) and accuracy (right) per epoch, train and validation."""
    if not curve:
        return None
    epochs = [ep.get("epoch") for ep in curve]
    data = []
    for key, axis, colour, dash in (
        ("train_loss", "1", "#1f77b4", "dot"),
        ("val_loss", "1", "#1f77b4", "solid"),
        ("train_acc", "2", "#2ca02c", "dot"),
        ("val_acc", "2", "#2ca02c", "solid"),
    ):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": key.replace("_", " "),
                "x": epochs,
                "y": [ep.get(key) for ep in curve],
                "xaxis": "x" if axis == "1" else "x2",
                "yaxis": "y" if axis == "1" else "y2",
                "line": {"color": colour, "dash": dash},
            }
        )
    layout = _layout(
        360,
        xaxis=_axis("epoch", domain=[0, 0.45], dtick=1),
        yaxis=_axis("loss"),
        xaxis2=_axis("epoch", domain=[0.55, 1], anchor="y2", dtick=1),
        yaxis2=_axis("accuracy", anchor="x2"),
    )
    return {"data": data, "layout": layout}


def confusion_figure(ev: ModelEval) -> Figure:
    names = [esc(c) for c in ev.classes]
    trace = {
        "type": "heatmap",
        "z": ev.confusion,
        "x": names,
        "y": names,
        "colorscale": "Blues",
        "reversescale": True,
        "texttemplate": "%{z}",
        "hovertemplate": "true %{y}, predicted %{x}: %{z}<extra></extra>",
        "colorbar": {"thickness": 12},
    }
    size = max(360, 34 * len(names) + 160)
    layout = _layout(
        size,
        xaxis=_axis("predicted", type="category", side="bottom"),
        yaxis=_axis("true", type="category", autorange="reversed"),
        margin={"l": 110, "r": 24, "t": 16, "b": 110},
    )
    return {"data": [trace], "layout": layout}


def _hover_params(params: dict[str, Any]) -> str:
    return "<br>".join(f"{esc(k)}: {_fmt(v)}" for k, v in params.items())


def pareto_figures(p: ParetoData) -> list[Figure]:
    """Accuracy against each other objective; the front in blue, infeasible trials as red crosses."""
    figures = []
    for k in range(1, len(p.objectives)):
        groups = [
            (
                "Pareto-optimal",
                [q for q in p.points if q.on_front],
                {"color": COLOURS["complete"], "size": 9},
            ),
            (
                "dominated",
                [q for q in p.points if q.feasible and not q.on_front],
                {"color": "#b0b0b0", "size": 7},
            ),
            (
                "infeasible",
                [q for q in p.points if not q.feasible],
                {"color": COLOURS["infeasible"], "symbol": "x", "size": 8},
            ),
        ]
        data = []
        for name, pts, marker in groups:
            if not pts:
                continue
            if name == "Pareto-optimal":
                pts = sorted(pts, key=lambda q: q.values[k])
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers"
                    if name == "Pareto-optimal" and len(p.objectives) == 2
                    else "markers",
                    "name": name,
                    "x": [q.values[k] for q in pts],
                    "y": [q.values[0] for q in pts],
                    "line": {"shape": "hv", "color": COLOURS["complete"]},
                    "marker": marker,
                    "text": [f"trial {q.number}<br>{_hover_params(q.params)}" for q in pts],
                    "hovertemplate": "%{text}<br>%{x:.4g}, %{y:.4f}<extra>" + name + "</extra>",
                }
            )
        xs = [q.values[k] for q in p.points]
        log = bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 100
        figures.append(
            {
                "data": data,
                "layout": _layout(
                    420,
                    xaxis=_axis(f"{p.objectives[k]} ({p.directions[k]})", **(_log_axis() if log else {})),
                    yaxis=_axis(f"{p.objectives[0]} ({p.directions[0]})"),
                ),
            }
        )
    return figures
