"""Opening Optuna storages safely: SQLite tuned for several writers, any URL, heartbeats.

SQLite is the default because it needs nothing installed, but its default
rollback journal lets one writer block every reader. We switch the file to
WAL (persistent, so optuna-dashboard benefits too) and give every connection
a long busy timeout, so parallel workers and a dashboard queue on the lock
instead of failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import importlib.util
import os
import re
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from hpsearch.errors import StudyError

__all__ = [
    "DEFAULT_STORAGE",
    "RetryKilledTrial",
    "artifact_dir",
    "claim_lock",
    "open_storage",
    "redact_url",
    "resolve_storage_url",
]

DEFAULT_STORAGE = "sqlite:///studies/hpsearch.db"
HEARTBEAT_SECONDS = 10  # a worker's RUNNING trial is refreshed this often
GRACE_SECONDS = 60  # ...and counted as dead (failed, then retried) after this long without one
MAX_RETRY = 2  # a killed trial's configuration is retried at most this often
SQLITE_BUSY_SECONDS = 120  # how long a writer waits for the lock before SQLite gives up
_SECRET_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)


class RetryKilledTrial(RetryHeartbeatStaleTrialCallback):
    """Queue a dead worker's trial again with its parameters, but not what its run recorded.

    Optuna's callback copies every user attribute to the retry; a stale ``reason`` or
    ``curve`` would then sit on the retry's result. Only ``baseline`` belongs to the configuration.
    """

    KEEP = ("baseline",)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k in self.KEEP}
        super().__call__(study, trial)


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or the query) replaced by ``***``: safe to print."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable storage URL>"
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(_SECRET_KEY.search(k) for k, _ in query)  # drivers also take ?password=...
    if parts.password is None and not secret_query:
        return url  # unchanged: urlunsplit would turn sqlite:///x into sqlite:/x
    if parts.password is not None:
        host = parts.hostname or ""
        if port:
            host += f":{port}"
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    if secret_query:
        query = [(k, "***" if _SECRET_KEY.search(k) else v) for k, v in query]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return urlunsplit(parts)


def resolve_storage_url(url: str | None) -> str:
    """Expand the default and journal-file shorthands into a full storage URL.

    ``None`` means :data:`DEFAULT_STORAGE` (or ``$HPSEARCH_STORAGE``); a plain path
    ending in ``.db``/``.sqlite`` means SQLite, ``.log``/``.journal`` a journal file.
    """
    url = url or os.environ.get("HPSEARCH_STORAGE") or DEFAULT_STORAGE
    if "://" not in url:
        suffix = Path(url).suffix
        if suffix in (".db", ".sqlite", ".sqlite3"):
            return f"sqlite:///{url}"
        if suffix in (".log", ".journal", ".jsonl"):
            return f"journal:///{url}"
        raise StudyError(
            f"storage {url!r} is not a URL; use e.g. sqlite:///studies/hpsearch.db, "
            "postgresql://user@host/db, or a journal file journal:///path/study.log"
        )
    return url


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    return None if path in ("", ":memory:") else Path(path)


def _journal_path(url: str) -> Path | None:
    return Path(url[len("journal:///") :]) if url.startswith("journal:///") else None


def _prepare_file(path: Path, what: str) -> None:
    """Create the parent directory and check the file can be written, with a clear message."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(
            f"cannot create {path.parent} for the {what}: {exc.strerror}; use --storage"
        ) from None
    # SQLite also writes -wal/-shm files (and the journal backend a lock file) beside the file.
    for target in (path.parent, path) if path.exists() else (path.parent,):
        if not os.access(target, os.W_OK):
            raise StudyError(f"{target} is not writable; fix its permissions or pass --storage elsewhere")


