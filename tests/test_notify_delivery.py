"""Delivery to real sinks on 127.0.0.1: an HTTP server (Slack, SMS, webhook, Alertmanager)
and an aiosmtpd SMTP server; retries, Retry-After, failures, restarts, secrets.

Every server binds a free port on 127.0.0.1 and is stopped by its fixture.
Planning and delivery take ``now`` from the test (ms), never the wall clock.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs

import pytest

from qbconsole.notify import Notifier, outbox
from qbconsole.notify.messages import am_fingerprint
from qbconsole.store import Store
from qbconsole.store import alerts as A

from helpers import serve_http, start_smtp, stop_http, wait_for

T0 = 1_800_000_000_000
S, M = 1000, 60_000
FIXTURES = Path("/work/shared/fixtures")
ROOT = Path(__file__).resolve().parents[1]


class Request(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class HttpSink:
    """Records every POST; answers from ``responses`` in order, then 200 "ok"."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responses: list[tuple[int, dict, str]] = []
        self.hold: threading.Event | None = None  # when set: the first request waits for it
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self, port: int = 0) -> "HttpSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    sink.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status, headers, text = sink.responses.pop(0) if sink.responses else (200, {}, "ok")
                    hold, sink.hold = sink.hold, None
                if hold is not None:
                    hold.wait(10)
                data = text.encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = serve_http(Handler, port)
        self.port = self.server.server_address[1]
        return self

    def stop(self) -> None:
        if self.server is not None:
            stop_http(self.server)
            self.server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def sink():
    s = HttpSink().start()
    yield s
    if s.hold is not None:
        s.hold.set()
    s.stop()


def all_route(*channels, **kw):
    return [{"name": "all", "match": [], "channels": list(channels), "group_wait": "0s", **kw}]


def fire(store, name="HighCPU", severity="warning", at=T0, value=93.5, **labels) -> int:
    labels = {"alertname": name, "severity": severity, "instance": "web-1", **labels}
    fp = am_fingerprint(labels)
    ann = {"summary": f"CPU high on {labels['instance']}", "runbook": "https://runbooks.quickbid/cpu"}
    return store.transaction(lambda c: A.insert_alert(c, name, fp, labels, ann, severity, "firing",
                                                      value, at - 60 * S, at, at))


def events(store, alert_id, kind=None):
    return [e for e in A.events(store.read(), alert_id) if kind is None or e.kind == kind]


# ---- HTTP channels ------------------------------------------------------------------------------
def test_slack_delivery_with_idempotency_key(store, sink):
    n = Notifier(store, [{"name": "slack", "kind": "slack", "url": sink.url("/services/T0/B0/xyz")}],
                 all_route("slack"), inhibit_cfg=[])
    a = fire(store)
    assert len(n.plan(T0)) == 1
    [outcome] = n.deliver(T0)
    assert outcome.state == "delivered"
    [req] = sink.requests
    body = req.json()
    assert body["text"] == "[FIRING:1] HighCPU (warning)"
    assert "CPU high on web-1" in json.dumps(body["blocks"])
    row = outbox.get(store.read(), outcome.outbox_id)
    assert req.headers["idempotency-key"] == row.dedup_key
    assert (row.state, row.attempts, row.delivered_at) == ("delivered", 1, T0)
    [ev] = events(store, a, "notified")
    assert ev.detail["channel"] == "slack" and ev.detail["attempt"] == 1
    assert outbox.notifications_for_alert(store.read(), a)[0].id == row.id
    n.close()


