"""The report: the collected data of every kind of study, the page's safety, the file, the CLI.

Studies are synthetic (``report_fixtures``): real Optuna storages with the attributes hpsearch's
objective writes, made without training. The data tests check :func:`collect_report` against
answers worked out independently (a brute-force Pareto front, hand-counted epochs); the page
tests parse the HTML; the browser test (``test_report_browser.py``) loads it in Chromium.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pytest
import report_fixtures as rf
from helpers import run
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpsearch.baselines import BASELINES
from hpsearch.config import SearchConfig
from hpsearch.data import DATASETS
from hpsearch.errors import ConfigError, StudyError
from hpsearch.report import (
    ParamRange,
    TrialRow,
    collect_report,
    default_report_path,
    render_report,
    write_report,
)
from hpsearch.report._search import edge_warnings, fmt_number
from hpsearch.space import FloatRange, default_space
from hpsearch.study import RECORD_KEY

XSS_NAME = "<img src=x onerror=alert(1)>"
LR = FloatDistribution(1e-4, 0.1, log=True)
UNIT = FloatDistribution(0.0, 1.0)


# Studies, built once per module -------------------------------------------------------------


class Lab:
    """One SQLite storage holding every scenario, the tiny dataset, and cached report data."""

    def __init__(self, root: Path):
        self.root = root
        self.url = f"sqlite:///{root / 'studies.db'}"
        self.data_dir = rf.write_data(root / "data")
        self._cache: dict[str, object] = {}

    def collect(self, name: str):
        if name not in self._cache:
            self._cache[name] = collect_report(name, self.url, self.data_dir)
        return self._cache[name]

    def html(self, name: str) -> str:
        return render_report(self.collect(name))


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    lab = Lab(tmp_path_factory.mktemp("report"))
    url = lab.url
    rf.build_study(url, "fcn", n_trials=20, baselines=True, diverged=[4], failed=[7])
    rf.build_study(url, "multi", objectives=("accuracy", "params"), max_params=30_000, n_trials=30)
    rf.build_study(url, "constrained", max_params=25_000, n_trials=12, prune_every=None, weights=False)
    rf.build_study(url, "running", n_trials=5, running=2, weights=False)
    rf.build_study(url, "pruned", n_trials=6, prune_every=1, weights=False)
    rf.build_study(url, "single", n_trials=1, prune_every=None)
    rf.empty_study(url, "empty")
    return lab


SCENARIOS = ["fcn", "multi", "constrained", "running", "pruned", "single", "empty"]


def figures_of(html: str) -> list[dict]:
    """The figures the page will draw, from its JSON block."""
    found = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', html, re.S)
    assert found, "the page has no figure data"
    return json.loads(found.group(1))


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class Page(HTMLParser):
    """Scripts, URL attributes, element ids and the text of selected elements of a page."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: list[str] = []
        self.meta: dict[str, str] = {}
        self.title = self.h1 = ""
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href", "action", "srcset", "poster", "data"):
            if key in attrs:
                self.urls.append((tag, key, attrs[key] or ""))
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "meta" and attrs.get("http-equiv"):
            self.meta[attrs["http-equiv"]] = attrs.get("content", "")
        if tag == "script":
            self.scripts.append((attrs, ""))
        if tag not in VOID:
            self._open.append(tag)

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data):
        if self._open and self._open[-1] == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        if "title" in self._open:
            self.title += data
        if "h1" in self._open:
            self.h1 += data


def rows_text(html: str) -> str:
    """The page's visible text, tags removed (entities left as they are)."""
    return re.sub(r"<[^>]+>", " ", html)


# Scenarios: empty, one trial, all pruned, still running ---------------------------------------


def test_empty_study_gives_notes_instead_of_plots(lab):
    d = lab.collect("empty")
    s = d.summary
    assert s.counts == {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "diverged": 0}
    assert (s.best_number, s.best_value, s.epochs_trained, s.epochs_without_pruning) == (None, None, 0, 0)
    assert d.trials == [] and d.curves == [] and d.best_curve is None and d.pareto is None
    assert d.search.history == [] and d.search.timeline == [] and "all" in d.search.notes
    assert d.best_model.layers == [] and d.best_model.evaluation is None
    assert "no trial has completed" in d.best_model.notes[0]
    html = lab.html("empty")
    assert figures_of(html) == []
    assert "no trial has completed yet" in html and "This study has no trials yet." in html


