"""Routing, grouping, timing, acknowledgement, escalation, silences and inhibition.

Planning runs against a real store with a clock we pass in (``now`` in ms);
deliveries go to an in-process recording sender (the real sinks are exercised
in test_notify_delivery.py).
"""

from __future__ import annotations

from qbconsole.notify import Notifier
from qbconsole.notify import outbox, routing
from qbconsole.notify.config import parse_route
from qbconsole.store import Store
from qbconsole.store import alerts as A

T0 = 1_800_000_000_000
S, M, H = 1000, 60_000, 3_600_000


class Recorder:
    def __init__(self, name: str) -> None:
        self.name, self.kind = name, "test"
        self.sent: list[tuple[dict, str]] = []

    def send(self, notification, key, done=frozenset()):
        self.sent.append((notification, key))

    def close(self):
        pass


CHANNELS = [
    {"name": "email", "kind": "webhook", "url": "http://127.0.0.1:9/email"},
    {"name": "quiet", "kind": "webhook", "url": "http://127.0.0.1:9/quiet", "send_resolved": False},
    {"name": "sms", "kind": "webhook", "url": "http://127.0.0.1:9/sms", "send_resolved": False},
]


def make(store, routes, *, inhibit=None, channels=CHANNELS):
    recs = {c["name"]: Recorder(c["name"]) for c in channels}
    n = Notifier(store, channels, routes, inhibit_cfg=[] if inhibit is None else inhibit, senders=recs)
    return n, recs


def fire(store, name, severity="warning", at=T0, **labels) -> int:
    labels = {"alertname": name, "severity": severity, **labels}
    fp = "|".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return store.transaction(lambda c: A.insert_alert(c, name, fp, labels, {"summary": f"{name} on {labels}"},
                                                      severity, "firing", 90.0, at, at, at))


def resolve(store, alert_id, at):
    store.transaction(lambda c: A.update_alert(c, alert_id, state="resolved", value=1.0, annotations={},
                                               fired_at=T0, resolved_at=at, keep_firing_since=None, t=at))


def step(n, now):
    """Plan then deliver at ``now``; returns the notifications delivered, as (channel, payload)."""
    n.plan(now)
    outcomes = n.deliver(now)
    assert all(o.state == "delivered" for o in outcomes)
    return [(o.channel, outbox.get(n.store.read(), o.outbox_id).payload) for o in outcomes]