def _enable_wal(path: Path) -> None:
    """Switch a SQLite file to WAL mode once; the mode is stored in the file."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as conn:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise StudyError(
            f"{path} is not a usable SQLite database ({exc}); pass --storage with another file"
        ) from None


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise StudyError(
            f"no study storage at {path}; run hpsearch optimize first, or pass --storage "
            "with the URL the study was run with"
        )


# A plain dialect means SQLAlchemy's default driver (psycopg 3, mysqlclient); the extras
# hpsearch[postgres] and hpsearch[mysql] install psycopg2 and PyMySQL, so use those when they are here.
_DRIVERS = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("MySQLdb", "pymysql")}
_EXTRAS = {"postgresql": "hpsearch[postgres]", "mysql": "hpsearch[mysql]"}


def _with_driver(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if scheme in _DRIVERS:
        default, ours = _DRIVERS[scheme]
        has = importlib.util.find_spec
        if has(default) is None and has(ours) is not None:
            return f"{scheme}+{ours}{sep}{rest}"
    return url


def _driver_error(url: str, exc: ImportError) -> StudyError:
    cause = exc.__cause__ or exc.__context__
    module = getattr(cause, "name", None) or exc.name
    what = f"the database driver {module!r}" if module else "a database driver"
    scheme = url.split(":", 1)[0]
    extra = _EXTRAS.get(scheme)  # a plain dialect; an explicit +driver names its own package
    fix = (
        f"pip install '{extra}'" if extra else f"install the Python package that provides {module or scheme}"
    )
    return StudyError(f"storage {redact_url(url)} needs {what}, which is not installed; {fix}")


def open_storage(
    url: str | None, *, heartbeat: bool = True, create: bool = True
) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the storage at ``url``.

    Args:
        url: Any Optuna storage URL, ``journal:///path`` for a journal file, or None for the default.
        heartbeat: Enable heartbeats on RDB storages so a killed worker's trial is failed and retried.
        create: Create a missing SQLite or journal file. Commands that only read an existing
            study pass False, so a mistyped path is an error rather than a new empty file.

    Returns:
        An Optuna storage. Raises :class:`StudyError` with the (password-free) URL when it cannot be opened.
    """
    url = _with_driver(resolve_storage_url(url))
    journal = _journal_path(url)
    if journal is not None:
        if not create:
            _require_file(journal)
        _prepare_file(journal, "journal file")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(journal)))
    engine_kwargs: dict = {"pool_pre_ping": True}
    sqlite_path = _sqlite_path(url)
    if sqlite_path is not None:
        if not create:
            _require_file(sqlite_path)
        _prepare_file(sqlite_path, "study database")
        _enable_wal(sqlite_path)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = {}
            if heartbeat:
                beat = dict(
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                    heartbeat_stale_trial_callback=RetryKilledTrial(max_retry=MAX_RETRY),
                )
            return RDBStorage(url, engine_kwargs=engine_kwargs, **beat)
    except ImportError as exc:
        raise _driver_error(url, exc) from None
    except Exception as exc:  # sqlalchemy raises many types for bad URLs and unreachable servers
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        password = _password(url)
        if password:
            reason = reason.replace(password, "***")
        raise StudyError(
            f"cannot open storage {redact_url(url)}: {reason.replace(url, redact_url(url))}; check the "
            "URL (dialect://user:password@host:port/database) and that the server is running"
        ) from None


def _password(url: str) -> str | None:
    """The password in ``url``, found even where the URL does not parse."""
    match = re.search(r"://[^:/@]*:([^@/]+)@", url)
    return match.group(1) if match else None


def artifact_dir(url: str | None) -> Path:
    """Where trial artifacts (model weights) live: beside a SQLite/journal file, else ./studies/artifacts."""
    url = resolve_storage_url(url)
    path = _sqlite_path(url) or _journal_path(url)
    if path is None:
        return Path("studies") / "artifacts"
    return path.parent / f"{path.stem}-artifacts"


@contextlib.contextmanager
def claim_lock(url: str | None, study_name: str) -> Iterator[None]:
    """Serialise "count the trials, then ask for one" between the workers of one machine.

    Without it, two workers can both see one slot left and both start a trial.
    On one machine a file lock suffices (SQLite and journal files must be local
    anyway); workers on other machines against a server database fall back to
    Optuna's own atomic trial numbering and may overshoot by at most one trial each.
    """
    url = resolve_storage_url(url)
    base = _sqlite_path(url) or _journal_path(url)
    lock_dir = base.parent if base is not None else Path(os.environ.get("TMPDIR", "/tmp"))
    safe = "".join(c if c.isalnum() else "_" for c in f"{redact_url(url)}-{study_name}")[-150:]
    lock_path = lock_dir / f".hpsearch-{safe}.lock"
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
