"""Security: the dashboard stays on loopback unless told otherwise, passwords in storage URLs are never
shown, and nothing hpsearch loads can unpickle arbitrary objects."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest
from helpers import run

from hpsearch.cli._study import _command_line

PACKAGE = Path(__file__).resolve().parents[1] / "hpsearch"
SECRET = "Pa55w0rdXYZ"


@pytest.fixture
def served(monkeypatch):
    """Record what optuna-dashboard would be started with, instead of starting it."""
    import optuna_dashboard

    calls = []
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, **kw: calls.append(kw))
    return calls


def test_dashboard_binds_loopback_by_default_without_a_warning(capsys, workdir, served):
    code, _, err = run(capsys, "dashboard")
    assert code == 0
    assert [(c["host"], c["port"]) for c in served] == [("127.0.0.1", 8080)]
    assert "warning" not in err and "http://127.0.0.1:8080/" in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::"])
def test_dashboard_on_another_address_warns_that_it_has_no_authentication(capsys, workdir, served, host):
    code, _, err = run(capsys, "dashboard", "--host", host, "--port", "8123")
    assert code == 0 and [(c["host"], c["port"]) for c in served] == [(host, 8123)]
    assert f"warning: binding {host}" in err and "no authentication" in err


def test_dashboard_serves_the_saved_weights_without_creating_folders(capsys, workdir, served):
    """The trials' weights (optuna.artifacts beside the database) show in the dashboard."""
    from optuna.artifacts import FileSystemArtifactStore

    assert run(capsys, "dashboard")[0] == 0
    assert served[-1]["artifact_store"] is None and not Path("studies/hpsearch-artifacts").exists()
    Path("studies/hpsearch-artifacts").mkdir(parents=True)
    assert run(capsys, "dashboard")[0] == 0
    store = served[-1]["artifact_store"]
    assert isinstance(store, FileSystemArtifactStore)
    assert Path(store._base_path).resolve() == Path("studies/hpsearch-artifacts").resolve()


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of the TCP sockets listening on ``port``, from the kernel's tables (Linux)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_the_real_dashboard_listens_on_loopback_only(workdir, tmp_path):
    """Started for real (briefly): it answers on 127.0.0.1 and listens on no other address."""
    from processes import Proc, free_port, get_json, wait_for

    port = free_port()
    dashboard = Proc(["dashboard", "--port", str(port)], tmp_path, name="dashboard")
    try:
        wait_for(
            lambda: get_json(f"http://127.0.0.1:{port}/api/studies")[0] == 200, "the dashboard", dashboard
        )
        assert _listening_addresses(port) == ["0100007F"]  # 127.0.0.1, little-endian hex
    finally:
        dashboard.stop()


@pytest.mark.parametrize(
    "args",
    [
        ["optimize", "--storage", "postgresql://hp:{pw}@127.0.0.1:9/db", "--trials", "2"],
        ["optimize", "--storage=postgresql://hp:{pw}@127.0.0.1:9/db"],
        ["worker", "--study", "s", "--storage", "mysql+pymysql://u:{pw}@db.example:3306/x?ssl=1"],
        ["worker", "--study", "s", "--storage", "postgresql://u@h/db?password={pw}&sslmode=require"],
    ],
)
def test_resume_commands_never_show_the_password(args):
    line = _command_line([a.format(pw=SECRET) for a in args])
    assert SECRET not in line and "***" in line and line.startswith("hpsearch ")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["studies"],
        ["show", "s"],
        ["worker", "--study", "s"],
        ["studies", "delete", "s", "--yes"],
        ["report", "s"],
        ["dashboard"],
        ["train", "--from-trial", "s:0"],
    ],
)
def test_errors_about_a_server_never_show_the_password(capsys, workdir, served, command):
    url = f"postgresql://hp:{SECRET}@127.0.0.1:{_closed_port()}/db"
    code, out, err = run(capsys, *command, "--storage", url)
    assert code == 2 and "hp:***@127.0.0.1" in err
    assert SECRET not in out + err


def _calls(tree: ast.AST, module: str, function: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == function:
            value = node.func.value
            if isinstance(value, ast.Name) and value.id == module:
                yield node


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def test_nothing_loads_files_with_pickle():
    """Every torch.load passes weights_only=True, every np.load allow_pickle=False, and no module
    imports pickle-based loaders: a model or data file cannot run code when it is opened."""
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    loads = 0
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree, "torch", "load"):
            loads += 1
            assert _keyword(call, "weights_only") is True, (
                f"{path}:{call.lineno}: torch.load without weights_only=True"
            )
        for call in _calls(tree, "np", "load"):
            assert _keyword(call, "allow_pickle") is False, (
                f"{path}:{call.lineno}: np.load without allow_pickle=False"
            )
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not {"pickle", "dill", "joblib", "cloudpickle"} & {n.split(".")[0] for n in names}, path
    assert loads >= 1  # the report loads the best model's weights


def test_a_weights_file_with_code_in_it_is_refused(tmp_path):
    """What weights_only=True buys: a pickle that would run a command on load is rejected."""
    import os

    import torch

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    path = tmp_path / "weights.pt"
    torch.save({"layer.weight": torch.zeros(2), "payload": Exploit()}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    assert not (tmp_path / "owned").exists()