def test_single_trial_draws_what_one_point_allows(lab):
    d = lab.collect("single")
    assert [r.state for r in d.trials] == ["complete"]
    assert d.summary.best_number == 0 and d.summary.best_value == d.trials[0].values[0]
    assert [p.number for p in d.search.history] == [0] and len(d.search.edf) == 1
    assert d.search.importance.values == [] and "at least 5 completed trials" in d.search.importance.note
    assert d.search.parallel is None and "parallel" in d.search.notes
    assert d.search.contour is None and "contour" in d.search.notes
    assert len(d.search.slices) > 0 and all(s.numbers == [0] for s in d.search.slices)
    assert d.best_curve is not None and d.best_curve[0] == 0
    html = lab.html("single")
    assert d.search.notes["contour"] in html and d.search.importance.note in html


def test_all_pruned_study_has_no_best_but_counts_what_it_cost(lab):
    d = lab.collect("pruned")
    s = d.summary
    assert s.counts["pruned"] == 6 and s.counts["complete"] == 0
    assert s.best_number is None and d.search.history == [] and d.search.edf == []
    assert {c.category for c in d.curves} <= {"pruned", "diverged"} and len(d.curves) == 6
    assert s.epochs_trained == sum(len(r.curve) for r in d.trials) < 6 * 4
    assert s.epochs_without_pruning == 6 * 4  # every one of them would have run the study's 4 epochs
    assert s.pruned_seconds == pytest.approx(s.train_seconds) and s.train_seconds > 0
    assert len(d.search.timeline) == 6 and "all" in d.search.notes
    html = lab.html("pruned")
    assert "no completed trial yet" in html and "no trial has completed" in html


def test_running_trials_are_counted_and_drawn_as_a_snapshot(lab):
    d = lab.collect("running")
    assert d.summary.counts["running"] == 2 and d.summary.counts["complete"] >= 1
    running = [r for r in d.trials if r.state == "running"]
    assert len(running) == 2 and all(r.values is None and r.end is not None for r in running)
    assert {b.number for b in d.search.timeline if b.category == "running"} == {r.number for r in running}
    assert {c.number for c in d.curves if c.category == "running"} == {r.number for r in running}
    html = lab.html("running")
    assert "2 trial(s) are still running: this report is a snapshot." in html
    bars = [
        t for f in figures_of(html) for t in f["data"] if t["type"] == "bar" and t.get("name") == "running"
    ]
    assert len(bars) == 1 and sorted(bars[0]["y"]) == sorted(r.number for r in running)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_renders_a_complete_page(lab, name):
    html = lab.html(name)
    page = Page(html)
    figures = figures_of(html)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for section in ("summary", "search", "curves", "best-model", "baselines", "trials"):
        assert section in page.ids, section
    assert ("pareto" in page.ids) == (name == "multi")
    # every figure has its own <div>, and every plot <div> has a figure
    plot_divs = re.findall(r'<div class="plot" id="(figure-\d+)">', html)
    assert plot_divs == [f["id"] for f in figures]
    assert len(set(page.ids)) == len(page.ids)
    assert f'data-figures="{len(figures)}"' in html


# Multi-objective: the Pareto front, infeasible trials ----------------------------------------


def _dominates(a, b, directions) -> bool:
    sign = [1 if d == "maximize" else -1 for d in directions]
    better_or_equal = all(s * x >= s * y for s, x, y in zip(sign, a, b, strict=True))
    return better_or_equal and any(s * x > s * y for s, x, y in zip(sign, a, b, strict=True))


