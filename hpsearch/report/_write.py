"""Writing the report file atomically: a half-written file never replaces a good one."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hpsearch.errors import ConfigError
from hpsearch.report._collect import collect_report
from hpsearch.report._render import render_report

__all__ = ["check_writable", "default_report_path", "write_report", "write_text_atomic"]


def default_report_path(study_name: str) -> Path:
    """``reports/<study>.html``, with characters unsafe in file names replaced by ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).strip("._") or "study"
    return Path("reports") / f"{safe}.html"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, content: str) -> Path:
    """Write ``content`` to a temporary file beside ``path``, then rename it over ``path``.

    Raises:
        ConfigError: The folder cannot be created or written (one line, with the reason).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the report to {path}: {exc.strerror or exc}; choose another --out"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | os.PathLike) -> None:
    """Fail fast, before minutes of work and without creating anything, if ``path`` can't be written.

    Raises:
        ConfigError: A parent is a regular file, or the nearest existing folder is read-only.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"cannot write the report to {path}: it is a folder; give a file name to --out")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"cannot write the report to {path}: {parent} is not a folder; choose another --out"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the report to {path}: {parent} is not writable; choose another --out"
        )


def write_report(
    study_name: str,
    url: str | None,
    out_path: str | os.PathLike | None = None,
    data_dir: str | None = None,
) -> Path:
    """Collect, render and write a study's report.

    Args:
        study_name: The study.
        url: Its storage URL (None: the default storage).
        out_path: The HTML file (default ``reports/<study>.html``); its folder is created.
        data_dir: Where the study's dataset lives, for the best model's confusion matrix.

    Returns:
        The path written.
    """
    out = Path(out_path or default_report_path(study_name))
    check_writable(out)
    html = render_report(collect_report(study_name, url, data_dir))
    return write_text_atomic(out, html)