def test_webhook_payload_has_alertmanager_shape(store, sink):
    fixture = json.loads((FIXTURES / "alertmanager_webhook_payload.json").read_text())
    n = Notifier(store, [{"name": "hook", "kind": "webhook", "url": sink.url("/hook"),
                          "headers": {"Authorization": "Bearer t0ken-abc"}}],
                 all_route("hook"), inhibit_cfg=[], external_url="http://vm:19093", generator_url="http://127.0.0.1/qb")
    store.transaction(lambda c: A.insert_alert(
        c, "HighErrorRate", "x", fixture["alerts"][0]["labels"], fixture["alerts"][0]["annotations"],
        "critical", "firing", 7.0, T0, T0, T0))
    n.plan(T0)
    n.deliver(T0)
    [req] = sink.requests
    got = req.json()
    assert list(got) == list(fixture)                       # same keys, same order
    assert list(got["alerts"][0]) == list(fixture["alerts"][0])
    for key, value in fixture.items():
        assert type(got[key]) is type(value), key
    for key in ("receiver", "status", "commonLabels", "commonAnnotations", "externalURL", "version",
                "truncatedAlerts"):
        assert got[key] == fixture[key], key
    alert, expected = got["alerts"][0], fixture["alerts"][0]
    for key in ("status", "labels", "annotations", "endsAt", "generatorURL", "fingerprint"):
        assert alert[key] == expected[key], key
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", alert["startsAt"])
    assert got["groupLabels"] == {"alertname": "HighErrorRate"}
    assert got["groupKey"] == '{}/{}:{alertname="HighErrorRate"}'
    assert req.headers["authorization"] == "Bearer t0ken-abc"
    assert req.headers["x-qbconsole-notification-id"] == req.headers["idempotency-key"]
    n.close()


def test_alertmanager_post_matches_api_v2_alerts(store, sink):
    fixture = json.loads((FIXTURES / "alertmanager_api_v2_alerts.json").read_text())[0]
    n = Notifier(store, [{"name": "am", "kind": "alertmanager", "url": sink.url("/")}],
                 all_route("am"), inhibit_cfg=[], generator_url="http://127.0.0.1/qb")
    a = store.transaction(lambda c: A.insert_alert(c, "HighErrorRate", "x", fixture["labels"],
                                                   fixture["annotations"], "critical", "firing", 7.0, T0, T0, T0))
    n.plan(T0)
    n.deliver(T0)
    store.transaction(lambda c: A.update_alert(c, a, state="resolved", value=0.5, annotations=fixture["annotations"],
                                               fired_at=T0, resolved_at=T0 + 5 * M, keep_firing_since=None, t=T0 + 5 * M))
    n.plan(T0 + 5 * M)
    n.deliver(T0 + 5 * M)
    assert [r.path for r in sink.requests] == ["/api/v2/alerts", "/api/v2/alerts"]
    firing, resolved = (r.json() for r in sink.requests)
    postable = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    for body in (firing, resolved):
        [item] = body
        assert set(item) == postable and postable <= set(fixture)
        assert item["labels"] == fixture["labels"] and item["annotations"] == fixture["annotations"]
        assert item["generatorURL"] == fixture["generatorURL"]
        assert len(item["startsAt"]) == len(fixture["startsAt"])  # millisecond RFC 3339, as Alertmanager writes
    assert firing[0]["endsAt"] == "2027-01-15T08:04:00.000Z"     # T0 + 4 resend intervals (1m)
    assert resolved[0]["endsAt"] == "2027-01-15T08:05:00.000Z"   # the resolution time


def test_sms_form_post_per_recipient_with_basic_auth(store, sink):
    n = Notifier(store, [{"name": "sms", "kind": "sms", "url": sink.url("/2010-04-01/Accounts/AC1/Messages.json"),
                          "account_sid": "AC1", "auth_token": "s3cret-token", "from": "+15550001",
                          "to": ["+15550002", "+15550003"]}],
                 [{"name": "crit", "match": ['severity="critical"'], "channels": ["sms"], "group_wait": "0s"}],
                 inhibit_cfg=[])
    fire(store, "HighMemory", "critical")
    fire(store, "HighCPU", "warning")                      # not critical: no SMS
    n.plan(T0)
    assert [o.state for o in n.deliver(T0)] == ["delivered"]
    assert len(sink.requests) == 2
    for req, to in zip(sink.requests, ["+15550002", "+15550003"]):
        form = parse_qs(req.body.decode())
        assert form["To"] == [to] and form["From"] == ["+15550001"]
        assert form["Body"][0].startswith("[FIRING:1] HighMemory (critical)") and len(form["Body"][0]) <= 320
        assert req.headers["authorization"] == "Basic " + base64.b64encode(b"AC1:s3cret-token").decode()
    assert sink.requests[0].headers["idempotency-key"] != sink.requests[1].headers["idempotency-key"]


