"""The security pass, one test per point.

- no shell anywhere (AST scan of the package);
- template values cannot add or split argv elements;
- stale and expired proposals are refused;
- the audit log's triggers hold (UPDATE, DELETE, INSERT OR REPLACE, upsert);
- the store, its -wal/-shm and the log files the CLI creates are 0600;
- loopback is the default bind of every server; tokens are compared in constant time;
- no secret reaches logs, the store (outbox, alert events, audit, proposals, source
  errors), ``qbconsole alerts list --json`` or the console's screens, even through
  failing deliveries that echo them back and a bad rules file;
- tracebacks never show local variables (the CLI and the console).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from qbconsole.model import Sample
from qbconsole.store import Store

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qbconsole"
T0 = 1_700_000_000_000
MIN = 60_000
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


@functools.lru_cache(maxsize=1)
def package_modules() -> list[tuple[Path, ast.Module]]:
    """Every module of the package, parsed (once per test session)."""
    return [(p, ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in sorted(PACKAGE.rglob("*.py"))]


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- no shell anywhere -------------------------------------------------------------------------
SHELL_FUNCTIONS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                   "asyncio.create_subprocess_shell", "pty.spawn", "commands.getoutput"}
SHELL_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn")
SPAWNERS = {"subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
            "subprocess.check_output", "asyncio.create_subprocess_exec"}
UNSAFE_LOADERS = {"pickle.load", "pickle.loads", "marshal.loads", "yaml.unsafe_load", "yaml.full_load",
                  "shelve.open"}


class ShellFinder(ast.NodeVisitor):
    """Calls that could reach a shell or run text as code, with ``import x as y`` resolved."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.found: list[tuple[int, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def qualified(self, func: ast.expr) -> str:
        if isinstance(func, ast.Name):
            return self.names.get(func.id, func.id)
        if isinstance(func, ast.Attribute):
            return f"{self.qualified(func.value)}.{func.attr}"
        return "?"

    @staticmethod
    def stringy(node: ast.expr | None) -> bool:
        """A command given as one string: a literal, an f-string, concatenation, .format or a join."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (str, bytes))
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            return ShellFinder.stringy(node.left) or ShellFinder.stringy(node.right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr in ("format", "join") and not (
                isinstance(node.func.value, ast.Name) and node.func.value.id == "os")
        return False

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                self.found.append((node.lineno, f"{name}(shell=...)"))
        if name in SHELL_FUNCTIONS or name.startswith(SHELL_PREFIXES):
            self.found.append((node.lineno, name))
        if name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__"):
            self.found.append((node.lineno, name))
        if name in UNSAFE_LOADERS:
            self.found.append((node.lineno, name))
        if name == "yaml.load" and not any(kw.arg == "Loader" and "Safe" in ast.unparse(kw.value)
                                           for kw in node.keywords):
            self.found.append((node.lineno, "yaml.load without a safe Loader"))
        if name in SPAWNERS:
            command = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "args"), None)
            if self.stringy(command):
                self.found.append((node.lineno, f"{name} with a command string"))
        self.generic_visit(node)


def shell_uses(tree: ast.Module) -> list[tuple[int, str]]:
    finder = ShellFinder()
    finder.visit(tree)
    return finder.found


def test_the_shell_scan_finds_what_it_looks_for():
    bad = textwrap.dedent("""
        import os, subprocess as sp, yaml, pickle
        from subprocess import check_output
        from asyncio import create_subprocess_shell
        os.system("ls")
        os.popen("ls")
        sp.run("ls -l", shell=True)
        sp.Popen(f"ls {x}")
        check_output("ls " + x)
        sp.call(["ls"], shell=flag)
        create_subprocess_shell("ls")
        eval("1 + 1")
        exec(code)
        os.execvp("ls", ["ls"])
        yaml.load(text)
        pickle.loads(blob)
        sp.run("ls {}".format(x))
    """)
    found = shell_uses(ast.parse(bad))
    assert {line for line, _ in found} == set(range(5, 18)), found  # every bad line, none missed
    good = "import subprocess, yaml\nsubprocess.run(['ls', '-l'], shell=False)\nyaml.load(t, Loader=yaml.SafeLoader)\n"
    assert shell_uses(ast.parse(good)) == []


def test_no_shell_anywhere():
    modules = package_modules()
    assert len(modules) > 100
    offenders = [f"{path.relative_to(ROOT)}:{line}: {what}" for path, tree in modules for line, what in shell_uses(tree)]
    assert offenders == []
    spawns = sum(1 for _, tree in modules for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr in ("Popen", "run", "create_subprocess_exec"))
    assert spawns >= 3  # the scan did see the places that start processes
    # textual-serve starts each viewer through a shell; qbconsole's viewer replaces that with an argv exec
    from textual_serve.app_service import AppService

    from qbconsole.serve import ViewerService

    assert ViewerService._open_app_process is not AppService._open_app_process
    assert "create_subprocess_exec" in ast.unparse(ast.parse(textwrap.dedent(
        __import__("inspect").getsource(ViewerService._open_app_process))))


# ---- argv --------------------------------------------------------------------------------------
HOSTILE = [
    "a b", "  spaced  ", "\"double\"", "'single'", "semi; rm -rf /tmp/x", "$(touch PWNED)", "`touch PWNED`",
    "${HOME}", "$HOME", "line\nbreak", "tab\there", "back\\slash", "a && b || c", "x | tee y", "> out", "< in",
    "*", "~", "{n}", "{{n}}", "%s", "é😀", "", "'; echo \"", "a\r\nb",
]


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:24] for v in HOSTILE])
def test_template_values_cannot_add_or_split_argv_elements(tmp_path, value):
    from qbconsole.actions.executors import execute
    from qbconsole.actions.params import fill_argv

    argv = fill_argv([sys.executable, "-c", PRINT_ARGV, "{v}", "--name={v}", "x{v}y", "{n}"], {"v": value, "n": 7})
    assert argv[3:] == [value, f"--name={value}", f"x{value}y", "7"]  # one element each, never re-expanded
    spec = {"kind": "command", "argv": argv, "timeout_s": 10.0, "env": [], "executable_env": None,
            "cwd": str(tmp_path)}
    outcome = execute(spec, {"PATH": os.environ["PATH"]})
    assert outcome.ok, outcome.output
    assert json.loads(outcome.output) == argv[3:]
    assert list(tmp_path.iterdir()) == []  # nothing was created: no shell ran


@pytest.mark.parametrize("value", ["-rf", "--delete-everything", "-", "-1", "\x00", "a\x00b"])
def test_values_that_could_become_options_or_truncate_are_refused(value):
    from qbconsole.actions.params import ParamError, fill_argv

    with pytest.raises(ParamError):
        fill_argv(["prog", "{v}"], {"v": value})


def test_hostile_label_values_stay_one_element_through_the_engine(tmp_path):
    """Label values rendered by a template parameter, proposed, approved and run."""
    from qbconsole.actions import ActionEngine, approve, get, list_proposals
    from qbconsole.config import parse_config

    config = parse_config(textwrap.dedent(f"""
        optimizations:
          - name: echo
            expr: hits > 0
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {PRINT_ARGV!r}, "{{who}}", "--who={{who}}"]
              params: {{who: "{{{{ $labels.user }}}}"}}
              cwd: {str(tmp_path)!r}
        """), "rules.yaml", env={})
    store = Store.open(tmp_path / "qb.db")
    work = tmp_path / "work"
    try:
        values = [v for v in HOSTILE if v and not v.startswith("-") and v.strip() == v][:12]
        store.write([Sample("hits", {"user": v}, T0, 1.0) for v in values])
        engine = ActionEngine(store, config, env={"PATH": os.environ["PATH"]}, interval_s=0)
        engine.tick(T0)
        proposals = list_proposals(store.read())
        assert len(proposals) == len(values)
        for p in proposals:
            approve(store, p.id, "alice", T0 + 1)
        engine.tick(T0 + 2)
        for p in proposals:
            done = get(store.read(), p.id)
            assert done.state == "succeeded", (done.reason, done.output)
            who = json.loads(done.output)[0]
            assert json.loads(done.output) == [who, f"--who={who}"] and who in values
        assert sorted(json.loads(get(store.read(), p.id).output)[0] for p in proposals) == sorted(values)
        assert not work.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["qb.db", "qb.db-shm", "qb.db-wal"]
    finally:
        store.close()


# ---- stale and expired proposals ----------------------------------------------------------------------
def test_stale_and_expired_proposals_are_refused(tmp_path):
    from qbconsole.actions import ActionEngine, approve, audit_entries, get, list_proposals
    from qbconsole.config import parse_config

    ran = tmp_path / "ran"
    recorder = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write(sys.argv[2] + '\\n')"
    text = textwrap.dedent(f"""
        optimizations:
          - name: drain
            expr: queue_depth > 10
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {recorder!r}, {str(ran)!r}, "{{who}}"]
              params: {{who: "{{{{ $labels.instance }}}}"}}
            expiry: 2m
            cooldown: 1m
        """)
    store = Store.open(tmp_path / "qb.db")
    try:
        clock = [T0 / 1000]
        engine = ActionEngine(store, parse_config(text, "rules.yaml", env={}), env=dict(os.environ),
                              interval_s=0, clock=lambda: clock[0])
        store.write([Sample("queue_depth", {"instance": i}, T0, 50.0) for i in ("late", "stale", "lapsed")])
        engine.tick(T0)
        by = {p.target: p for p in list_proposals(store.read())}
        assert sorted(by) == ["instance=lapsed", "instance=late", "instance=stale"]
        # expired before anyone decided: approving it is refused, and it lapses
        with pytest.raises(ValueError, match="expired"):
            approve(store, by["instance=lapsed"].id, "alice", T0 + 3 * MIN)
        # approved in time, but the condition stopped holding before it ran: refused as stale
        approve(store, by["instance=stale"].id, "alice", T0 + 1000)
        store.write([Sample("queue_depth", {"instance": "stale"}, T0 + 2000, 3.0),
                     Sample("queue_depth", {"instance": "late"}, T0 + 2000, 50.0)])
        engine.tick(T0 + 2000)
        stale = get(store.read(), by["instance=stale"].id)
        assert stale.state == "refused" and "condition no longer holds" in stale.reason
        # approved in time, but its run came only after the expiry: refused
        approve(store, by["instance=late"].id, "bob", T0 + 100_000)
        store.write([Sample("queue_depth", {"instance": "late"}, T0 + 3 * MIN, 50.0)])
        clock[0] = (T0 + 3 * MIN) / 1000
        engine.tick(T0 + 3 * MIN)
        late = get(store.read(), by["instance=late"].id)
        assert late.state == "refused" and "expired" in late.reason
        assert get(store.read(), by["instance=lapsed"].id).state == "expired"
        assert not ran.exists(), "a stale or expired proposal ran"
        trail = {p: [e.action for e in audit_entries(store.read(), target=f"proposal:{by[p].id}")] for p in by}
        assert trail["instance=stale"][-1] == "refused" and trail["instance=late"][-1] == "refused"
    finally:
        store.close()


# ---- audit log -------------------------------------------------------------------------------------
def test_the_audit_triggers_hold(tmp_path):
    from qbconsole.actions import audit_entries
    from qbconsole.actions import audit as audit_rows

    store = Store.open(tmp_path / "qb.db")
    try:
        store.transaction(lambda c: audit_rows.record(c, T0, "alice", "approved", "proposal:1", {"note": "go"}))
        store.transaction(lambda c: audit_rows.record(c, T0 + 1, "engine", "succeeded", "proposal:1", {}))
        before = audit_entries(store.read())
        first = before[0].id
        attempts = [
            "UPDATE audit_log SET actor = 'mallory'",
            "UPDATE audit_log SET detail = '{}' WHERE id = %d" % first,
            "UPDATE OR REPLACE audit_log SET action = 'rejected'",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE id = %d" % first,
            "INSERT OR REPLACE INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'mallory', 'x', 'y')" % first,
            "REPLACE INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'mallory', 'x', 'y')" % first,
            "INSERT INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'm', 'x', 'y') "
            "ON CONFLICT(id) DO UPDATE SET actor = 'mallory'" % first,
            "INSERT OR IGNORE INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'm', 'x', 'y')" % first,
        ]
        conn = sqlite3.connect(store.path)
        try:
            for sql in attempts:
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    conn.execute(sql)
                conn.rollback()
        finally:
            conn.close()
        assert audit_entries(store.read()) == before
        store.rollup(T0 + 10 ** 12)
        store.purge(T0 + 10 ** 12)  # housekeeping never touches it either
        assert audit_entries(store.read()) == before
    finally:
        store.close()


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
    proc = subprocess.Popen([sys.executable, "-m", "qbconsole", "--db", str(db), "demo", "--headless",
                             "--duration", "4", "--scenario", "steady"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0))
    try:
        demo_dir = tmp_path / "demo.db.demo"
        assert wait_for(lambda: (demo_dir / "load.log").exists() and Path(f"{db}-wal").exists(), 30)
        live = {p.name: mode(p) for p in [db, Path(f"{db}-wal"), Path(f"{db}-shm")] if p.exists()}
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
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


# ---- secrets ------------------------------------------------------------------------------------------
MARK = "5ecret"  # every secret below contains it: one grep finds any of them
SECRETS = {
    "SMTP_PASSWORD": f"smtp-pw-{MARK}-q1",
    "QBCONSOLE_INGEST_TOKEN": f"ingest-{MARK}-q3",
    "QUICKBID_ADMIN_TOKEN": f"admin-{MARK}-q4",
}


class EchoSink:
    """An HTTP server that fails every request and echoes it back: path, headers and body."""

    def __init__(self) -> None:
        sink = self
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _echo(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("latin-1")
                text = f"{self.command} {self.path}\n{self.headers}\n{body}"
                sink.requests.append(text)
                status = 401 if self.path.startswith("/admin") else 500
                data = f"refused: {text}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _echo

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EchoingSmtp:
    """An SMTP server that refuses the login, quoting the password back in its reply."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        def authenticator(server, session, envelope, mechanism, auth_data):
            password = auth_data.password.decode(errors="replace")
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad password {password}")

        self.controller = Controller(object(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                                     auth_require_tls=False)
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        self.controller.stop()


RULES = """
settings: {{evaluation_interval: 500ms, ingest_listen: "127.0.0.1:0"}}
sources:
  - {{name: scrape, kind: prometheus, url: "http://127.0.0.1:{sink}/metrics", interval: 500ms,
     headers: {{Authorization: "Bearer ${{QUICKBID_ADMIN_TOKEN}}"}}}}
alert_rules:
  - {{alert: AlwaysFiring, expr: "vector(1) > 0", for: 0s, severity: critical,
     annotations: {{summary: "firing for the test"}}}}
channels:
  - {{name: slack, kind: slack, url: "${{SLACK_WEBHOOK_URL}}"}}
  - {{name: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: {smtp}, starttls: false, username: qb,
     password: "${{SMTP_PASSWORD}}", from: qb@quickbid.test, to: [oncall@quickbid.test]}}
routes:
  - {{name: all, match: [], channels: [slack, mail], group_wait: 0s}}
optimizations:
  - name: scale_up
    description: "add workers"
    alert: AlwaysFiring
    target: quickbid
    action: {{kind: scale, workers: "3"}}
    bounds: {{workers: {{min: 1, max: 20}}}}
    expiry: 10m
"""


def every_text_in(db: Path) -> str:
    """Every value of every table of the store, as text."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(str(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))
    finally:
        conn.close()


def test_no_secret_in_logs_store_notifications_cli_or_console(tmp_path, monkeypatch, capsys):
    from qbconsole.cli import main

    sink, smtp = EchoSink(), EchoingSmtp()
    env = {**SECRETS, "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{sink.port}/services/T000/B000/slack-{MARK}-q2",
           "QUICKBID_URL": f"http://127.0.0.1:{sink.port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # for the agent below and for the CLI commands run in-process
    rules = tmp_path / "rules.yaml"
    text = RULES.format(sink=sink.port, smtp=smtp.port)
    rules.write_text(text)
    db = tmp_path / "qb.db"
    log = tmp_path / "agent.log"
    base = ["--db", str(db), "--rules", str(rules)]
    outputs: dict[str, str] = {}

    def cli(*args: str) -> str:
        main([*base, *args])
        out, err = capsys.readouterr()
        outputs[" ".join(args)] = out + err
        return out

    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "qbconsole", *base, "-v", "agent", "--heartbeat", "0.5"],
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, stdout=fh,
                                 stderr=subprocess.STDOUT)
    try:
        assert wait_for(db.exists, 20)
        store = Store.open(db)
        try:
            def settled():
                conn = store.read()
                tried = {r[0] for r in conn.execute("SELECT channel FROM notification_outbox WHERE attempts > 0")}
                proposal = conn.execute("SELECT id FROM proposals").fetchone()
                return tried >= {"slack", "mail"} and proposal and proposal[0]
            proposal = wait_for(settled, 30, 0.1)
            assert proposal, log.read_text()
            # approved, the agent runs it against an admin API that answers 401 quoting the token back
            assert "now failed (exit status 401)" in cli("actions", "approve", str(proposal), "--operator", "alice")
            url = store.read().execute("SELECT value FROM meta WHERE key = 'ingest_url'").fetchone()[0]
            for token in ("wrong-token", SECRETS["QBCONSOLE_INGEST_TOKEN"]):
                httpx.post(f"{url}/v1/events", content=json.dumps({"type": "metric", "name": "x", "value": "bad"}),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            # a bad rules file whose error sits on a substituted secret: the agent keeps the last good one
            rules.write_text(text.replace(f"smtp_port: {smtp.port}", 'smtp_port: "${SMTP_PASSWORD}"'))
            assert wait_for(lambda: "rules file not reloaded" in log.read_text(), 15), log.read_text()
            assert "AlwaysFiring" in cli("alerts", "list", "--json")
            cli("actions", "list", "--all", "--json")
            cli("actions", "show", str(proposal), "--json")
            cli("audit", "--json")
            assert "smtp_port" in cli("rules", "check", str(rules))
            screens = console_screens(store)
        finally:
            store.close()
    finally:
        agent.terminate()
        agent.wait(15)
        sink.stop()
        smtp.stop()
    agent_log = log.read_text()
    stored = every_text_in(db)
    # the failures really happened, with the secrets sent and echoed back ...
    assert any(MARK in r for r in sink.requests)
    assert "535" in agent_log and "HTTP 500" in agent_log and "Traceback" not in agent_log
    assert "notify_failed" in stored and "401" in stored and "HTTP 500" in stored
    assert any("535" in shot for shot in screens) and any("HTTP 500" in shot for shot in screens)
    # ... and no secret is anywhere to be read
    texts = {"agent log": agent_log, "store": stored, **{f"console {i}": s for i, s in enumerate(screens)},
             **{f"qbconsole {k}": v for k, v in outputs.items()}}
    leaks = {where: t[max(0, t.find(MARK) - 80):t.find(MARK) + 40] for where, t in texts.items() if MARK in t}
    assert leaks == {}


def svg_text(svg: str) -> str:
    """The characters on screen in an exported screenshot."""
    import html

    return html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S))).replace("\xa0", " ")


def console_screens(store: Store) -> list[str]:
    """The console's Overview, Alerts, an alert's detail (with its delivery errors), Actions and
    Sources: the text of exported screenshots."""
    import asyncio

    from qbconsole.tui.app import QBConsoleApp

    async def run() -> list[str]:
        app = QBConsoleApp(store, refresh=0.2, settings_path=store.path.with_name("settings.json"), operator="t")
        shots = []
        async with app.run_test(size=(160, 50)) as pilot:
            for key in ("1", "2", "enter", "escape", "3", "6"):
                await pilot.press(key)
                await pilot.pause(0.4)
                shots.append(svg_text(app.export_screenshot()))
        return shots

    return asyncio.run(run())


# ---- tracebacks -------------------------------------------------------------------------------------------
CRASH = """
import os, sys
from pathlib import Path
from qbconsole.store import Store
from qbconsole.tui.app import QBConsoleApp

store = Store.open(sys.argv[1])
app = QBConsoleApp(store, refresh=60, settings_path=Path(sys.argv[2]))

def boom():
    held_secret = os.environ["CRASH_SECRET"]
    raise RuntimeError("the console broke")

app.action_cycle_theme = boom

async def pilot(p):
    await p.pause(0.3)
    await p.press("t")
    await p.pause(0.5)

app.run(headless=True, size=(100, 30), auto_pilot=pilot)
"""


def test_the_cli_prints_no_locals_in_a_traceback(tmp_path):
    script = ("import os, sys, qbconsole.cli as cli\n"
              "def broken(args):\n    held_secret = os.environ['CRASH_SECRET']\n    raise RuntimeError('broke')\n"
              "args = cli.build_parser().parse_args(['rules', 'check', 'x.yaml'])\nargs.func = broken\n"
              "cli.build_parser = lambda: type('P', (), {'parse_args': lambda self, a=None: args})()\n"
              "sys.exit(cli.main())\n")  # a bug in a command: the exception escapes main()
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "CRASH_SECRET": f"cli-{MARK}"},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "RuntimeError: broke" in done.stderr
    assert MARK not in done.stdout + done.stderr
    installs = [f"{p.relative_to(ROOT)}:{node.lineno}" for p, tree in package_modules() for node in ast.walk(tree)
                if isinstance(node, ast.keyword) and node.arg == "show_locals"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)]
    installs += [f"{p.relative_to(ROOT)}" for p, tree in package_modules()
                 if "traceback.install" in ast.unparse(tree) or "sys.excepthook" in ast.unparse(tree)]
    assert installs == []


def test_the_console_prints_no_locals_in_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path / "qb.db"), str(tmp_path / "settings.json")],
                          env={**os.environ, "CRASH_SECRET": f"tui-{MARK}"}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert "the console broke" in done.stderr  # the crash was reported
    assert MARK not in done.stdout + done.stderr