def test_pareto_front_is_the_feasible_non_dominated_set(lab):
    p = lab.collect("multi").pareto
    assert p.objectives == ["accuracy", "params"] and p.directions == ["maximize", "minimize"]
    study = optuna.load_study(study_name="multi", storage=lab.url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(q.number for q in p.points) == sorted(t.number for t in complete)
    feasible = [q for q in p.points if q.feasible]
    expected = {
        q.number
        for q in feasible
        if not any(_dominates(o.values, q.values, p.directions) for o in feasible if o is not q)
    }
    assert {q.number for q in p.front} == expected and len(expected) >= 2
    for q in p.points:  # the fixture's constraint: params / 30,000 - 1 <= 0
        assert q.feasible == (q.values[1] <= 30_000) == (q.constraints["params"] <= 0)
    assert any(not q.feasible for q in p.points), "the fixture should have infeasible trials"


def test_pareto_plot_hovers_parameters_and_the_table_lists_the_front(lab):
    d = lab.collect("multi")
    html = lab.html("multi")
    pareto = [f for f in figures_of(html) if any(t.get("name") == "Pareto-optimal" for t in f["data"])]
    assert len(pareto) == 1  # one plot per objective beyond accuracy
    traces = {t["name"]: t for t in pareto[0]["data"]}
    assert set(traces) == {"Pareto-optimal", "dominated", "infeasible"}
    front = d.pareto.front
    for q in front:
        hover = next(h for h in traces["Pareto-optimal"]["text"] if h.startswith(f"trial {q.number}<br>"))
        lr = q.params["lr"]
        assert f"lr: {lr:.4g}" in hover and "optimizer: " in hover
    assert traces["infeasible"]["marker"]["symbol"] == "x"
    assert len(traces["infeasible"]["x"]) == sum(not q.feasible for q in d.pareto.points)
    table = html.split("Pareto-optimal trials (")[1].split("</table>")[0]
    assert table.startswith(f"{len(front)})")
    assert [int(n) for n in re.findall(r"<tr><td class=num>(\d+)</td>", table)] == [q.number for q in front]
    assert "optimizer=" in table


def test_infeasible_trials_are_marked_and_never_best(lab):
    d = lab.collect("constrained")
    done = [r for r in d.trials if r.values]
    infeasible = {r.number for r in done if r.params_count > 25_000}
    assert infeasible and infeasible != {r.number for r in done}, "the fixture should mix both"
    assert {r.number for r in done if not r.feasible} == infeasible
    best = max((r for r in done if r.number not in infeasible), key=lambda r: r.values[0])
    assert d.summary.best_number == best.number and d.best_model.number == best.number
    assert {p.number for p in d.search.history if not p.feasible} == infeasible
    html = lab.html("constrained")
    history = next(f for f in figures_of(html) if any(t.get("name") == "best so far" for t in f["data"]))
    marked = next(t for t in history["data"] if t.get("name") == "infeasible")
    assert sorted(marked["x"]) == sorted(infeasible)
    # the trials table's "feasible" column (pruned trials have constraints too)
    assert html.count("<td>no</td>") == sum(not r.feasible for r in d.trials)


# Summary: compute accounting, test accuracy ----------------------------------------------------


def test_compute_accounting_counts_the_epochs_pruning_saved(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = rf.empty_study(url, "acct", epochs=4)
    x = {"dropout": UNIT}
    rf.add_trial(study, {"dropout": 0.1}, x, values=[0.8], curve=rf.make_curve([0.5, 0.6, 0.7, 0.8], 2.0))
    rf.add_trial(study, {"dropout": 0.2}, x, state=TrialState.PRUNED, curve=rf.make_curve([0.3], 3.0))
    rf.add_trial(
        study,
        {"dropout": 0.3},
        x,
        state=TrialState.PRUNED,
        outcome="diverged",
        curve=rf.make_curve([0.1, 0.1], 1.0),
    )
    rf.add_trial(study, {"dropout": 0.4}, x, state=TrialState.PRUNED, outcome="geometry")
    rf.add_trial(study, {"dropout": 0.5}, x, state=TrialState.FAIL, curve=rf.make_curve([0.2, 0.2], 0.5))
    s = collect_report("acct", url).summary
    assert s.counts == {"complete": 1, "pruned": 3, "failed": 1, "running": 0, "waiting": 0, "diverged": 1}
    # trained: 4 + 1 + 2 + 0 + 2; without pruning the pruned and the diverged run all 4 epochs,
    # the net that could not be built still trains nothing and the failed trial still fails.
    assert (s.epochs_trained, s.epochs_without_pruning) == (9, 4 + 4 + 4 + 0 + 2)
    assert s.train_seconds == pytest.approx(8 + 3 + 2 + 1)
    assert s.pruned_seconds == pytest.approx(3 + 2)
    html = render_report(collect_report("acct", url))
    assert "9 of the 14 these trials would have trained without pruning (36% saved)" in html
    assert "5.0 s (36% of 14.0 s spent training)" in html


def test_summary_names_the_study_setup_and_the_best(lab):
    d = lab.collect("fcn")
    s = d.summary
    assert s.record["model"] == "fcn" and s.storage == lab.url and s.directions == ["maximize"]
    assert s.counts["failed"] == 1 and s.counts["diverged"] >= 1
    assert s.counts["complete"] + s.counts["pruned"] + s.counts["failed"] == 20
    complete = [r for r in d.trials if r.values]
    assert s.best_value == max(r.values[0] for r in complete)
    assert s.wall_seconds > 0 and s.trial_seconds >= s.wall_seconds  # two workers overlap
    html = lab.html("fcn")
    pruner = s.record["pruner"]
    assert pruner == SearchConfig.pruner  # the fixture keeps the default
    for fact in ("fashion-mnist: 100 training images held out", f"random (seed 0), pruner {pruner}"):
        assert fact in html
    # the saved weights were evaluated on the test split, so the summary has a test accuracy
    ev = d.best_model.evaluation
    assert f"{ev.accuracy:.4f} for the saved weights on the test split (200 images)" in html


def test_re_evaluation_gives_the_test_accuracy_of_the_best(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = rf.empty_study(url, "ev")
    for i, v in enumerate([0.7, 0.9, 0.8]):
        rf.add_trial(study, {"dropout": i / 4}, {"dropout": UNIT}, values=[v])
    rows = [
        {
            "number": 1,
            "val_mean": 0.88,
            "val_sd": 0.01,
            "test_mean": 0.861,
            "test_sd": 0.004,
            "optimism_gap": 0.02,
        },
        {
            "number": 2,
            "val_mean": 0.79,
            "val_sd": 0.02,
            "test_mean": 0.78,
            "test_sd": 0.01,
            "optimism_gap": 0.01,
        },
    ]
    study.set_user_attr("evaluation", {"rows": rows})
    d = collect_report("ev", url)
    assert d.summary.best_number == 1 and d.summary.best_test.test_mean == 0.861
    assert [e.number for e in d.evaluation] == [1, 2]
    html = render_report(d)
    assert "0.8610 ± 0.0040 re-trained over several seeds" in html and "+0.0200" in html


# Search: edge warnings, importances -------------------------------------------------------------


def test_best_value_at_the_edge_warns_to_widen_the_range(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = default_space("fcn").with_params(lr=FloatRange(1e-4, 0.1, log=True))
    study = rf.empty_study(url, "edge", space=space)
    dists = {"lr": LR, "dropout": FloatDistribution(0.0, 0.5), "n_layers": IntDistribution(1, 5)}
    rng = np.random.default_rng(0)
    for i in range(8):
        params = {"lr": float(10 ** rng.uniform(-3, -1)), "dropout": 0.25, "n_layers": 3}
        rf.add_trial(study, params, dists, values=[0.6 + i / 100])
    rf.add_trial(study, {"lr": 1.05e-4, "dropout": 0.24, "n_layers": 5}, dists, values=[0.9])
    warnings = collect_report("edge", url).search.edge_warnings
    assert warnings == [
        "lr: best 1.05e-4 is at the low edge of [1e-4, 0.1]: widen lr below 1e-4",
        "n_layers: best 5 is at the high edge of [1, 5]: widen n_layers above 5",
    ]
    html = render_report(collect_report("edge", url))
    assert '<ul class="warnings"><li>lr: best 1.05e-4' in html


def test_edge_warnings_name_the_space_parameter_and_skip_two_valued_ranges():
    ranges = {
        "width_2": ParamRange("width_2", "int", 16, 1024, log=True, step=1),
        "dropout": ParamRange("dropout", "float", 0.0, 0.5),
        "stride_1": ParamRange("stride_1", "int", 1, 2, step=1),
        "optimizer": ParamRange("optimizer", "categorical", choices=("sgd", "adam")),
    }
    best = TrialRow(
        0, "complete", "completed", (0.9,), {"width_2": 1024, "dropout": 0.0, "stride_1": 2, "optimizer": "sgd"},
        (), 0.0, 1.0, {},
    )  # fmt: skip
    assert edge_warnings(best, ranges, default_space("cnn")) == [
        "width_2: best 1024 is at the high edge of [16, 1024]: widen width above 1024",
        "dropout: best 0 is at the low edge of [0, 0.5] (0 is as far as hpsearch allows)",
    ]
    middle = best._replace(params={"width_2": 128, "dropout": 0.25})
    assert edge_warnings(middle, ranges, None) == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-4, "1e-4"),
        (2.5e-5, "2.5e-5"),
        (0.3, "0.3"),
        (0.0015, "0.0015"),
        (0.0, "0"),
        (64, "64"),
        (2e6, "2e6"),
    ],
)
def test_numbers_are_written_as_ranges_are(value, text):
    assert fmt_number(value) == text


def test_importance_names_its_method_and_ranks_the_parameter_that_matters(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = rf.empty_study(url, "imp")
    rng = np.random.default_rng(1)
    dists = {"dropout": UNIT, "init_std": UNIT}
    for _ in range(60):
        signal, noise = float(rng.uniform()), float(rng.uniform())
        rf.add_trial(study, {"dropout": signal, "init_std": noise}, dists, values=[signal])
    imp = collect_report("imp", url).search.importance
    assert imp.method.startswith("PED-ANOVA")
    assert [name for name, _ in imp.values] == ["dropout", "init_std"]
    assert imp.values[0][1] > 0.8 and sum(v for _, v in imp.values) == pytest.approx(1.0)
    html = render_report(collect_report("imp", url))
    assert "Method: PED-ANOVA" in html
    # the contour is of the two most important parameters, most important on x
    assert collect_report("imp", url).search.contour.x.name == "dropout"


def test_search_plots_cover_the_completed_trials(lab):
    d = lab.collect("fcn")
    done = [r for r in d.trials if r.values]
    assert [p.number for p in d.search.history] == [r.number for r in done]
    assert d.search.edf == sorted(r.values[0] for r in done)
    assert d.search.parallel.numbers == [r.number for r in done]
    assert all(0 <= x <= 1 for row in d.search.parallel.positions for x in row)
    assert {b.number for b in d.search.timeline} == {r.number for r in d.trials}
    names = [n for n, _ in d.search.importance.values]
    assert d.search.contour.x.name in names[:3] and d.search.contour.y.name in names[:3]
    assert len(d.search.contour.z) == len(d.search.contour.grid_y)


# Learning curves ----------------------------------------------------------------------------------


def test_learning_curves_keep_every_trial_and_its_ending(lab):
    d = lab.collect("fcn")
    by_number = {r.number: r for r in d.trials}
    assert {c.number for c in d.curves} == {r.number for r in d.trials if r.curve}
    for c in d.curves:
        assert c.category == by_number[c.number].category
        assert c.val_acc == [ep["val_acc"] for ep in by_number[c.number].curve]
    assert {"complete", "pruned", "diverged", "failed"} <= {c.category for c in d.curves}
    assert d.best_curve[0] == d.summary.best_number
    html = lab.html("fcn")
    curves = next(f for f in figures_of(html) if any("best (trial" in t.get("name", "") for t in f["data"]))
    colours = {t["name"]: t["line"]["color"] for t in curves["data"] if t["showlegend"]}
    assert len(set(colours.values())) == len(colours)  # complete, pruned, diverged, failed distinguishable


# Best model -------------------------------------------------------------------------------------


def test_best_model_has_layers_confusion_matrix_and_mistakes(lab):
    d = lab.collect("fcn")
    m = d.best_model
    best = next(r for r in d.trials if r.number == m.number)
    assert m.number == d.summary.best_number and m.notes == []
    assert sum(layer.params for layer in m.layers) == best.params_count
    assert sum(layer.flops for layer in m.layers) == best.flops
    ev = m.evaluation
    assert ev.split == "test" and ev.classes == list(DATASETS["fashion-mnist"].classes)
    assert len(ev.confusion) == 10 and all(len(row) == 10 for row in ev.confusion) and ev.n == 200
    wrong = ev.n - sum(ev.confusion[k][k] for k in range(10))
    assert len(ev.misclassified) == min(24, wrong)
    assert all(w.true != w.predicted and w.png.startswith(b"\x89PNG\r\n\x1a\n") for w in ev.misclassified)
    html = lab.html("fcn")
    assert html.count('<img src="data:image/png;base64,') == len(ev.misclassified)
    assert "Confusion matrix on the test split" in html and "<td>Ankle boot</td>" in html
    confusion = next(f for f in figures_of(html) if f["data"][0]["type"] == "heatmap")
    assert confusion["data"][0]["z"] == ev.confusion and confusion["data"][0]["x"][0] == "T-shirt/top"


def test_best_model_without_the_data_says_so_and_still_lists_layers(lab, tmp_path):
    d = collect_report("fcn", lab.url, str(tmp_path))
    m = d.best_model
    assert m.evaluation is None
    assert any("is not available here" in n and "--data-dir" in n for n in m.notes)
    best = next(r for r in d.trials if r.number == m.number)
    assert sum(layer.params for layer in m.layers) == best.params_count  # shapes guessed from the count
    html = render_report(d)
    assert "is not available here" in html and "Confusion matrix" not in html


def test_best_model_with_its_weights_file_gone_says_so(tmp_path, lab):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    rf.build_study(url, "w", n_trials=4, prune_every=None)
    shutil.rmtree(tmp_path / "w-artifacts")
    d = collect_report("w", url, lab.data_dir)
    assert d.best_model.evaluation is None and len(d.best_model.layers) > 0
    assert any("are missing" in n for n in d.best_model.notes)
    assert "are missing" in render_report(d)


def test_best_model_without_saved_weights_says_how_to_get_them(lab):
    d = lab.collect("running")
    assert d.best_model.evaluation is None and len(d.best_model.layers) > 0
    assert "has no saved weights" in d.best_model.notes[0]


def test_a_plain_optuna_study_still_gets_a_report(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = rf.empty_study(url, "plain", record=False)
    for i in range(6):
        rf.add_trial(study, {"x": i / 6, "y": (i * 7 % 6) / 6}, {"x": UNIT, "y": UNIT}, values=[i / 10])
    d = collect_report("plain", url)
    assert d.summary.record == {} and d.baselines == [] and d.best_model.layers == []
    assert any("no model spec" in n for n in d.best_model.notes)
    html = render_report(d)
    assert "This study has no hpsearch record" in html and len(figures_of(html)) >= 6


# Hand-tuned vs automated -------------------------------------------------------------------------


def test_baseline_rows_compare_each_hand_tuned_configuration(lab):
    d = lab.collect("fcn")
    fcn = [b for b in BASELINES.values() if b.kind == "fcn"]
    assert [r.id for r in d.baselines] == [b.id for b in fcn]
    study = optuna.load_study(study_name="fcn", storage=lab.url)
    enqueued = {t.user_attrs["baseline"]: t for t in study.trials if "baseline" in t.user_attrs}
    skipped = study.user_attrs["baselines_skipped"]
    assert enqueued and skipped and set(enqueued) | set(skipped) == {b.id for b in fcn}
    for row in d.baselines:
        b = BASELINES[row.id]
        assert row.reported_accuracy == b.reported_accuracy and row.reported == b.reported
        if row.id in enqueued:
            t = enqueued[row.id]
            assert row.number == t.number and row.state == t.state.name.lower()
            assert row.value == (t.values[0] if t.state == TrialState.COMPLETE else None)
        else:
            assert row.number is None and row.note == f"not enqueued: {skipped[row.id]}"
    html = lab.html("fcn")
    assert f"Best configuration found: trial {d.summary.best_number}" in html
    for row in d.baselines:
        assert f"<td>{row.id}</td>" in html


def test_baselines_that_were_not_enqueued_say_how_to_compare_them(lab):
    rows = lab.collect("running").baselines
    assert rows and all(r.number is None and "--enqueue-baselines" in r.note for r in rows)


# Safety: escaping, no external resources, one plotly.js ---------------------------------------------


def _xss_study(tmp_path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    study = rf.empty_study(url, XSS_NAME)
    record = dict(study.user_attrs[RECORD_KEY], dataset="<iframe src=javascript:alert(3)>")
    study.set_user_attr(RECORD_KEY, record)
    choice = CategoricalDistribution(["<svg onload=alert(4)>", "plain"])
    dists = {"optimizer": choice, "dropout": UNIT}
    for i in range(6):
        rf.add_trial(
            study,
            {"optimizer": choice.choices[i % 2], "dropout": i / 6},
            dists,
            values=[i / 10],
            baseline="<b onmouseover=alert(5)>",
        )
    rf.add_trial(
        study, {"optimizer": "plain", "dropout": 0.9}, dists, state=TrialState.PRUNED,
        reason="</script><script>alert(6)</script>",
    )  # fmt: skip
    return url, render_report(collect_report(XSS_NAME, url))


PAYLOADS = [
    XSS_NAME,
    "<iframe src=javascript:alert(3)>",
    "<svg onload=alert(4)>",
    "<b onmouseover=alert(5)>",
    "<script>alert(6)</script>",
]


def test_user_strings_are_escaped_and_shown_as_text(tmp_path):
    _, html = _xss_study(tmp_path)
    for payload in PAYLOADS:
        assert payload not in html, payload
    page = Page(html)
    assert page.h1 == f"hpsearch report: {XSS_NAME}" and page.title == f"hpsearch report: {XSS_NAME}"
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;/script&gt;&lt;script&gt;alert(6)&lt;/script&gt;" in html  # the trial's reason, as text
    # in the figure data, plotly labels are escaped too (plotly renders a subset of HTML)
    labels = json.dumps(figures_of(html))
    assert "&lt;svg onload=alert(4)&gt;" in labels and "<svg" not in labels
    # the only scripts are hpsearch's: the guard, the figure data, plotly.js and the drawing code
    assert len(page.scripts) == 4 and [a.get("type") for a, _ in page.scripts].count("application/json") == 1


def test_page_loads_nothing_from_outside_and_embeds_plotly_once(lab):
    from plotly.offline import get_plotlyjs

    html = lab.html("fcn")
    page = Page(html)
    assert not [u for u in page.urls if u[1] == "src" and u[0] == "script"]
    assert not [u for u in page.urls if u[0] == "link"]
    for tag, attr, value in page.urls:  # images are inline, links go to sections of the page
        assert value.startswith("data:image/png;base64,") if attr == "src" else value.startswith("#"), (
            tag,
            attr,
            value[:80],
        )
    assert not re.search(r"<(script|link|iframe|object|embed)\b[^>]*\b(src|href)=", html)
    bundle = get_plotlyjs()
    assert [text for _, text in page.scripts].count(bundle) == 1
    assert html.count(bundle[:200]) == 1 and len(html) < len(bundle) + 2_000_000


def test_content_security_policy_allows_exactly_the_pages_own_scripts(lab):
    page = Page(lab.html("fcn"))
    csp = page.meta["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    executable = [text for attrs, text in page.scripts if attrs.get("type") != "application/json"]
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() + "'" for t in executable
    }
    assert set(directives["script-src"].split()) == hashes and len(hashes) == 3
    assert "unsafe" not in directives["script-src"] and directives["img-src"].split() == ["data:", "blob:"]


def test_report_file_name_of_a_hostile_study_name_is_safe():
    path = default_report_path(XSS_NAME)
    assert path.parent == Path("reports") and re.fullmatch(r"[A-Za-z0-9._-]+\.html", path.name)
    assert default_report_path("../../etc/passwd").parent == Path("reports")


# Writing the file -------------------------------------------------------------------------------------


def test_write_report_creates_folders_and_an_ordinary_file(lab, tmp_path):
    out = tmp_path / "a" / "b" / "r.html"
    assert write_report("single", lab.url, out, lab.data_dir) == out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_failure_mid_write_leaves_the_old_report_intact(lab, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("the good old report")
    real_fdopen = os.fdopen

    class DiskFull:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[: len(text) // 2])  # half of it lands on disk, then the disk is full
            self.fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: DiskFull(real_fdopen(*a, **k)))
    with pytest.raises(ConfigError, match="No space left on device"):
        write_report("single", lab.url, out, lab.data_dir)
    assert out.read_text() == "the good old report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no half-written temporary left


def test_a_failure_before_writing_leaves_the_old_report_intact(lab, tmp_path, monkeypatch):
    import hpsearch.report._write as write_module

    out = tmp_path / "r.html"
    out.write_text("the good old report")

    def broken(data):
        raise RuntimeError("boom")

    monkeypatch.setattr(write_module, "render_report", broken)
    with pytest.raises(RuntimeError):
        write_report("single", lab.url, out, lab.data_dir)
    assert out.read_text() == "the good old report" and len(list(tmp_path.iterdir())) == 1


# The command ---------------------------------------------------------------------------------------------


def test_cli_writes_the_report(lab, workdir, capsys):
    code, out, err = run(capsys, "report", "single", "--storage", lab.url, "--data-dir", lab.data_dir)
    assert code == 0 and out.strip() == "report written to reports/single.html" and err == ""
    assert (workdir / "reports" / "single.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_nonexistent_study_is_a_one_line_error(lab, workdir, capsys):
    code, out, err = run(capsys, "report", "nosuch", "--storage", lab.url)
    assert code == 2 and out == ""
    assert err.startswith("hpsearch: error: no study named 'nosuch'") and err.count("\n") == 1
    assert "studies here: " in err and not (workdir / "reports").exists()


def test_cli_missing_storage_is_a_one_line_error_and_creates_nothing(workdir, capsys):
    code, _, err = run(capsys, "report", "nosuch")
    assert code == 2 and err.startswith("hpsearch: error: no study storage at studies/hpsearch.db")
    assert err.count("\n") == 1 and list(workdir.iterdir()) == []


def test_cli_out_under_a_file_is_a_one_line_error(lab, workdir, capsys):
    (workdir / "taken").write_text("a file, not a folder")
    code, out, err = run(capsys, "report", "single", "--storage", lab.url, "--out", "taken/r.html")
    assert code == 2 and out == ""
    assert err.startswith("hpsearch: error: cannot write the report to taken/r.html: ")
    assert "choose another --out" in err and err.count("\n") == 1


def test_unwritable_out_fails_before_collecting(lab, workdir, capsys, monkeypatch):
    """An hour-long study's report is not computed only to be thrown away at the end."""
    import hpsearch.report._write as write_module

    collected = []
    monkeypatch.setattr(write_module, "collect_report", lambda *a, **k: collected.append(a))
    (workdir / "taken").write_text("a file, not a folder")
    for out in ("taken/r.html", "taken/deeper/r.html", "."):
        code, _, err = run(capsys, "report", "single", "--storage", lab.url, "--out", out)
        assert code == 2 and "cannot write the report" in err
    assert collected == [] and sorted(p.name for p in workdir.iterdir()) == ["taken"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_cli_read_only_out_folder_is_a_one_line_error(lab, workdir, capsys):
    folder = workdir / "ro"
    folder.mkdir(mode=0o555)
    try:
        code, _, err = run(capsys, "report", "single", "--storage", lab.url, "--out", "ro/r.html")
    finally:
        folder.chmod(0o755)
    assert code == 2 and err.startswith("hpsearch: error: cannot write the report to ro/r.html: ")
    assert err.count("\n") == 1


def test_study_error_from_the_library(tmp_path):
    with pytest.raises(StudyError, match="no study storage"):
        collect_report("x", f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()