def test_sms_retry_skips_recipients_already_sent(store, sink):
    n = Notifier(store, [{"name": "sms", "kind": "sms", "url": sink.url("/sms"), "account_sid": "AC1",
                          "auth_token": "tok-12345", "from": "+1555", "to": ["+1666", "+1777"]}],
                 all_route("sms"), inhibit_cfg=[])
    fire(store, severity="critical")
    n.plan(T0)
    sink.responses = [(201, {}, "{}"), (503, {"Retry-After": "30"}, "busy")]
    [o] = n.deliver(T0)
    assert (o.state, o.next_attempt) == ("pending", T0 + 30 * S)
    assert "delivered to 1 of 2 recipients" in o.error
    [o] = n.deliver(T0 + 30 * S)
    assert o.state == "delivered"
    assert [parse_qs(r.body.decode())["To"][0] for r in sink.requests] == ["+1666", "+1777", "+1777"]


# ---- retries and failures ----------------------------------------------------------------------
def test_sink_down_then_back_delivers_exactly_once(store, sink):
    n = Notifier(store, [{"name": "hook", "kind": "webhook", "url": sink.url("/hook")}], all_route("hook"),
                 inhibit_cfg=[])
    a = fire(store)
    n.plan(T0)
    port = sink.port
    sink.stop()
    [o] = n.deliver(T0)
    assert o.state == "pending" and o.next_attempt == T0 + 2 * S and "ConnectError" in o.error
    assert n.deliver(T0 + S) == []                           # not due yet
    [o] = n.deliver(T0 + 2 * S)
    assert o.next_attempt == T0 + 2 * S + 4 * S              # exponential backoff
    assert n.backlog() == outbox.Backlog(1, T0, 0)
    sink.start(port)
    [o] = n.deliver(T0 + 6 * S)
    assert o.state == "delivered" and o.attempts == 3
    assert n.deliver(T0 + 3_600_000) == []
    assert len(sink.requests) == 1
    kinds = [e.kind for e in events(store, a)]
    assert kinds == ["notify_failed", "notify_failed", "notified"]
    assert n.backlog() == outbox.Backlog(0, None, 0)


def test_an_unreachable_sink_costs_one_attempt_per_call(store, sink):
    n = Notifier(store, [{"name": "hook", "kind": "webhook", "url": sink.url("/h")},
                         {"name": "slack", "kind": "slack", "url": sink.url("/s")}],
                 all_route("hook", "slack"), inhibit_cfg=[])
    fire(store)
    fire(store, "HighMemory")
    assert len(n.plan(T0)) == 4
    sink.responses = [(503, {}, "")]
    outcomes = n.deliver(T0)
    # hook's first row failed retryably, so its second waits; slack's two rows went through.
    assert sorted((o.channel, o.state) for o in outcomes) == \
        [("hook", "pending"), ("slack", "delivered"), ("slack", "delivered")]
    assert n.backlog().pending == 2
    assert sorted(o.state for o in n.deliver(T0 + 2 * S)) == ["delivered", "delivered"]


@pytest.mark.parametrize("header,expected_s", [("120", 120), ("http-date", 90)])
def test_retry_after_is_honoured(store, sink, header, expected_s):
    if header == "http-date":
        header = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=90), usegmt=True)
    n = Notifier(store, [{"name": "slack", "kind": "slack", "url": sink.url("/s")}], all_route("slack"),
                 inhibit_cfg=[])
    fire(store)
    n.plan(T0)
    sink.responses = [(429, {"Retry-After": header}, "rate_limited")]
    [o] = n.deliver(T0)
    assert o.state == "pending"
    assert abs(o.next_attempt - (T0 + expected_s * S)) <= 2 * S
    assert "HTTP 429" in o.error
    assert n.deliver(o.next_attempt - 3 * S) == []
    [o2] = n.deliver(o.next_attempt)
    assert o2.state == "delivered" and len(sink.requests) == 2


