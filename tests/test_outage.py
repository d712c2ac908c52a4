"""Notification sinks down for a stretch: the backlog shows in the console, and when the sinks
come back every notification is delivered exactly once.

Three sinks on 127.0.0.1, each down in its own way: a webhook receiver that is not
listening (connection refused), a Slack-style receiver answering 503, and an
aiosmtpd SMTP server that is not running. A delivery thread does what the
agent's notify ticker does (``plan()`` then ``deliver()``) on the wall clock,
with the outbox's backoff shortened to tenths of a second. Meanwhile
``QBConsoleApp`` runs on the same store under the pilot, and its status line
must show ``✉ N notifications pending`` with the true count, N growing when an
alert fires during the outage. Then the sinks come back; the status line loses
the backlog, and each sink has received each dedup key exactly once.
"""

from __future__ import annotations

import email
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from qbconsole.notify import Notifier, outbox
from qbconsole.notify.messages import am_fingerprint
from qbconsole.store import Store
from qbconsole.store import alerts as A
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.widgets.chrome import StatusLine

from helpers import free_port, serve_http, start_smtp, stop_http, until

FAST_BACKOFF = dict(base_s=0.1, factor=2.0, cap_s=0.4)


class HttpSink:
    """Records POSTs as (Idempotency-Key, status answered); answers 503 while ``failing``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.failing = False
        self.lock = threading.Lock()
        self.answered: list[tuple[str, int]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> "HttpSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    status = 503 if sink.failing else 200
                    sink.answered.append((self.headers.get("Idempotency-Key", ""), status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = serve_http(Handler, self.port)
        self.port = self.server.server_address[1]
        return self

    def stop(self) -> None:
        if self.server is not None:
            stop_http(self.server)
            self.server = None

    def delivered(self) -> Counter:
        with self.lock:
            return Counter(key for key, status in self.answered if status == 200)


class SmtpRecorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter:
        return Counter(email.message_from_bytes(m)["Message-ID"] for m in self.messages)


def fire(store: Store, name: str, severity: str = "warning") -> int:
    now = int(time.time() * 1000)
    labels = {"alertname": name, "severity": severity, "instance": "web-1"}
    return store.transaction(lambda c: A.insert_alert(
        c, name, am_fingerprint(labels), labels, {"summary": f"{name} on web-1"}, severity, "firing",
        1.0, now - 1000, now, now))


class Deliverer(threading.Thread):
    """What the agent's notify ticker does, every 50 ms on the wall clock."""

    def __init__(self, notifier: Notifier) -> None:
        super().__init__(daemon=True)
        self.notifier = notifier
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stop_event.wait(0.05):
            try:
                self.notifier.plan()
                self.notifier.deliver()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)


def status_text(app) -> str:
    return str(app.screen.query_one(StatusLine).render())


async def test_sinks_down_then_back_deliver_everything_once_and_the_console_shows_the_backlog(
        store, tmp_path, monkeypatch):
    real_backoff = outbox.backoff_ms
    monkeypatch.setattr(outbox, "backoff_ms", lambda attempts, rng=None, **kw: real_backoff(
        attempts, rng=rng, **FAST_BACKOFF))
    hook = HttpSink(free_port())                 # down: nothing listens on its port yet
    slack = HttpSink().start()                   # down: up, but answering 503
    slack.failing = True
    smtp_port = free_port()                      # down: no SMTP server yet
    smtp = SmtpRecorder()
    channels = [
        {"name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:{hook.port}/hook", "timeout": "1s"},
        {"name": "slack", "kind": "slack", "url": f"http://127.0.0.1:{slack.port}/services/T/B/x", "timeout": "1s"},
        {"name": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "starttls": False,
         "from": "qbconsole@quickbid.test", "to": ["oncall@quickbid.test"], "timeout": "1s"},
    ]
    routes = [{"name": "all", "match": [], "channels": ["hook", "slack", "mail"], "group_wait": "0s"}]
    notifier = Notifier(store, channels, routes, inhibit_cfg=[])
    for name in ("HighCPU", "HighMemory", "HighErrorRate"):
        fire(store, name)
    deliverer = Deliverer(notifier)
    controller = None
    app = QBConsoleApp(store, refresh=0.1, settings_path=tmp_path / "settings.json", operator="test")
    try:
        deliverer.start()
        async with app.run_test(size=(140, 30)) as pilot:
            await until(pilot, lambda: "✉ 9 notifications pending" in status_text(app))
            fire(store, "SlowDatabaseQueries", "critical")   # a new alert during the outage
            await until(pilot, lambda: "✉ 12 notifications pending" in status_text(app))
            await until(pilot, lambda: min(r.attempts for r in outbox.rows(store.read())) >= 2)
            assert notifier.backlog().pending == 12        # retried, none given up
            assert all(r.state == "pending" and r.last_error for r in outbox.rows(store.read()))
            assert hook.delivered() == Counter() and slack.delivered() == Counter() and smtp.messages == []

            hook.start()                                   # the sinks come back
            slack.failing = False
            controller = start_smtp(smtp, smtp_port)
            await until(pilot, lambda: notifier.backlog().pending == 0, timeout=15)
            await until(pilot, lambda: "pending" not in status_text(app))
            assert "✖ 1 critical ▲ 3 warning" in status_text(app)  # the alerts themselves are still shown
        time.sleep(0.5)                                    # a repeat would have had time to arrive
        deliverer.stop_event.set()
        deliverer.join(5)
        assert deliverer.errors == []

        rows = outbox.rows(store.read())
        assert len(rows) == 12 and all(r.state == "delivered" for r in rows)
        keys = {ch: {r.dedup_key for r in rows if r.channel == ch} for ch in ("hook", "slack", "mail")}
        assert hook.delivered() == Counter({k: 1 for k in keys["hook"]})
        assert slack.delivered() == Counter({k: 1 for k in keys["slack"]})
        assert smtp.message_ids() == Counter({f"<{k}@quickbid.test>": 1 for k in keys["mail"]})
        with slack.lock:
            assert sum(1 for _, status in slack.answered if status == 503) >= 4  # really retried while down
        assert max(r.attempts for r in rows) >= 2
    finally:
        deliverer.stop_event.set()
        deliverer.join(5)
        notifier.close()
        hook.stop()
        slack.stop()
        if controller is not None:
            controller.stop()
