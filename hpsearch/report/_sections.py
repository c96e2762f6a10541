"""The report's sections as HTML, each from its part of :class:`ReportData`.

Every figure goes through :class:`_Figures`, which gives it a ``<div>`` and keeps its JSON
for the page to draw; a figure that cannot be drawn is replaced by a note saying why.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from hpsearch.report import _figures as figs
from hpsearch.report._collect import ReportData
from hpsearch.report._html import Markup, fmt_duration, fmt_pct, fmt_value, note, table

__all__ = ["render_sections"]


class _Figures:
    def __init__(self, store: list[dict[str, Any]]):
        self.store = store

    def place(self, figure: dict[str, Any] | None, missing: str) -> str:
        if figure is None:
            return note(missing)
        fid = f"figure-{len(self.store) + 1}"
        self.store.append({"id": fid, **figure})
        return f'<div class="plot" id="{fid}"></div>'


def render_sections(data: ReportData, store: list[dict[str, Any]]) -> tuple[str, str]:
    """HTML of every section and of the navigation bar; figures are appended to ``store``."""
    f = _Figures(store)
    sections = [
        ("summary", "1. Summary", _summary(data)),
        ("search", "2. Search", _search(data, f)),
        ("curves", "3. Learning curves", _curves(data, f)),
        ("best-model", "4. Best model", _best_model(data, f)),
        ("baselines", "5. Hand-tuned vs automated", _baselines(data)),
    ]
    if data.pareto is not None:
        sections.append(("pareto", "6. Pareto front", _pareto(data, f)))
    sections.append(("trials", "All trials", _trials(data)))
    body = "".join(
        f'<section id="{sid}"><h2>{escape(title)}</h2>{html}</section>' for sid, title, html in sections
    )
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title, _ in sections)
    return body, nav


# 1. Summary ---------------------------------------------------------------------------------


def _test_accuracy(data: ReportData) -> str:
    s, parts = data.summary, []
    if s.best_test is not None and s.best_test.test_mean is not None:
        sd = f" ± {fmt_value(s.best_test.test_sd)}" if s.best_test.test_sd is not None else ""
        parts.append(
            f"{fmt_value(s.best_test.test_mean)}{sd} re-trained over several seeds (hpsearch evaluate)"
        )
    ev = data.best_model.evaluation
    if ev is not None and data.best_model.number == s.best_number:
        parts.append(
            f"{fmt_value(ev.accuracy)} for the saved weights on the {ev.split} split ({ev.n:,} images)"
        )
    if not parts:
        return "not evaluated (run hpsearch evaluate, or see section 4 for the saved weights)"
    return "; ".join(parts)


def _summary(data: ReportData) -> str:
    s, rec, c = data.summary, data.summary.record, data.summary.counts
    objectives = ", ".join(f"{o} ({d})" for o, d in zip(s.objectives, s.directions, strict=False))
    limits = {k: v for k, v in (rec.get("constraints") or {}).items() if v is not None}
    best = (
        f"{fmt_value(s.best_value)} (trial {s.best_number})"
        if s.best_number is not None
        else "no completed trial yet"
    )
    saved = s.epochs_without_pruning - s.epochs_trained
    facts = [
        ("Study", s.study_name),
        ("Storage", s.storage),
        ("Model", rec.get("model")),
        (
            "Dataset and split",
            f"{rec.get('dataset', '-')}: {rec.get('val_size', '-')} training images held out for validation "
            f"(stratified, split seed {rec.get('split_seed', '-')})",
        ),
        (
            "Sampler and pruner",
            f"{rec.get('sampler', '-')} (seed {rec.get('seed')}), pruner {rec.get('pruner', '-')}",
        ),
        ("Objectives", objectives),
        ("Constraints", ", ".join(f"{k} {v:,}" for k, v in limits.items()) or "none"),
        ("Epochs per trial", rec.get("epochs")),
        (
            "Trials",
            f"{c['complete']} complete, {c['pruned']} pruned ({c['diverged']} of them diverged), "
            f"{c['failed']} failed, {c['running']} running"
            + (f", {c['waiting']} waiting" if c["waiting"] else ""),
        ),
        (
            "Total time",
            f"{fmt_duration(s.wall_seconds)} wall clock; {fmt_duration(s.trial_seconds)} summed over trials",
        ),
        ("Best validation accuracy", best),
        ("Test accuracy of the best", _test_accuracy(data)),
        (
            "Epochs trained",
            f"{s.epochs_trained:,} of the {s.epochs_without_pruning:,} these trials would have trained "
            f"without pruning ({fmt_pct(max(saved, 0), s.epochs_without_pruning)} saved)",
        ),
        (
            "Time on pruned trials",
            f"{fmt_duration(s.pruned_seconds)} ({fmt_pct(s.pruned_seconds, s.train_seconds)} of "
            f"{fmt_duration(s.train_seconds)} spent training)",
        ),
    ]
    out = []
    if not rec:
        out.append(note("This study has no hpsearch record: it was not created by hpsearch optimize."))
    if c["running"]:
        out.append(note(f"{c['running']} trial(s) are still running: this report is a snapshot."))
    out.append(table(["", ""], ((Markup(f"<b>{escape(k)}</b>"), v) for k, v in facts), cls="facts"))
    if data.evaluation:
        out.append("<h3>Re-evaluation (hpsearch evaluate)</h3>")
        rows = [
            (e.number, _pm(e.val_mean, e.val_sd), _pm(e.test_mean, e.test_sd), _signed(e.optimism_gap))
            for e in data.evaluation
        ]
        out.append(table(["trial", "validation", "test", "optimism gap"], rows, numeric=(0, 1, 2, 3)))
    return "".join(out)


def _pm(mean: float | None, sd: float | None) -> str:
    return "-" if mean is None else fmt_value(mean) + (f" ± {fmt_value(sd)}" if sd is not None else "")


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.4f}"


# 2. Search ----------------------------------------------------------------------------------


def _search(data: ReportData, f: _Figures) -> str:
    s, label = data.search, "validation accuracy"
    out = []
    if s.edge_warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in s.edge_warnings)
        out.append(f'<ul class="warnings">{items}</ul>')
    elif s.history:
        out.append("<p>No best value sits at the edge of its search range.</p>")
    if len(data.summary.directions) > 1:
        out.append(note("Several objectives: these plots show the first, validation accuracy."))
    if "all" in s.notes:
        out.append(note(s.notes["all"] + "; the timeline below shows the trials so far."))
    else:
        out += [
            "<h3>Optimisation history</h3>",
            '<p class="caption">Each completed trial and the best so far; pruned trials have no final value.</p>',
            f.place(figs.history_figure(s.history, label), "no completed trial"),
            "<h3>Parameter importances</h3>",
            f'<p class="caption">Method: {escape(s.importance.method)}.</p>',
            note(s.importance.note) if s.importance.note else "",
            f.place(figs.importance_figure(s.importance), "importances could not be computed"),
            "<h3>Parallel coordinates</h3>",
            '<p class="caption">One line per completed trial, coloured by validation accuracy; the axes are the '
            "most important parameters that every completed trial sampled, low at the bottom.</p>",
            f.place(figs.parallel_figure(s.parallel, label), s.notes.get("parallel", "nothing to draw")),
            "<h3>Slices</h3>",
            '<p class="caption">Validation accuracy against each parameter; darker points are later trials.</p>',
            f.place(figs.slice_figure(s.slices, label), "no parameter was searched"),
            "<h3>Contour of the two most important parameters</h3>",
            '<p class="caption">Validation accuracy interpolated (inverse distance) between the trials (points).</p>',
            f.place(figs.contour_figure(s.contour, label), s.notes.get("contour", "nothing to draw")),
            "<h3>Empirical distribution (EDF)</h3>",
            f.place(figs.edf_figure(s.edf, label), "no completed trial"),
        ]
    out += ["<h3>Timeline</h3>", f.place(figs.timeline_figure(s.timeline), "no trial has started yet")]
    return "".join(out)


# 3. Learning curves ---------------------------------------------------------------------------


def _curves(data: ReportData, f: _Figures) -> str:
    best = data.best_curve
    out = [
        '<p class="caption">Validation accuracy per epoch of every trial, coloured by how it ended; '
        "the best trial is drawn thick.</p>",
        f.place(
            figs.curves_figure(data.curves, best[0] if best else None), "no trial has finished an epoch yet"
        ),
    ]
    if best is not None:
        out += [
            f"<h3>Best trial ({best[0]}): loss and accuracy per epoch</h3>",
            f.place(figs.best_curve_figure(best[1]), "the best trial has no learning curve"),
        ]
    return "".join(out)


# 4. Best model --------------------------------------------------------------------------------


def _best_model(data: ReportData, f: _Figures) -> str:
    m, out = data.best_model, []
    if m.number is not None:
        out.append(f"<p>Trial {m.number}, validation accuracy {fmt_value(m.value)}.</p>")
    out += [note(n) for n in m.notes]
    if m.layers:
        shape = "x".join(map(str, m.input_shape or ()))
        rows = [(r.name, r.kind, r.detail, r.out_shape, r.params, r.flops) for r in m.layers]
        rows.append(
            (
                Markup("<b>total</b>"),
                "",
                "",
                "",
                sum(r.params for r in m.layers),
                sum(r.flops for r in m.layers),
            )
        )
        out += [
            f"<h3>Architecture (input {escape(shape)})</h3>",
            table(["layer", "kind", "settings", "output shape", "parameters", "FLOPs"], rows, numeric=(4, 5)),
        ]
    ev = m.evaluation
    if ev is None:
        return "".join(out)
    out += [
        f"<h3>Confusion matrix on the {ev.split} split</h3>",
        f"<p>Accuracy {fmt_value(ev.accuracy)} on {ev.n:,} images.</p>",
        f.place(figs.confusion_figure(ev), "no predictions"),
        "<h3>Per-class accuracy</h3>",
    ]
    rows = [
        (name, sum(ev.confusion[k]), ev.confusion[k][k], acc)
        for k, (name, acc) in enumerate(zip(ev.classes, ev.per_class, strict=True))
    ]
    out.append(table(["class", "images", "correct", "accuracy"], rows, numeric=(1, 2, 3)))
    out.append(f"<h3>Misclassified {ev.split} images (first {len(ev.misclassified)})</h3>")
    if not ev.misclassified:
        out.append(note("every image was classified correctly"))
    cells = []
    for w in ev.misclassified:
        true, pred = escape(ev.classes[w.true]), escape(ev.classes[w.predicted])
        src = "data:image/png;base64," + base64.b64encode(w.png).decode("ascii")
        cells.append(
            f'<figure><img src="{src}" alt="image {w.index}: true {true}, predicted {pred}">'
            f'<figcaption>#{w.index}<br>true {true}<br><span class="wrong">predicted {pred}</span></figcaption></figure>'
        )
    out.append(f'<div class="grid">{"".join(cells)}</div>')
    return "".join(out)


# 5. Baselines ----------------------------------------------------------------------------------


def _baselines(data: ReportData) -> str:
    s = data.summary
    if not data.baselines:
        return note(f"hpsearch has no hand-tuned baselines for model {s.record.get('model', '?')!r}.")
    rows = [
        (
            b.id,
            b.reported,
            f"{fmt_value(b.reported_accuracy)} ({b.reported_split})"
            if b.reported_accuracy is not None
            else "-",
            b.number,
            fmt_value(b.value) if b.value is not None else (b.state or "-"),
            b.note,
        )
        for b in data.baselines
    ]
    out = [
        '<p class="caption">Reported: what the hand-tuned report measured (its own split, epochs and code). '
        "Here: the same configuration run as a trial of this study (validation accuracy, this study's "
        "epochs and pruning), when it was enqueued.</p>",
        table(
            ["baseline", "reported", "reported accuracy", "trial here", "validation accuracy here", "note"],
            rows,
            numeric=(2, 3, 4),
        ),
    ]
    best = next((r for r in data.trials if r.number == s.best_number), None)
    if best is None:
        out.append(note("The search has no completed trial yet to compare with."))
        return "".join(out)
    test = (
        f"; test {fmt_value(s.best_test.test_mean)}"
        if s.best_test and s.best_test.test_mean is not None
        else ""
    )
    out.append(
        f"<h3>Best configuration found: trial {best.number}</h3><p>Validation accuracy {fmt_value(s.best_value)}{test}.</p>"
    )
    out.append(table(["parameter", "value"], best.params.items()))
    return "".join(out)


# 6. Pareto front --------------------------------------------------------------------------------


def _pareto(data: ReportData, f: _Figures) -> str:
    p = data.pareto
    out = [
        '<p class="caption">Every completed trial; Pareto-optimal ones (best among feasible trials in every '
        "objective at once) in blue, infeasible ones (violating a constraint) as red crosses. "
        "Hover a point for its parameters.</p>"
    ]
    figures = figs.pareto_figures(p)
    if not p.points:
        return out[0] + note("no trial has completed yet")
    out += [f.place(fig, "") for fig in figures]
    front = p.front
    if not front:
        out.append(note("no feasible trial has completed yet, so there is no Pareto front"))
        return "".join(out)
    rows = [
        (
            q.number,
            *q.values,
            ", ".join(f"{k} {v:+.3f}" for k, v in q.constraints.items()) or "-",
            _params_text(q.params),
        )
        for q in front
    ]
    header = [
        "trial",
        *(f"{o} ({d})" for o, d in zip(p.objectives, p.directions, strict=True)),
        "constraints (<= 0 feasible)",
        "parameters",
    ]
    out += [
        f"<h3>Pareto-optimal trials ({len(front)})</h3>",
        table(header, rows, numeric=range(len(p.objectives) + 1)),
    ]
    infeasible = sum(not q.feasible for q in p.points)
    if infeasible:
        out.append(
            f"<p>{infeasible} completed trial(s) violate a constraint and cannot be Pareto-optimal.</p>"
        )
    return "".join(out)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(v) if isinstance(v, float) else v}" for k, v in params.items())


# All trials ---------------------------------------------------------------------------------------


def _trials(data: ReportData) -> str:
    if not data.trials:
        return note("This study has no trials yet.")
    rows = [
        (
            r.number,
            r.state,
            r.outcome,
            ", ".join(fmt_value(v) for v in r.values) if r.values else "-",
            len(r.curve),
            "yes" if r.feasible else "no",
            r.baseline,
            r.reason,
        )
        for r in data.trials
    ]
    header = ["trial", "state", "outcome", "values", "epochs", "feasible", "baseline", "reason"]
    return f"<details><summary>{len(rows)} trials</summary>{table(header, rows, numeric=(0, 4))}</details>"