def test_400_is_not_retried_and_shows_failed(store, sink):
    n = Notifier(store, [{"name": "slack", "kind": "slack", "url": sink.url("/s")}], all_route("slack"),
                 inhibit_cfg=[])
    a = fire(store)
    n.plan(T0)
    sink.responses = [(400, {}, "invalid_payload")]
    [o] = n.deliver(T0)
    assert o.state == "failed" and "HTTP 400" in o.error and "invalid_payload" in o.error
    assert n.deliver(T0 + 3_600_000) == []
    assert len(sink.requests) == 1
    assert n.backlog() == outbox.Backlog(0, None, 1)
    [ev] = events(store, a, "notify_failed")
    assert ev.detail["state"] == "failed" and "HTTP 400" in ev.detail["error"]


def test_429_and_5xx_are_retried_with_capped_backoff(store, sink):
    n = Notifier(store, [{"name": "hook", "kind": "webhook", "url": sink.url("/h")}], all_route("hook"),
                 inhibit_cfg=[])
    fire(store)
    n.plan(T0)
    sink.responses = [(429, {}, "")] + [(500, {}, "oops")] * 9
    now, delays = T0, []
    for _ in range(10):
        [o] = n.deliver(now)
        delays.append((o.next_attempt - now) // S)
        now = o.next_attempt
    assert delays == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    [o] = n.deliver(now)
    assert o.state == "delivered" and o.attempts == 11


def test_gives_up_after_max_attempts_and_max_age(store, sink):
    n = Notifier(store, [{"name": "hook", "kind": "webhook", "url": sink.url("/h")}], all_route("hook"),
                 inhibit_cfg=[], max_attempts=2)
    fire(store)
    n.plan(T0)
    sink.responses = [(503, {}, "")] * 2
    assert n.deliver(T0)[0].state == "pending"
    [o] = n.deliver(T0 + 2 * S)
    assert o.state == "failed" and o.error.startswith("gave up after 2 attempts")
    fire(store, "Other")
    n.plan(T0 + 10 * M)
    sink.stop()
    n.deliver(T0 + 10 * M)
    [o] = n.deliver(T0 + 10 * M + 24 * 3_600_000)
    assert o.state == "failed" and "not delivered within 24h" in o.error


# ---- restarts ----------------------------------------------------------------------------------
def test_restart_replans_nothing_twice(tmp_path, sink):
    path = tmp_path / "qb.db"
    channels = [{"name": "hook", "kind": "webhook", "url": sink.url("/h")}]
    store = Store.open(path)
    fire(store)
    fire(store, instance="web-2")
    n = Notifier(store, channels, all_route("hook"), inhibit_cfg=[])
    assert len(n.plan(T0)) == 1
    store.close()
    store = Store.open(path)
    try:
        n = Notifier(store, channels, all_route("hook"), inhibit_cfg=[])
        assert n.plan(T0) == [] and n.plan(T0 + S) == []
        # Even with the timing state gone, the same notification has the same dedup key.
        store.transaction(lambda c: c.execute("DELETE FROM notification_groups"))
        assert n.plan(T0) == []
        assert len(outbox.rows(store.read())) == 1
        assert [o.state for o in n.deliver(T0)] == ["delivered"]
        assert len(sink.requests) == 1
    finally:
        store.close()


_CHILD = """
import json, sys
from qbconsole.store import Store
from qbconsole.notify import Notifier
store = Store.open(sys.argv[1])
notifier = Notifier(store, json.loads(sys.argv[2]), json.loads(sys.argv[3]), inhibit_cfg=[])
notifier.deliver(int(sys.argv[4]))
"""


def test_kill_9_mid_send_leaves_the_row_pending_and_it_is_sent_once_more(tmp_path, sink):
    path = tmp_path / "qb.db"
    channels = [{"name": "hook", "kind": "webhook", "url": sink.url("/h")}]
    routes = all_route("hook")
    store = Store.open(path)
    fire(store)
    Notifier(store, channels, routes, inhibit_cfg=[]).plan(T0)
    store.close()
    sink.hold = threading.Event()                            # the sink takes the request, then hangs
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), json.dumps(channels), json.dumps(routes),
                              str(T0)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sink.requests, 20, 0.02)
        assert len(sink.requests) == 1
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    store = Store.open(path)
    try:
        [row] = outbox.rows(store.read())
        assert (row.state, row.attempts) == ("pending", 0)
        n = Notifier(store, channels, routes, inhibit_cfg=[])
        [o] = n.deliver(T0 + S)
        assert o.state == "delivered"
        assert n.deliver(T0 + 3_600_000) == [] and n.plan(T0 + 2 * S) == []
        assert len(sink.requests) == 2
        first, second = sink.requests
        assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == row.dedup_key
        assert first.json()["groupKey"] == second.json()["groupKey"]
    finally:
        store.close()