def route(**kw):
    base = {"name": "all", "match": [], "channels": ["email"], "group_by": ["alertname"],
            "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
    return {**base, **kw}


def ids(payload):
    return sorted((a["id"], a["status"]) for a in payload["alerts"])


def test_group_wait_then_one_grouped_notification(store):
    n, _ = make(store, [route()])
    a = fire(store, "HighCPU", instance="web-1")
    assert step(n, T0) == []
    b = fire(store, "HighCPU", at=T0 + 10 * S, instance="web-2")
    c = fire(store, "HighMemory", at=T0 + 10 * S, instance="web-1")
    assert step(n, T0 + 10 * S) == []
    assert step(n, T0 + 29 * S) == []
    sent = step(n, T0 + 30 * S)
    assert [(ch, ids(p)) for ch, p in sent] == [("email", [(a, "firing"), (b, "firing")])]
    assert sent[0][1]["groupLabels"] == {"alertname": "HighCPU"}
    assert sent[0][1]["groupKey"] == '{}/{}:{alertname="HighCPU"}'
    # HighMemory's own group was first seen 10 s later, so it waits until T0 + 40 s.
    assert step(n, T0 + 39 * S) == []
    assert [ids(p) for _, p in step(n, T0 + 40 * S)] == [[(c, "firing")]]
    assert step(n, T0 + 41 * S) == []


def test_group_interval_batches_changes_and_resolution_respects_send_resolved(store):
    n, _ = make(store, [route(channels=["email", "quiet"], group_wait="0s")])
    a = fire(store, "HighCPU", instance="web-1")
    assert len(step(n, T0)) == 2
    b = fire(store, "HighCPU", at=T0 + M, instance="web-2")
    assert step(n, T0 + M) == []                      # inside group_interval
    assert step(n, T0 + 5 * M - 1) == []
    sent = dict(step(n, T0 + 5 * M))
    assert ids(sent["email"]) == ids(sent["quiet"]) == [(a, "firing"), (b, "firing")]
    resolve(store, a, T0 + 6 * M)
    assert step(n, T0 + 6 * M) == []                  # again inside group_interval
    sent = step(n, T0 + 10 * M)
    # Only the channel with send_resolved hears about the resolution.
    assert [(ch, ids(p)) for ch, p in sent] == [("email", [(a, "resolved"), (b, "firing")])]
    assert sent[0][1]["status"] == "firing"
    resolve(store, b, T0 + 11 * M)
    sent = step(n, T0 + 15 * M)
    assert [(ch, ids(p), p["status"]) for ch, p in sent] == [("email", [(b, "resolved")], "resolved")]
    assert step(n, T0 + 30 * M) == []                 # nothing left to say


def test_repeat_interval_and_acknowledgement_stops_repeats(store):
    n, _ = make(store, [route(group_wait="0s", repeat_interval="1h")])
    a = fire(store, "HighCPU", instance="web-1")
    assert len(step(n, T0)) == 1
    assert step(n, T0 + H - 1) == []
    sent = step(n, T0 + H)
    assert [(p["kind"], ids(p)) for _, p in sent] == [("repeat", [(a, "firing")])]
    store.transaction(lambda c: A.acknowledge(c, a, "alice", T0 + H + M, "on it", timeout_ms=3 * H))
    assert step(n, T0 + 2 * H) == []                  # acknowledged: no repeat
    assert step(n, T0 + 3 * H) == []
    # The acknowledgement times out at T0 + 4h 1m: the alert is unacknowledged again and repeats resume.
    sent = step(n, T0 + 4 * H + 2 * M)
    assert [p["kind"] for _, p in sent] == ["repeat"]
    assert [e.kind for e in A.events(store.read(), a)].count("unacknowledged") == 1


def test_new_firing_alert_is_sent_even_when_the_others_are_acknowledged(store):
    n, _ = make(store, [route(group_wait="0s")])
    a = fire(store, "HighCPU", instance="web-1")
    step(n, T0)
    store.transaction(lambda c: A.acknowledge(c, a, "alice", T0 + S))
    b = fire(store, "HighCPU", at=T0 + 6 * M, instance="web-2")
    sent = step(n, T0 + 6 * M)
    assert [ids(p) for _, p in sent] == [[(a, "firing"), (b, "firing")]]
    by_id = {x["id"]: x for x in sent[0][1]["alerts"]}
    assert (by_id[a]["acknowledgedBy"], by_id[b]["acknowledgedBy"]) == ("alice", None)


def test_escalation_fires_once_after_its_delay(store):
    esc = route(channels=["email"], group_wait="0s", escalation=[{"after": "15m", "channels": ["sms"]},
                                                                 {"after": "1h", "channels": ["email"]}])
    n, recs = make(store, [esc])
    a = fire(store, "HighMemory", "critical", instance="db-1")
    assert [ch for ch, _ in step(n, T0)] == ["email"]
    assert step(n, T0 + 15 * M - 1) == []
    sent = step(n, T0 + 15 * M)
    assert [(ch, p["kind"], p["escalationLevel"], ids(p)) for ch, p in sent] == \
        [("sms", "escalation", 1, [(a, "firing")])]
    assert recs["sms"].sent[0][0]["alerts"][0]["labels"]["instance"] == "db-1"
    assert step(n, T0 + 16 * M) == []
    assert step(n, T0 + 59 * M) == []
    assert [(ch, p["escalationLevel"]) for ch, p in step(n, T0 + H)] == [("email", 2)]
    assert A.get_alert(store.read(), a).escalation_level == 2
    escalated = [e.detail for e in A.events(store.read(), a) if e.kind == "escalated"]
    assert escalated == [{"level": 1, "route": "all", "channels": ["sms"]},
                         {"level": 2, "route": "all", "channels": ["email"]}]


def test_acknowledged_alert_is_not_escalated(store):
    n, _ = make(store, [route(group_wait="0s", escalation=[{"after": "15m", "channels": ["sms"]}])])
    a = fire(store, "HighMemory", "critical", instance="db-1")
    step(n, T0)
    store.transaction(lambda c: A.acknowledge(c, a, "bob", T0 + 5 * M))
    assert step(n, T0 + 20 * M) == []
    assert A.get_alert(store.read(), a).escalation_level == 0


def test_silence_suppresses_and_its_end_releases(store):
    n, _ = make(store, [route(group_wait="0s")])
    matcher = A.parse_matcher('instance="web-1"')
    store.transaction(lambda c: A.add_silence(c, [matcher], T0 - M, T0 + 10 * M, "carol", "deploy", T0 - M))
    fire(store, "HighCPU", instance="web-1")
    b = fire(store, "HighCPU", instance="web-2")
    assert [ids(p) for _, p in step(n, T0)] == [[(b, "firing")]]
    resolve(store, b, T0 + M)
    sent = step(n, T0 + 5 * M)
    assert [p["status"] for _, p in sent] == ["resolved"]
    assert step(n, T0 + 9 * M) == []                  # web-1 still silenced
    sent = step(n, T0 + 10 * M)                       # the silence ended: web-1 is news
    assert [[a["labels"]["instance"] for a in p["alerts"]] for _, p in sent] == [["web-1"]]


def test_inhibition_mutes_warnings_with_equal_labels(store):
    inhibit = [{"source_match": ['severity="critical"'], "target_match": ['severity="warning"'],
                "equal": ["alertname", "instance"]}]
    n, _ = make(store, [route(group_wait="0s", group_by=["alertname", "instance"])], inhibit=inhibit)
    crit = fire(store, "DiskFull", "critical", instance="db-1")
    fire(store, "DiskFull", "warning", instance="db-1")      # muted by crit
    warn2 = fire(store, "DiskFull", "warning", instance="db-2")  # other instance: not muted
    sent = step(n, T0)
    assert sorted(ids(p)[0] for _, p in sent) == sorted([(crit, "firing"), (warn2, "firing")])


def test_inhibition_source_must_be_firing_and_not_itself():
    rule = routing.InhibitRule(source=(A.parse_matcher("severity=critical"),),
                               target=(A.parse_matcher("severity=~critical|warning"),), equal=("alertname",))

    def row(i, state, severity):
        return A.AlertRow(i, "X", str(i), {"alertname": "X", "severity": severity}, {}, severity, state, 1.0,
                          T0, T0, None, None, T0, None, None, None, None, 0, "local")

    crit, warn = row(1, "firing", "critical"), row(2, "firing", "warning")
    assert routing.inhibited_ids([crit, warn], [rule]) == {2}
    # Two alerts matching both sides do not inhibit each other (Alertmanager's rule).
    assert routing.inhibited_ids([crit, row(3, "firing", "critical")], [rule]) == set()
    assert routing.inhibited_ids([row(1, "resolved", "critical"), warn], [rule]) == set()


def test_first_match_wins_unless_continue(store):
    routes = [route(name="crit", match=['severity="critical"'], channels=["sms"], group_wait="0s", **{"continue": True}),
              route(name="page", match=['severity="critical"'], channels=["email"], group_wait="0s"),
              route(name="rest", channels=["quiet"], group_wait="0s")]
    n, _ = make(store, routes)
    fire(store, "HighMemory", "critical", instance="db-1")
    fire(store, "HighCPU", "warning", instance="web-1")
    sent = sorted((ch, p["route"], p["alerts"][0]["labels"]["alertname"]) for ch, p in step(n, T0))
    assert sent == [("email", "page", "HighMemory"), ("quiet", "rest", "HighCPU"), ("sms", "crit", "HighMemory")]


def test_default_routing_is_email_and_slack_for_all_sms_for_critical(store):
    channels = [{"name": k, "kind": "webhook", "url": f"http://127.0.0.1:9/{k}"} for k in ("email", "slack", "sms")]
    n, _ = make(store, [], channels=channels)
    fire(store, "HighMemory", "critical", instance="db-1")
    fire(store, "HighCPU", "warning", instance="web-1")
    assert step(n, T0) == []
    sent = sorted((ch, p["alerts"][0]["labels"]["alertname"]) for ch, p in step(n, T0 + 10 * S))
    assert sent == [("sms", "HighMemory")]      # the critical route waits 10 s
    sent += sorted((ch, p["alerts"][0]["labels"]["alertname"]) for ch, p in step(n, T0 + 30 * S))
    sent.sort()
    assert sent == [("email", "HighCPU"), ("email", "HighMemory"), ("slack", "HighCPU"),
                    ("slack", "HighMemory"), ("sms", "HighMemory")]


def test_pending_alerts_are_not_notified(store):
    n, _ = make(store, [route(group_wait="0s")])
    store.transaction(lambda c: A.insert_alert(c, "HighCPU", "p", {"alertname": "HighCPU"}, {}, "warning",
                                               "pending", 85.0, T0, None, T0))
    assert step(n, T0 + H) == []


def test_timing_state_survives_a_restart(tmp_path):
    path = tmp_path / "qb.db"
    store = Store.open(path)
    n, _ = make(store, [route(group_wait="30s")])
    fire(store, "HighCPU", instance="web-1")
    assert step(n, T0 + 10 * S) == []                 # group first seen at T0 + 10 s
    store.close()
    store = Store.open(path)
    try:
        n, _ = make(store, [route(group_wait="30s")])
        assert step(n, T0 + 39 * S) == []             # group_wait counts from the first sighting
        assert len(step(n, T0 + 40 * S)) == 1
        assert step(n, T0 + 41 * S) == []
    finally:
        store.close()


def test_decide_pure_cases():
    r = parse_route(route(group_wait="30s", group_interval="5m", repeat_interval="4h"))

    def row(i, state="firing"):
        return A.AlertRow(i, "X", str(i), {"alertname": "X"}, {}, "warning", state, 1.0, T0, T0,
                          T0 if state == "resolved" else None, None, T0, None, None, None, None, 0, "local")

    d = routing.decide(None, [], [row(1, "resolved")], route=r, send_resolved=True, acknowledged=set(), now=T0)
    assert d.send is None                                   # nothing was ever told firing
    d = routing.decide(None, [row(1)], [], route=r, send_resolved=True, acknowledged=set(), now=T0)
    assert d.send is None and d.state.first_seen == T0
    d = routing.decide(d.state, [row(1)], [], route=r, send_resolved=True, acknowledged=set(), now=T0 + 30 * S)
    assert d.send == routing.NOTIFY and d.state.seq == 1 and d.state.firing == {1}
    st = d.state
    d = routing.decide(st, [row(1)], [], route=r, send_resolved=True, acknowledged={1}, now=T0 + 5 * H)
    assert d.send is None                                   # acknowledged: no repeat
    d = routing.decide(st, [row(1)], [], route=r, send_resolved=True, acknowledged=set(), now=T0 + 5 * H)
    assert d.send == routing.REPEAT and d.state.seq == 2
    d = routing.decide(st, [], [], route=r, send_resolved=True, acknowledged=set(), now=T0 + 10 * M)
    assert d.send is None and d.state == st                 # silenced away: say nothing
    d = routing.decide(st, [], [row(1, "resolved")], route=r, send_resolved=False, acknowledged=set(),
                       now=T0 + 10 * M)
    assert d.send is None and d.state.firing == frozenset() and d.state.resolved == {1}


def test_alertmanager_channel_resends_firing_alerts(store):
    channels = [{"name": "am", "kind": "alertmanager", "url": "http://127.0.0.1:9", "resend_interval": "1m"}]
    n, _ = make(store, [route(channels=["am"], group_wait="30s", repeat_interval="4h")], channels=channels)
    a = fire(store, "HighCPU", instance="web-1")
    sent = step(n, T0)                                      # no group_wait: Alertmanager groups itself
    assert [(p["kind"], ids(p)) for _, p in sent] == [("resend", [(a, "firing")])]
    assert sent[0][1]["alerts"][0]["endsAt"] == T0 + 4 * M  # valid for four resend intervals
    assert step(n, T0 + 59 * S) == []
    assert len(step(n, T0 + M)) == 1
    resolve(store, a, T0 + 90 * S)
    sent = step(n, T0 + 90 * S)
    assert [ids(p) for _, p in sent] == [[(a, "resolved")]]
    assert sent[0][1]["alerts"][0]["endsAt"] == T0 + 90 * S
    assert step(n, T0 + 10 * M) == []
