"""Helpers shared by the tests that drive the CLI in-process."""

from __future__ import annotations

import pytest

from hpsearch.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``hpsearch ARGS`` through ``cli.main``: its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err
