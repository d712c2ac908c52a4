"""Executors against real processes, a real HTTP server on 127.0.0.1 and real SQLite files."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import textwrap
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from qbconsole.actions import ActionEngine, approve, get, list_proposals
from qbconsole.actions.executors import MAX_OUTPUT, execute, problems, resolved, summary
from qbconsole.actions.schema import parse_rule
from qbconsole.actions.params import ParamError, fill_argv
from qbconsole.actions.specs import build
from qbconsole.config import parse_config
from qbconsole.model import Sample
from qbconsole.store import Store

from helpers import serve_http, stop_http

T0 = 1_700_000_000_000
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"
NASTY = "a b \"double\" 'single'; rm -rf /tmp/nothing && $(touch PWNED) `id` | cat > x\nsecond line\t* ?"


def command(argv, **extra):
    return {"kind": "command", "argv": argv, "timeout_s": extra.pop("timeout_s", 10.0), "env": [],
            "executable_env": None, "cwd": None, **extra}


def test_a_hostile_label_value_stays_one_argv_element(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    try:
        config = parse_config(textwrap.dedent(f"""
            optimizations:
              - name: echo
                expr: hits > 0
                action:
                  kind: command
                  argv: [{sys.executable!r}, -c, {PRINT_ARGV!r}, "--who={{who}}", "{{who}}", "x{{who}}y"]
                  params: {{who: "{{{{ $labels.user }}}}"}}
                  cwd: {str(tmp_path)!r}
            """), "rules.yaml", env={})
        engine = ActionEngine(store, config, env={"PATH": os.environ["PATH"]}, interval_s=0)
        store.write([Sample("hits", {"user": NASTY}, T0, 1.0)])
        engine.tick(T0)
        (p,) = list_proposals(store.read())
        assert p.spec["argv"][3:] == [f"--who={NASTY}", NASTY, f"x{NASTY}y"]
        approve(store, p.id, "alice", T0 + 1)
        engine.tick(T0 + 2)
        done = get(store.read(), p.id)
        assert done.state == "succeeded", done.output
        assert json.loads(done.output) == [f"--who={NASTY}", NASTY, f"x{NASTY}y"]
        assert not (tmp_path / "PWNED").exists() and not (tmp_path / "x").exists()
    finally:
        store.close()


def test_a_value_that_would_start_an_option_is_refused():
    with pytest.raises(ParamError, match="could be taken for an option"):
        fill_argv(["prog", "{v}"], {"v": "--delete-everything"})
    with pytest.raises(ParamError, match="could be taken for an option"):
        fill_argv(["prog", "-n", "{n}"], {"n": -3.5})
    assert fill_argv(["prog", "--name={v}", "-n", "{n}"], {"v": "-x", "n": 3}) == ["prog", "--name=-x", "-n", "3"]


def test_no_shell_anywhere_in_the_actions_code():
    root = Path(__file__).resolve().parents[1] / "qbconsole"
    files = [*sorted((root / "actions").rglob("*.py")), root / "cli_actions.py"]
    assert len(files) > 8
    for path in files:
        text = path.read_text()
        assert not re.search(r"shell\s*=\s*True", text), path
        assert not re.search(r"os\.(system|popen|exec\w*|spawn\w*)\s*\(", text), path
        assert not re.search(r"\b(eval|exec)\s*\(", text), path
        assert "/bin/sh" not in text, path


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    started = time.monotonic()
    outcome = execute(command([sys.executable, "-c", code], timeout_s=1.0), {"PATH": os.environ["PATH"]})
    assert time.monotonic() - started < 10
    assert not outcome.ok and outcome.exit_status == -9
    assert "started" in outcome.output and "killed after the 1 s timeout" in outcome.output
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild survived the timeout")


def test_environment_is_an_allow_list_and_secrets_are_scrubbed():
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "DEPLOY_TOKEN": "tok-9f8e7d6c5b", "OTHER": "visible?"}
    code = "import os, json; print(json.dumps(sorted(os.environ))); print(os.environ.get('DEPLOY_TOKEN'))"
    outcome = execute(command([sys.executable, "-c", code], env=["DEPLOY_TOKEN"]), env)
    names = json.loads(outcome.output.splitlines()[0])
    assert outcome.ok and set(names) <= {"PATH", "DEPLOY_TOKEN", "LANG", "LC_ALL", "TZ", "LC_CTYPE"}
    assert "HOME" not in names and "OTHER" not in names
    assert "tok-9f8e7d6c5b" not in outcome.output and outcome.output.splitlines()[1] == "***"
    assert resolved(command(["prog"], env=["DEPLOY_TOKEN"]), env)["env"] == ["PATH", "DEPLOY_TOKEN"]


def test_output_is_bounded_and_failures_keep_their_status():
    outcome = execute(command([sys.executable, "-c", "import sys; print('A' * 200000); sys.exit(3)"]), os.environ)
    assert not outcome.ok and outcome.exit_status == 3
    assert len(outcome.output) <= MAX_OUTPUT + 100 and "left out" in outcome.output
    missing = execute(command(["/nonexistent/program"]), os.environ)
    assert not missing.ok and missing.exit_status is None and "cannot start" in missing.output


def test_executable_from_the_environment_must_be_set_absolute_and_executable(tmp_path):
    spec = command(["$ROLLBACK", "--now"], executable_env="ROLLBACK")
    assert "ROLLBACK is not set" in problems(spec, {})[0]
    assert "must be an absolute path" in problems(spec, {"ROLLBACK": "rollback"})[0]
    assert "not an executable file" in problems(spec, {"ROLLBACK": str(tmp_path)})[0]
    assert problems(spec, {"ROLLBACK": sys.executable}) == []
    assert resolved(spec, {"ROLLBACK": sys.executable})["argv"] == [sys.executable, "--now"]
    assert not execute(spec, {}).ok
    assert summary(spec) == "'$ROLLBACK' --now"


class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.seen.append((self.command, self.path, dict(self.headers), body))
        status = 500 if self.path.startswith("/fail") else 200
        reply = json.dumps({"echo": self.headers.get("Authorization"), "path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@pytest.fixture
def server():
    Recorder.seen = []
    httpd = serve_http(Recorder)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    stop_http(httpd)


def test_http_executor_sends_the_exact_request_with_headers_from_the_environment(server):
    rule = parse_rule({"name": "hook", "expr": "up == 0", "action": {
        "kind": "http", "method": "POST", "url": server + "/deploy/{service}?count={n}",
        "json": {"count": "{n}", "note": "restart {service}", "fixed": [1, True]},
        "headers": {"X-Source": "qbconsole"}, "headers_env": {"X-Api-Key": "API_KEY"},
        "bearer_token_env": "HOOK_TOKEN", "params": {"service": "{{ $labels.job }}", "n": 3}}})
    spec = build(rule, {"service": "web api/1", "n": 3}, {})
    assert spec["url"] == server + "/deploy/web%20api%2F1?count=3"
    assert spec["json"] == {"count": 3, "note": "restart web api/1", "fixed": [1, True]}
    env = {"HOOK_TOKEN": "hook-secret-123", "API_KEY": "key-secret-456"}
    shown = resolved(spec, env)
    assert shown["headers"] == {"X-Source": "qbconsole", "X-Api-Key": "$API_KEY",
                                "Authorization": "Bearer $HOOK_TOKEN"}
    outcome = execute(spec, env)
    assert outcome.ok and outcome.exit_status == 200
    method, path, headers, body = Recorder.seen[0]
    assert (method, path, json.loads(body)) == ("POST", "/deploy/web%20api%2F1?count=3", spec["json"])
    assert headers["Authorization"] == "Bearer hook-secret-123" and headers["X-Api-Key"] == "key-secret-456"
    assert "hook-secret-123" not in outcome.output and "Bearer ***" in outcome.output
    assert problems(spec, {"API_KEY": "x"}) == ["HOOK_TOKEN is not set (it holds the Authorization header)"]
    assert not execute(spec, {}).ok and len(Recorder.seen) == 1  # refused: nothing sent
    failing = execute({**spec, "url": server + "/fail"}, env)
    assert not failing.ok and failing.exit_status == 500 and failing.output.startswith("HTTP 500")


def test_http_executor_reports_a_connection_failure():
    spec = {"kind": "http", "method": "POST", "url": "http://127.0.0.1:9/x", "json": None, "headers": {},
            "headers_env": {}, "bearer_token_env": None, "timeout_s": 2}
    outcome = execute(spec, {})
    assert not outcome.ok and outcome.exit_status is None and "ConnectError" in outcome.output


def test_sql_executor_binds_arguments_on_an_existing_sqlite_file(tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO settings VALUES ('cache', '10')")
    rule = parse_rule({"name": "grow", "expr": "x > 1", "action": {
        "kind": "sql", "dsn": f"sqlite:///{db}", "statement": "UPDATE settings SET value = ? WHERE key = ?",
        "args": ["{size}", "cache"], "params": {"size": "{{ $labels.size }}"}}})
    spec = build(rule, {"size": "40'); DROP TABLE settings; --"}, {})
    assert spec["args"] == ["40'); DROP TABLE settings; --", "cache"]
    outcome = execute(spec, {})
    assert outcome.ok and outcome.output == "ok (1 row(s) changed)"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM settings").fetchall() == [("40'); DROP TABLE settings; --",)]
    two = execute({**spec, "statement": "UPDATE settings SET value = 1; DROP TABLE settings", "args": []}, {})
    assert not two.ok
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM settings").fetchone() == (1,)
    missing = {**spec, "dsn": f"sqlite:///{tmp_path / 'nope.db'}"}
    assert "does not exist" in problems(missing, {})[0] and not execute(missing, {}).ok
    assert not (tmp_path / "nope.db").exists()
    slow = {**spec, "statement": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                 "SELECT count(*) FROM c", "args": [], "timeout_s": 0.3}
    started = time.monotonic()
    interrupted = execute(slow, {})
    assert not interrupted.ok and "interrupted at the timeout" in interrupted.output
    assert time.monotonic() - started < 5
    assert "postgresql" in problems({**spec, "dsn": "postgresql://db/x"}, {})[0]
