"""The report in a real browser: headless Chromium loads it offline, with no console errors, and
draws every plot.

The page records its own health in the DOM (see ``hpsearch/report/_render.py``): any error,
failed promise, blocked resource, content-security-policy violation or ``console.error`` goes to
``<html data-report-errors>``; each plot ``<div>`` gets ``data-rendered="yes"`` once plotly has
built a visible SVG in it; ``<body data-report-ready>`` says drawing has finished. Chromium's
``--dump-dom`` gives us that DOM, and ``--enable-logging=stderr`` every console message.

Needs Debian's ``chromium`` package (``.ci/run`` installs it); skipped only when no Chromium
binary is found.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest
import report_fixtures as rf

from hpsearch.report import write_report

XSS_NAME = "<img src=x onerror=alert(1)>"
TIMEOUT = 90  # seconds per page; a page takes 2-5 s
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def find_chromium() -> str | None:
    """$HPSEARCH_CHROMIUM, else the first Chromium or Chrome binary on PATH."""
    override = os.environ.get("HPSEARCH_CHROMIUM")
    if override:
        return override
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary on PATH (apt-get install chromium, or set HPSEARCH_CHROMIUM)",
)


class Dom(HTMLParser):
    """The attributes of <html>, <body> and every plot <div>, and the page's images and text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self.plots: dict[str, dict[str, str]] = {}
        self.images: list[dict[str, str]] = []
        self.title = ""
        self.study_name = ""
        self._in: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.root = attrs
        elif tag == "body":
            self.body = attrs
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "div" and attrs.get("id", "").startswith("figure-"):
            self.plots[attrs["id"]] = attrs
        if tag not in VOID:
            self._in.append("study-name" if "study-name" in attrs.get("class", "") else tag)

    def handle_endtag(self, tag):
        if self._in:
            self._in.pop()

    def handle_data(self, data):
        if self._in and self._in[-1] == "title":
            self.title += data
        if self._in and self._in[-1] == "study-name":
            self.study_name += data


def load(page: Path, profile: Path) -> tuple[Dom, list[str]]:
    """Open ``page`` in headless Chromium; returns its DOM once the scripts ran, and the console."""
    cmd = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers have a small /dev/shm
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any network fetch fails (and is recorded)
        f"--user-data-dir={profile}",
        "--window-size=1280,1024",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=20000",  # let the drawing promises settle before the DOM is dumped
        "--dump-dom",
        page.as_uri(),
    ]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish loading {page.name} within {TIMEOUT} s")
    assert proc.returncode == 0 and "</html>" in proc.stdout, (
        f"Chromium failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Dom(proc.stdout), console


def assert_healthy(dom: Dom, console: list[str], figures: int) -> None:
    assert "data-report-errors" not in dom.root, dom.root["data-report-errors"]
    assert console == [], "console messages:\n" + "\n".join(console)
    assert dom.body.get("data-report-ready") == "yes", "the drawing script did not finish"
    assert len(dom.plots) == int(dom.body["data-figures"]) >= figures
    failed = {k: v.get("data-rendered") for k, v in dom.plots.items() if v.get("data-rendered") != "yes"}
    assert failed == {}, f"plots not drawn: {failed}"
    assert dom.body["data-plots-drawn"] == dom.body["data-figures"]


def tamper(page: Path, out: Path) -> Path:
    """A broken copy of ``page``: plotly.js removed, so no plot can draw, and a script injected,
    which the page's Content-Security-Policy must refuse to run."""
    html = page.read_text()
    start = html.index("<script>/**\n* plotly.js")
    end = html.index("</script>", start) + len("</script>")
    out.write_text(html[:start] + '<script>document.title = "injected";</script>' + html[end:])
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict[str, tuple[str, Dom, list[str]]]:
    """Reports of a 20-trial FCN study, a 20-trial CNN study (both with weights and data, so the
    confusion matrix and the misclassified images render), a study with a hostile name, and a
    tampered page, each loaded in Chromium: name -> (page source, DOM, console messages).

    The four browsers run two at a time, which halves the wall time on a two-core machine.
    """
    root = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{root / 'studies.db'}"
    data_dir = rf.write_data(root / "data")
    rf.build_study(url, "fcn", model="fcn", n_trials=20, baselines=True, diverged=[4], failed=[7])
    rf.build_study(url, "cnn", model="cnn", n_trials=20, running=1, seed=1)
    rf.build_study(url, XSS_NAME, n_trials=5, weights=False)
    pages = {
        name: write_report(study, url, root / f"{name}.html", data_dir)
        for name, study in (("fcn", "fcn"), ("cnn", "cnn"), ("xss", XSS_NAME))
    }
    pages["tampered"] = tamper(pages["fcn"], root / "tampered.html")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda name: load(pages[name], root / f"profile-{name}"), pages)
        return {
            name: (pages[name].read_text(), dom, console)
            for name, (dom, console) in zip(pages, results, strict=True)
        }


@pytest.mark.parametrize("model", ["fcn", "cnn"])
def test_report_renders_every_plot_with_no_console_errors(loaded, model):
    html, dom, console = loaded[model]
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", html)  # nothing external to fetch
    # history, importances, parallel, slices, contour, EDF, timeline, curves, best curve, confusion
    assert_healthy(dom, console, figures=10)
    assert "Confusion matrix on the test split" in html
    mistakes = [i for i in dom.images if i.get("src", "").startswith("data:image/png;base64,")]
    assert len(mistakes) > 0 and all("predicted" in i.get("alt", "") for i in mistakes)


def test_hostile_study_name_is_shown_as_text(loaded):
    _, dom, console = loaded["xss"]
    assert_healthy(dom, console, figures=5)
    assert dom.study_name == XSS_NAME and dom.title == f"hpsearch report: {XSS_NAME}"
    assert not [i for i in dom.images if i.get("src") == "x"]  # no <img> element was made of it


def test_the_checks_catch_a_broken_page_and_the_policy_blocks_foreign_scripts(loaded):
    _, dom, console = loaded["tampered"]
    errors = dom.root.get("data-report-errors", "")
    assert "content security policy" in errors and "Plotly is not defined" in errors
    assert dom.title != "injected" and console != []
    assert {v.get("data-rendered") for v in dom.plots.values()} == {"failed"}
    assert dom.body.get("data-plots-drawn") == "0"
