"""Alertmanager mirroring and ack -> silence, against the captured API v2 shapes (httpx MockTransport)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import pytest

from qbconsole.alertmanager import AlertmanagerClient, AlertmanagerSync, sync_target
from qbconsole.alertmanager.api import parse_alerts, parse_silences, parse_time, silence_body
from qbconsole.config import parse_config
from qbconsole.notify import Notifier
from qbconsole.notify.messages import alertmanager_body, am_fingerprint, rfc3339
from qbconsole.store import Store
from qbconsole.store.alerts import acknowledge, current_alerts, events, get_alert, insert_alert

FIXTURES = Path("/work/shared/fixtures")
ALERTS = json.loads((FIXTURES / "alertmanager_api_v2_alerts.json").read_text())
SILENCES = json.loads((FIXTURES / "alertmanager_api_v2_silences.json").read_text())
STARTS = parse_time(ALERTS[0]["startsAt"])
NOW = STARTS + 60_000  # a minute after the captured alert started; it ends 5 minutes after


class FakeAlertmanager:
    """Serves /api/v2/alerts and /api/v2/silences; POSTed silences are kept and answered with an id."""

    def __init__(self, alerts=None):
        self.alerts = copy.deepcopy(ALERTS if alerts is None else alerts)
        self.silences: list[dict] = []
        self.posted: list[dict] = []
        self.down = False
        self.refuse_silences = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/api/v2/alerts" and request.method == "GET":
            return httpx.Response(200, json=self.alerts)
        if request.url.path == "/api/v2/silences" and request.method == "GET":
            return httpx.Response(200, json=self.silences)
        if request.url.path == "/api/v2/silences" and request.method == "POST":
            if self.refuse_silences:
                return httpx.Response(400, json="silence invalid: comment missing")
            body = json.loads(request.content)
            self.posted.append(body)
            sid = f"sil-{len(self.posted)}"
            self.silences.append({**body, "id": sid, "status": {"state": "active"}})
            return httpx.Response(200, json={"silenceID": sid})
        return httpx.Response(404, text="not found")

    def sync(self, store, now=NOW) -> AlertmanagerSync:
        client = AlertmanagerClient("http://am.test:9093/", transport=httpx.MockTransport(self))
        return AlertmanagerSync(store, client, clock=lambda: now / 1000)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "qb.db") as s:
        yield s


def mirrored(store, now=NOW):
    return [a for a in current_alerts(store.read(), now) if a.source == "alertmanager"]


def test_alertmanager_fixture_shapes_parse_and_fingerprint_matches():
    [alert] = parse_alerts(ALERTS)
    assert alert.labels == {"alertname": "HighErrorRate", "job": "api", "severity": "critical"}
    assert am_fingerprint(alert.labels) == alert.fingerprint == "d8da8f2e9952176d"
    assert (alert.state, alert.receivers, alert.generator_url) == ("active", ("hook",), "http://127.0.0.1/qb")
    assert rfc3339(alert.starts_at) == ALERTS[0]["startsAt"] and rfc3339(alert.ends_at) == ALERTS[0]["endsAt"]
    [silence] = parse_silences(SILENCES)
    assert (silence.created_by, silence.comment, silence.state) == (
        "oncall", "acknowledged: looking at api errors", "active")
    assert [tuple(m) for m in silence.matchers] == [("alertname", "HighErrorRate", False, True)]
    # what we POST has the shape Alertmanager stored (minus the fields it adds)
    body = silence_body(list(silence.matchers), silence.starts_at, silence.ends_at, "oncall", silence.comment)
    assert body == {k: SILENCES[0][k] for k in ("matchers", "startsAt", "endsAt", "createdBy", "comment")}
    assert parse_time("0001-01-01T00:00:00Z") is None and parse_time("2026-11-26T19:25:53.1Z") % 1000 == 100
    with pytest.raises(ValueError):
        parse_alerts({"not": "a list"})


def test_alertmanager_alerts_are_mirrored_once_updated_and_resolved(store):
    fake = FakeAlertmanager()
    result = fake.sync(store).sync()
    assert (result.inserted, result.error) == (1, None)
    [row] = mirrored(store)
    assert (row.rule, row.fingerprint, row.severity, row.state) == (
        "HighErrorRate", "d8da8f2e9952176d", "critical", "firing")
    assert row.labels == ALERTS[0]["labels"] and row.annotations == ALERTS[0]["annotations"]
    assert row.active_at == row.fired_at == STARTS
    assert [(e.kind, e.actor) for e in events(store.read(), row.id)] == [("firing", "alertmanager")]
    [status] = store.source_statuses()
    assert (status.name, status.up) == ("alertmanager", True)

    assert fake.sync(store).sync().inserted == 0  # no duplicate
    fake.alerts[0]["annotations"]["summary"] = "still high"
    assert fake.sync(store).sync().updated == 1
    assert get_alert(store.read(), row.id).annotations == {"summary": "still high"}

    later = parse_time(ALERTS[0]["endsAt"]) + 1000  # Alertmanager's endsAt has passed: resolved
    assert fake.sync(store, now=later).sync().resolved == 1
    resolved = get_alert(store.read(), row.id)
    assert (resolved.state, resolved.resolved_at) == ("resolved", parse_time(ALERTS[0]["endsAt"]))


def test_alertmanager_alert_that_disappears_is_resolved_but_an_outage_resolves_nothing(store):
    fake = FakeAlertmanager()
    fake.sync(store).sync()
    fake.down = True
    result = fake.sync(store).sync()
    assert "unreachable" in result.error
    assert [a.state for a in mirrored(store)] == ["firing"]
    assert store.source_statuses()[0].up is False
    fake.down = False
    fake.alerts = []
    assert fake.sync(store).sync().resolved == 1
    assert [e.detail for e in events(store.read(), mirrored(store)[0].id)][-1] == {
        "reason": "no longer held by Alertmanager"}


def test_alertmanager_copies_of_qbconsoles_own_alerts_are_not_mirrored_back(store):
    # qbconsole forwarded this alert itself: same labels (alertname and severity included).
    labels = {"job": "api"}
    store.transaction(lambda conn: insert_alert(conn, "HighErrorRate", "local-fp", labels, {}, "critical",
                                                "firing", 1.0, STARTS, STARTS, NOW))
    result = FakeAlertmanager().sync(store).sync()
    assert result.inserted == 0 and mirrored(store) == []


def test_alertmanager_acknowledgement_creates_one_silence_in_alertmanager_idiom(store):
    fake = FakeAlertmanager()
    fake.sync(store).sync()
    [row] = mirrored(store)
    store.transaction(lambda conn: acknowledge(conn, row.id, "ann", NOW, "looking at api errors",
                                               timeout_ms=3_600_000))
    result = fake.sync(store, now=NOW + 1000).sync()
    assert result.silenced == 1
    [posted] = fake.posted
    assert posted == {
        "matchers": [{"name": "alertname", "value": "HighErrorRate", "isRegex": False, "isEqual": True},
                     {"name": "job", "value": "api", "isRegex": False, "isEqual": True},
                     {"name": "severity", "value": "critical", "isRegex": False, "isEqual": True}],
        "startsAt": rfc3339(NOW + 1000), "endsAt": rfc3339(NOW + 3_600_000),
        "createdBy": "ann", "comment": "looking at api errors"}
    silenced = [e for e in events(store.read(), row.id) if e.kind == "silenced"]
    assert [(e.actor, e.detail["alertmanager_silence_id"], e.detail["ack_at"]) for e in silenced] == [
        ("ann", "sil-1", NOW)]
    assert fake.sync(store, now=NOW + 2000).sync().silenced == 0  # once per acknowledgement
    assert len(fake.posted) == 1


def test_alertmanager_silence_defaults_and_reuse_after_a_crash(store):
    fake = FakeAlertmanager()
    fake.sync(store).sync()
    [row] = mirrored(store)
    store.transaction(lambda conn: acknowledge(conn, row.id, "bob", NOW))  # no note, no timeout
    # A silence from an earlier run that died before recording it: reused, not duplicated.
    body = silence_body(*_matchers_of(row), NOW, NOW + 4 * 3_600_000, "bob", "acknowledged in qbconsole by bob")
    fake.silences.append({**body, "id": "earlier", "status": {"state": "active"}})
    assert fake.sync(store).sync().silenced == 1
    assert fake.posted == []
    [event] = [e for e in events(store.read(), row.id) if e.kind == "silenced"]
    assert event.detail["alertmanager_silence_id"] == "earlier"


def _matchers_of(row):
    from qbconsole.alertmanager.api import equality_matchers

    return (equality_matchers(row.labels),)


def test_alertmanager_refusing_a_silence_is_recorded_once_and_not_retried(store):
    fake = FakeAlertmanager()
    fake.sync(store).sync()
    [row] = mirrored(store)
    store.transaction(lambda conn: acknowledge(conn, row.id, "ann", NOW, "x"))
    fake.refuse_silences = True
    fake.sync(store).sync()
    fake.sync(store).sync()
    failed = [e for e in events(store.read(), row.id) if e.kind == "silence_failed"]
    assert len(failed) == 1 and "HTTP 400" in failed[0].detail["error"]


def test_alertmanager_mirrored_alerts_are_never_notified_again(store):
    FakeAlertmanager().sync(store).sync()
    store.transaction(lambda conn: insert_alert(conn, "Local", "fp", {"job": "web"}, {}, "warning",
                                                "firing", 1.0, STARTS, STARTS, NOW))
    sent = []

    class Sender:
        name, kind = "am", "alertmanager"

        def send(self, notification, key, done=frozenset()):
            sent.append(notification)

        def close(self):
            pass

    notifier = Notifier(store, [{"name": "am", "kind": "alertmanager", "url": "http://am.test:9093"}],
                        [{"name": "all", "channels": ["am"], "group_wait": "0s"}], senders={"am": Sender()},
                        clock=lambda: NOW / 1000)
    notifier.plan()
    notifier.deliver()
    assert [a["labels"]["alertname"] for n in sent for a in n["alerts"]] == ["Local"]


def test_alertmanager_forwarding_posts_proper_times_and_generator_url(store):
    ids = store.transaction(lambda conn: [
        insert_alert(conn, "WorkersLow", "fp1", {"pool": "web"}, {"summary": "2 workers"}, "warning",
                     "firing", 2.0, STARTS, STARTS, NOW)])
    notifier = Notifier(store, [{"name": "am", "kind": "alertmanager", "url": "http://am.test:9093",
                                 "resend_interval": "1m"}],
                        [{"name": "all", "channels": ["am"]}], clock=lambda: NOW / 1000, senders={},
                        generator_url=lambda a: f"http://prom.test:9090/graph?g0.expr=x&alert={a.id}")
    notifier.plan()
    from qbconsole.notify.outbox import rows

    [row] = rows(store.read())
    [item] = alertmanager_body(row.payload)
    assert item["labels"] == {"alertname": "WorkersLow", "pool": "web", "severity": "warning"}
    assert item["startsAt"] == rfc3339(STARTS)
    assert item["endsAt"] == rfc3339(NOW + 4 * 60_000)  # valid for four resend intervals
    assert item["generatorURL"] == f"http://prom.test:9090/graph?g0.expr=x&alert={ids[0]}"


def test_alertmanager_sync_target_prefers_the_datasource_then_the_channel():
    both = parse_config("""
        datasource: {alertmanager_url: "http://am-a:9093", alertmanager_bearer_token_env: AM_TOKEN}
        channels: [{name: am, kind: alertmanager, url: "http://am-b:9093", headers: {X-Team: ops}}]
        routes: [{name: all, channels: [am]}]
    """.replace("\n        ", "\n"), env={})
    assert sync_target(both, env={"AM_TOKEN": "t"}) == ("http://am-a:9093", {"Authorization": "Bearer t"})
    channel_only = parse_config("""
        channels: [{name: am, kind: alertmanager, url: "http://am-b:9093/api/v2/alerts", headers: {X-Team: ops}}]
        routes: [{name: all, channels: [am]}]
    """.replace("\n        ", "\n"), env={})
    assert sync_target(channel_only, env={}) == ("http://am-b:9093/api/v2/alerts", {"X-Team": "ops"})
    assert AlertmanagerClient("http://am-b:9093/api/v2/alerts").url == "http://am-b:9093"
    assert sync_target(parse_config("alert_rules: []", env={}), env={}) is None  # default channel, no URL
    assert sync_target(parse_config("alert_rules: []", env={}), env={"ALERTMANAGER_URL": "http://am-c:9093"}) == (
        "http://am-c:9093", {})
