"""The security pass, secrets: none reaches logs, the store (outbox, alert events, audit, proposals,
source errors), ``qbconsole alerts list --json`` or the console's screens, even through failing
deliveries that echo them back and a bad rules file; tracebacks never show local variables (the
CLI and the console)."""

from __future__ import annotations

import ast
import json
import os
import re
import sqlite3
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx

from qbconsole.store import Store

from helpers import ROOT, package_modules, qbconsole_process, serve_http, start_smtp, stop_http, wait_for


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

        self.server = serve_http(Handler)
        self.port = self.server.server_address[1]

    def stop(self) -> None:
        stop_http(self.server)


class EchoingSmtp:
    """An SMTP server that refuses the login, quoting the password back in its reply."""

    def __init__(self) -> None:
        from aiosmtpd.smtp import AuthResult

        def authenticator(server, session, envelope, mechanism, auth_data):
            password = auth_data.password.decode(errors="replace")
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad password {password}")

        self.controller = start_smtp(object(), authenticator=authenticator, auth_require_tls=False)
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

    agent = qbconsole_process([*base, "-v", "agent", "--heartbeat", "0.5"], log=log,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
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
