"""ReportData -> one self-contained HTML page (plotly.js embedded once; no network needed).

Safety: every string from the study is HTML-escaped; the figures travel as JSON in a
non-executable ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, so no
value can close the tag; and a Content-Security-Policy allows only the page's own three scripts
(by hash), inline styles and ``data:`` images: nothing else runs or loads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from functools import lru_cache
from html import escape
from typing import Any

from hpsearch.report._collect import ReportData
from hpsearch.report._html import STYLE
from hpsearch.report._sections import render_sections

__all__ = ["csp_for", "figures_json", "render_report"]

# Runs first: any error, failed promise, blocked resource or console.error call is recorded on
# <html data-report-errors>, where a reader (or a headless-browser test) can see it.
_GUARD = """(function () {
  var errors = [];
  function record(message) {
    errors.push(String(message));
    document.documentElement.setAttribute("data-report-errors", errors.join("\\n"));
  }
  window.addEventListener("error", function (e) { record(e.message || "a resource failed to load"); }, true);
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandled rejection: " + ((e.reason && e.reason.message) || e.reason));
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    record("blocked by the content security policy: " + e.violatedDirective + " " + e.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
  window.hpsearchReportError = record;
})();"""

# Draws every figure into its <div> and checks that plotly built a visible SVG there. Each
# <div> gets data-rendered="yes" or "failed"; when all are done, <body> gets data-plots-drawn
# and data-report-ready. A figure that fails says so in place of the plot.
_DRAW = """(function () {
  var figures = JSON.parse(document.getElementById("report-figures").textContent);
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]};
  var drawn = 0;
  function fail(el, e) {
    var message = (e && e.message) || String(e);
    el.className += " failed";
    el.setAttribute("data-rendered", "failed");
    el.textContent = "This plot could not be drawn: " + message;
    window.hpsearchReportError(el.id + ": " + message);
  }
  function check(el) {
    var svg = el.querySelector("svg.main-svg");
    var box = svg && svg.getBoundingClientRect();
    if (!box || box.width < 10 || box.height < 10) {
      throw new Error("plotly drew nothing visible");
    }
    el.setAttribute("data-rendered", "yes");
    drawn += 1;
  }
  var pending = figures.map(function (f) {
    var el = document.getElementById(f.id);
    try {
      return Promise.resolve(Plotly.newPlot(el, f.data, f.layout, config))
        .then(function () { check(el); })
        .catch(function (e) { fail(el, e); });
    } catch (e) {
      fail(el, e);
      return Promise.resolve();
    }
  });
  Promise.all(pending).then(function () {
    document.body.setAttribute("data-plots-drawn", String(drawn));
    document.body.setAttribute("data-report-ready", "yes");
  });
})();"""


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # An inline script ends at the first "</script"; plotly.js has none, keep it that way.
    return js.replace("</script", "<\\/script")


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


def csp_for(scripts: list[str]) -> str:
    """The page's Content-Security-Policy: these inline scripts, inline styles, data: images."""
    hashes = " ".join(_sha256(s) for s in scripts)
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'"
    )


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (plotly leaves a gap)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def figures_json(figures: list[dict[str, Any]]) -> str:
    """The figures as JSON that is safe inside a <script> element."""
    text = json.dumps(_clean(figures), separators=(",", ":"), allow_nan=False)
    for raw, safe in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, safe)
    return text


def render_report(data: ReportData) -> str:
    """Render the report as one HTML page.

    Args:
        data: What :func:`hpsearch.report.collect_report` computed.

    Returns:
        The page, with plotly.js and every figure inline.
    """
    figures: list[dict[str, Any]] = []
    body, nav = render_sections(data, figures)
    scripts = [_GUARD, _plotly_js(), _DRAW]
    name = escape(data.summary.study_name)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{escape(csp_for(scripts))}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>hpsearch report: {name}</title>",
            f"<style>{STYLE}</style>",
            f"<script>{_GUARD}</script>",
            "</head>",
            f'<body data-figures="{len(figures)}">',
            f'<header><h1>hpsearch report: <span class="study-name">{name}</span></h1>'
            f'<p class="meta">generated {escape(data.generated)} by hpsearch {escape(data.version)}</p>'
            f"<nav>{nav}</nav></header>",
            f"<main>{body}</main>",
            f'<script type="application/json" id="report-figures">{figures_json(figures)}</script>',
            f"<script>{scripts[1]}</script>",
            f"<script>{_DRAW}</script>",
            "</body>",
            "</html>",
        ]
    )
