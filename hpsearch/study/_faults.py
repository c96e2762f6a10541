"""Fault injection for the crash tests: stop at a named point so that a test can kill the process there.

A kill -9 at a random moment makes a flaky test; a kill at a known point makes a
deterministic one. With ``HPSEARCH_FAULT=POINT:N`` set, the N-th time a worker
reaches POINT it writes its pid to the file ``$HPSEARCH_FAULT_MARK`` and waits
there, so the test can send SIGKILL (or SIGTERM) exactly then; or delete the mark,
and the worker goes on (to hold one worker back while others start).

Points:

- ``batch``: the N-th training batch of this process (mid-epoch, inside the forward pass);
- ``trial``: after the N-th trial this worker finished has been stored (between trials);
- ``write``: inside the database transaction that stores the N-th finished trial
  (state written, not yet committed): a kill during a storage write.

Without the variable (that is, always outside the tests) :func:`arm` and :func:`reach` do nothing.
"""

from __future__ import annotations

import os
import time
from collections import Counter

__all__ = ["arm", "reach"]

FAULT_ENV, MARK_ENV = "HPSEARCH_FAULT", "HPSEARCH_FAULT_MARK"
_seen: Counter[str] = Counter()
_armed: set[str] = set()


def _wanted() -> tuple[str, int] | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    point, _, count = spec.partition(":")
    return point, int(count or 1)


def reach(point: str) -> None:
    """Count one arrival at ``point``; stop here if it is the one the test asked for."""
    wanted = _wanted()
    if wanted is None or wanted[0] != point:
        return
    _seen[point] += 1
    if _seen[point] == wanted[1]:
        mark = os.environ.get(MARK_ENV)
        if mark:
            with open(mark + ".tmp", "w") as fh:
                fh.write(f"{os.getpid()}\n")
            os.replace(mark + ".tmp", mark)  # the test never sees a half-written mark
        # A SIGTERM handler (raise_on_sigterm) still runs between the sleeps.
        while not mark or os.path.exists(mark):
            time.sleep(0.05)


def arm(storage) -> None:
    """Install the hooks for ``batch`` and ``write`` in this process (once), if a fault is asked for."""
    wanted = _wanted()
    if wanted is None or wanted[0] in _armed:
        return
    point = wanted[0]
    _armed.add(point)
    if point == "batch":
        import torch
        from torch import nn

        def on_forward(module, args, output):
            # Models are nn.Sequential at the top; counting those counts batches, not layers.
            if isinstance(module, nn.Sequential) and module.training and torch.is_grad_enabled():
                reach("batch")

        nn.modules.module.register_module_forward_hook(on_forward)
    elif point == "write":
        from sqlalchemy import event

        # Optuna wraps an RDBStorage in a cache; the engine is the wrapped storage's.
        engine = getattr(getattr(storage, "_backend", storage), "engine", None)

        def after_execute(conn, cursor, statement, parameters, context, executemany):
            values = parameters.values() if isinstance(parameters, dict) else parameters or ()
            finished = any(v in ("COMPLETE", "PRUNED") for v in values if isinstance(v, str))
            if statement.lstrip().upper().startswith("UPDATE TRIALS SET STATE") and finished:
                reach("write")

        if engine is not None:
            event.listen(engine, "after_cursor_execute", after_execute)