# ---- disabled channels and secrets ---------------------------------------------------------------
def test_disabled_channel_is_reported_and_never_contacted(store, sink):
    from qbconsole.config import parse_config
    text = f"""
channels:
  - {{name: slack, kind: slack, url: "${{SLACK_WEBHOOK_URL:-}}"}}
  - {{name: sms, kind: sms, url: "{sink.url('/sms')}", account_sid: "${{TWILIO_ACCOUNT_SID:-AC1}}",
     auth_token: "${{TWILIO_AUTH_TOKEN:-}}", from: "+1555", to: ["${{SMS_TO:-}}"]}}
  - {{name: mail, kind: email, smtp_host: 127.0.0.1, from: q@quickbid.test, to: [admin@example.com]}}
  - {{name: hook, kind: webhook, url: "{sink.url('/hook')}"}}
routes:
  - {{name: all, match: [], channels: [slack, sms, mail, hook], group_wait: 0s}}
"""
    config = parse_config(text, env={})
    n = Notifier(store, config.channels, config.routes, inhibit_cfg=[])
    status = {s.name: s for s in n.channel_status()}
    assert status["slack"].reason == "SLACK_WEBHOOK_URL is not set" and not status["slack"].enabled
    assert status["sms"].reason == "TWILIO_AUTH_TOKEN, SMS_TO are not set"
    assert status["mail"].reason == "to: admin@example.com is a placeholder address"
    assert status["hook"].enabled
    assert n.channels[0].describe() == "slack: disabled, SLACK_WEBHOOK_URL is not set"
    fire(store, severity="critical")
    n.plan(T0)
    n.deliver(T0)
    assert [r.path for r in sink.requests] == ["/hook"]
    assert [r.channel for r in outbox.rows(store.read())] == ["hook"]


def test_no_secret_in_errors_events_or_logs(store, sink, caplog):
    secrets = ["T0KEN-in-path-123", "hdr-secret-456", "auth-secret-789"]
    sink.responses = [(500, {}, "echo /h/T0KEN-in-path-123 Bearer hdr-secret-456")]
    channels = [
        {"name": "hook", "kind": "webhook", "url": sink.url("/h/T0KEN-in-path-123"),
         "headers": {"Authorization": "Bearer hdr-secret-456"}},
        {"name": "slack", "kind": "slack", "url": "http://127.0.0.1:1/services/T0KEN-in-path-123"},
        {"name": "sms", "kind": "sms", "url": sink.url("/sms"), "account_sid": "AC1", "auth_token": "auth-secret-789",
         "from": "+1", "to": ["+2"]},
    ]
    n = Notifier(store, channels, all_route("hook", "slack", "sms"), inhibit_cfg=[])
    a = fire(store)
    caplog.set_level(logging.DEBUG)
    n.plan(T0)
    basic = base64.b64encode(b"AC1:auth-secret-789").decode()
    secrets.append(basic)
    sink.responses.append((401, {}, f"bad credentials auth-secret-789 (Basic {basic})"))
    outcomes = n.deliver(T0)
    assert sorted(o.state for o in outcomes) == ["failed", "pending", "pending"]
    texts = [r.last_error or "" for r in outbox.rows(store.read())]
    texts += [json.dumps(e.detail) for e in events(store, a)]
    texts.append(caplog.text)
    blob = "\n".join(texts)
    assert f"http://127.0.0.1:{sink.port}" in blob and "http://127.0.0.1:1" in blob
    for secret in secrets:
        assert secret not in blob


