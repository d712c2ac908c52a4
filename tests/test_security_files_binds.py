"""The security pass, files and listeners: the store, its -wal/-shm and the log files the CLI
creates are 0600 whatever the umask; every server binds loopback by default; tokens are compared
in constant time (an AST scan of the package)."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
from pathlib import Path

import pytest

from qbconsole.model import Sample
from qbconsole.store import Store

from helpers import PACKAGE, ROOT, kill_if_running, package_modules, qbconsole_process, wait_for

T0 = 1_700_000_000_000


# ---- file modes ---------------------------------------------------------------------------------------
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_its_side_files_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        store = Store.open(tmp_path / "qb.db")
        store.write([Sample("x", {}, T0, 1.0)])
        other = Store.open(tmp_path / "qb.db")  # a second process-like opener
        other.read().execute("SELECT count(*) FROM samples").fetchone()
        files = sorted(tmp_path.iterdir())
        assert [p.name for p in files] == ["qb.db", "qb.db-shm", "qb.db-wal"]
        assert {p.name: oct(mode(p)) for p in files} == {p.name: "0o600" for p in files}
        other.close()
        store.close()
    finally:
        os.umask(old)


def test_the_files_the_cli_creates_are_0600(tmp_path):
    """``qbconsole demo --headless`` (store, -wal/-shm, the demo's log files) under a permissive umask.
    The console's own log file is checked by the terminal tests, which run it in tmux."""
    db = tmp_path / "demo.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = qbconsole_process(["--db", str(db), "demo", "--headless", "--duration", "4", "--scenario", "steady"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             preexec_fn=lambda: os.umask(0))
    try:
        demo_dir = tmp_path / "demo.db.demo"
        assert wait_for(lambda: (demo_dir / "load.log").exists() and Path(f"{db}-wal").exists(), 30)
        live = {p.name: mode(p) for p in [db, Path(f"{db}-wal"), Path(f"{db}-shm")] if p.exists()}
        out, _ = proc.communicate(timeout=60)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert live and all(m == 0o600 for m in live.values()), {k: oct(v) for k, v in live.items()}
    logs = [p for p in demo_dir.iterdir() if p.suffix in (".log", ".out")]
    assert {p.name for p in logs} >= {"platform.log", "load.log", "load.out"}
    assert {p.name: oct(mode(p)) for p in logs} == {p.name: "0o600" for p in logs}
    assert mode(db) == 0o600


# ---- binds and tokens -----------------------------------------------------------------------------------
def test_loopback_is_the_default_bind_of_every_server(tmp_path):
    import inspect

    from qbconsole.cli import build_parser
    from qbconsole.config import Settings, parse_config
    from qbconsole.demo.spawn import start_platform
    from qbconsole.exporter import MetricsServer, StoreCollector
    from qbconsole.ingest import IngestServer
    from qbconsole.serve import ConsoleServer, ServeError, check_bind

    assert Settings().ingest_listen is None and Settings().metrics_listen is None  # off unless asked for
    assert parse_config("settings: {metrics_listen: 9465}", env={}).settings.metrics_listen == "127.0.0.1:9465"
    assert inspect.signature(ConsoleServer).parameters["host"].default == "127.0.0.1"
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    with pytest.raises(ServeError):
        check_bind("0.0.0.0", None)
    store = Store.open(tmp_path / "qb.db")
    try:
        ingest = IngestServer(store, token="t0ken")
        ingest.start()
        try:
            assert ingest._httpd.server_address[0] == "127.0.0.1"
        finally:
            ingest.stop()
        metrics = MetricsServer(StoreCollector(store)).start()
        try:
            assert metrics.url.startswith("http://127.0.0.1:")
        finally:
            metrics.stop()
        with pytest.raises(ValueError, match="needs a bearer token"):
            MetricsServer(StoreCollector(store), "0.0.0.0")
    finally:
        store.close()
    import psutil

    with start_platform(str(tmp_path / "quickbid.db"), ["--users", "20", "--auctions", "5", "--bids", "20"]) as platform:
        assert platform.url.startswith("http://127.0.0.1:")
        listening = [c.laddr for c in psutil.Process(platform.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening


def token_comparisons(tree: ast.Module) -> list[tuple[int, str]]:
    """``==``/``!=`` with an operand named like a token, unless the other side is a literal (a
    constant is no secret) or derives from the same name (``token != token.strip()``)."""

    def name_of(node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            return str(node.slice.value)
        if isinstance(node, ast.Call):
            return name_of(node.func)
        return ""

    def root(node: ast.expr) -> str:
        while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return node.id if isinstance(node, ast.Name) else ""

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                continue
            for a, b in ((left, right), (right, left)):
                if "token" in name_of(a).lower() and name_of(a) != "type" and not isinstance(b, ast.Constant) \
                        and root(a) != root(b):
                    found.append((node.lineno, ast.unparse(node)))
                    break
    return found


def test_tokens_are_compared_in_constant_time():
    probe = ast.parse("ok = given_token == self.token\nok = token != token.strip()\nok = kind == 'token'\n"
                      "ok = header['token'] == expected\nok = request_token is None")
    assert [line for line, _ in token_comparisons(probe)] == [1, 4]
    modules = package_modules()
    offenders = [f"{p.relative_to(ROOT)}:{line}: {text}" for p, tree in modules for line, text in token_comparisons(tree)]
    assert offenders == []
    checks = {p.relative_to(PACKAGE).as_posix() for p, tree in modules for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and node.attr == "compare_digest"}
    assert {"ingest/server.py", "exporter.py", "serve.py", "demo/admin.py"} <= checks

