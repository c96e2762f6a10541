"""Small HTML helpers for the report: escaping tables, notes, number and time formats, the style."""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape
from typing import Any

__all__ = ["STYLE", "Markup", "fmt_duration", "fmt_pct", "fmt_value", "note", "table", "text"]

STYLE = """
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --warn: #8a4b00; --warn-bg: #fff4e0; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; }
header { border-bottom: 1px solid var(--line); margin-bottom: 12px; }
h1 { font-size: 24px; margin: 20px 0 4px; word-break: break-all; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
nav a { margin-right: 14px; color: #0b57d0; text-decoration: none; }
.meta, .caption { color: var(--muted); font-size: 13px; }
.note { color: var(--muted); font-style: italic; background: #f6f6f6; padding: 8px 12px; border-radius: 4px; }
.warnings { background: var(--warn-bg); color: var(--warn); padding: 8px 12px 8px 28px; border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { font-weight: 600; white-space: nowrap; }
.plot { width: 100%; min-height: 200px; }
.plot.failed { color: #b00020; padding: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(104px, 1fr)); gap: 10px; }
.grid figure { margin: 0; text-align: center; font-size: 11px; }
.grid img { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid var(--line); }
.wrong { color: #b00020; }
details summary { cursor: pointer; color: #0b57d0; }
code { background: #f2f2f2; padding: 0 3px; border-radius: 3px; }
"""


def text(value: Any) -> str:
    """Any value as escaped HTML text (None as a dash)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return fmt_value(value)
    return escape(str(value))


def fmt_value(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float) and (abs(value) >= 1e4 or 0 < abs(value) < 1e-3):
        return f"{value:.3g}"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if abs(value) >= 10 else f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def fmt_pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def note(message: str) -> str:
    return f'<p class="note">{escape(message)}</p>'


def table(
    header: Iterable[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = (), cls: str = ""
) -> str:
    """A table of escaped cells; columns listed in ``numeric`` are right-aligned.

    A cell that is a ``Markup`` (already-safe HTML) is inserted as it is.
    """
    numeric = set(numeric)
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            content = str(cell) if isinstance(cell, Markup) else text(cell)
            cells.append(f"<td{' class=num' if i in numeric else ''}>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Markup(str):
    """A string of HTML the report built itself (its parts were escaped), not to be escaped again."""