# ---- email --------------------------------------------------------------------------------------
class SmtpHandler:
    def __init__(self) -> None:
        self.messages = []
        self.rcpt_reply: str | None = None
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    handler = SmtpHandler()
    controller = start_smtp(handler)
    yield handler, controller.port
    controller.stop()


def _mail(port, **kw):
    return {"name": "email", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False,
            "from": "qbconsole@quickbid.test", "to": ["oncall@quickbid.test", "devops@quickbid.test"], **kw}


def test_email_over_plain_smtp(store, smtp):
    import email
    handler, port = smtp
    n = Notifier(store, [_mail(port)], all_route("email"), inhibit_cfg=[])
    fire(store, value=93.5)
    fire(store, instance="web-2", value=88.25)
    n.plan(T0)
    [o] = n.deliver(T0)
    assert o.state == "delivered"
    [env] = handler.messages
    assert env.rcpt_tos == ["oncall@quickbid.test", "devops@quickbid.test"]
    msg = email.message_from_bytes(env.content)
    assert msg["Subject"] == "[FIRING:2] HighCPU (warning)"
    assert msg["Message-ID"] == f"<{outbox.get(store.read(), o.outbox_id).dedup_key}@quickbid.test>"
    body = msg.get_payload(decode=True).decode()
    for text in ('instance="web-1"', 'instance="web-2"', "value: 93.5", "value: 88.25",
                 "summary: CPU high on web-1", "runbook: https://runbooks.quickbid/cpu",
                 "since: 2027-01-15T08:00:00.000Z (0s ago)"):
        assert text in body, text


@pytest.mark.parametrize("reply,state", [("550 5.1.1 no such user", "failed"),
                                         ("451 4.3.0 try again later", "pending")])
def test_email_refusals_5xx_fail_4xx_retry(store, smtp, reply, state):
    handler, port = smtp
    handler.rcpt_reply = reply
    n = Notifier(store, [_mail(port)], all_route("email"), inhibit_cfg=[])
    fire(store)
    n.plan(T0)
    [o] = n.deliver(T0)
    assert o.state == state and reply[:3] in o.error


def test_email_starttls_and_login(store, tmp_path):
    import ssl

    from aiosmtpd.smtp import AuthResult
    openssl = "/usr/bin/openssl"
    if not os.path.exists(openssl):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    handler = SmtpHandler()

    def authenticator(server, session, envelope, mechanism, auth_data):
        handler.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"smtp-pass-1", handled=False)

    controller = start_smtp(handler, tls_context=server_tls, require_starttls=True, authenticator=authenticator,
                            auth_require_tls=True)
    try:
        good = _mail(controller.port, starttls=True, username="qb", password="smtp-pass-1", ca_file=str(cert))
        n = Notifier(store, [good], all_route("email"), inhibit_cfg=[])
        fire(store)
        n.plan(T0)
        assert [o.state for o in n.deliver(T0)] == ["delivered"]
        assert handler.logins == [(b"qb", b"smtp-pass-1")] and len(handler.messages) == 1
        bad = dict(good, name="email2", password="wrong-pass-2")
        n2 = Notifier(store, [bad], [{"name": "r2", "channels": ["email2"], "group_wait": "0s"}], inhibit_cfg=[])
        n2.plan(T0)
        [o] = n2.deliver(T0)
        assert o.state == "failed" and "login refused" in o.error and "wrong-pass-2" not in o.error
        untrusted = dict(good, name="email3", ca_file="")
        n3 = Notifier(store, [untrusted], [{"name": "r3", "channels": ["email3"], "group_wait": "0s"}],
                      inhibit_cfg=[])
        n3.plan(T0)
        [o] = n3.deliver(T0)
        assert o.state == "failed" and "certificate" in o.error
    finally:
        controller.stop()
