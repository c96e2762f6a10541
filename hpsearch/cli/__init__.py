"""The ``hpsearch`` command line: one thin client of the library.

Each command builds a config, calls one library function and prints the
result. This package is the only place that prints or exits; expected
failures (:class:`~hpsearch.errors.HpsearchError`) become one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

from typer.exceptions import Abort, Exit, TyperException

from hpsearch.cli._app import app
from hpsearch.errors import HpsearchError

# Importing the command modules registers their commands on ``app``.
from hpsearch.cli import _report, _study, _train, _evaluate, _export  # noqa: F401  isort: skip

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and exit with its status."""
    from hpsearch.study._worker import quiet_optuna, sigterm_as_interrupt

    quiet_optuna()
    try:
        # A stopped job (kill, Slurm, Kubernetes) ends like Ctrl-C in every command: the running
        # trial is marked failed, finished work is kept. Without standalone mode, typer returns
        # (not raises) the code of a typer.Exit.
        with sigterm_as_interrupt():
            code = app(args=argv, prog_name="hpsearch", standalone_mode=False)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors: bad flag, missing argument, bad value
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"hpsearch: error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Abort:
        print("hpsearch: interrupted", file=sys.stderr)
        sys.exit(130)
    except HpsearchError as exc:
        print(f"hpsearch: error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
