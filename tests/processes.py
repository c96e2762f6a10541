"""Running ``hpsearch`` as real processes for the fault and distributed tests: start, wait, read back.

Every wait here is bounded, so a hung child fails its test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna

WAIT_SECONDS = 180  # generous: CI machines are shared; a correct run never comes near it

FCN_SPACE = """
[space]
n_layers = { low = 1, high = 2 }
width = { low = 8, high = 32, log = true }
batch_size = [32, 64]
optimizer = ["adam", "sgd"]
lr = { low = 1e-3, high = 1e-1, log = true }
"""


class Proc:
    """An ``hpsearch`` child process with stdout and stderr in files (a full pipe would block it)."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, name: str = "hpsearch"):
        self.out_path, self.err_path = cwd / f"{name}.out", cwd / f"{name}.err"
        full_env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_STORAGE"}
        full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "hpsearch", *args], cwd=cwd, env=full_env, stdout=out, stderr=err
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"hpsearch did not finish in {timeout}s; stderr:\n{self.stderr}") from None

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self) -> None:
        """End the process if it still runs (cleanup; never part of what a test checks)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def wait_for(
    condition, what: str, proc: Proc | None = None, timeout: float = WAIT_SECONDS, every: float = 0.05
):
    """Poll ``condition()`` until it returns something truthy; fail if ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(f"hpsearch exited ({proc.popen.returncode}) before {what}:\n{proc.stderr}")
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def fault_env(point: str, count: int, mark: Path) -> dict[str, str]:
    """Ask the child to stop at a fault point (hpsearch.study._faults) and say so in ``mark``."""
    return {"HPSEARCH_FAULT": f"{point}:{count}", "HPSEARCH_FAULT_MARK": str(mark)}


def trial_records(url: str, name: str) -> dict[int, dict]:
    """Every trial of a study as comparable plain data, keyed by number (read in this process)."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return {
            t.number: {
                "state": t.state.name,
                "values": t.values,
                "params": t.params,
                "user_attrs": t.user_attrs,
                "system_attrs": t.system_attrs,
                "intermediate": t.intermediate_values,
                "started": t.datetime_start,
                "completed": t.datetime_complete,
            }
            for t in study.get_trials(deepcopy=False)
        }
    finally:
        storage.engine.dispose()


def finished(records: dict[int, dict]) -> dict[int, dict]:
    return {n: r for n, r in records.items() if r["state"] in ("COMPLETE", "PRUNED")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> tuple[int, object]:
    """(HTTP status, parsed body) of a GET on loopback; status 0 when the connection failed."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None
