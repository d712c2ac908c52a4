"""Channel/route/inhibit parsing, disabled-channel reasons, message rendering, backoff helpers."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from qbconsole.config import parse_config
from qbconsole.notify import messages, outbox
from qbconsole.notify.channels import build_sender, parse_retry_after, scrub
from qbconsole.notify.config import (default_channels, parse_channel, parse_channels, parse_inhibit_rules,
                                     parse_route, parse_routes)

FIXTURES = Path("/work/shared/fixtures")


# ---- channels -------------------------------------------------------------------------------
def test_default_channels_without_environment_are_all_disabled_with_the_variable_named():
    reasons = {c.name: (c.enabled, c.disabled_reason) for c in parse_channels(None, env={})}
    assert reasons == {
        "email": (False, "SMTP_HOST, ALERT_EMAIL_TO are not set"),
        "slack": (False, "SLACK_WEBHOOK_URL is not set"),
        "sms": (False, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM, SMS_TO are not set"),
        "webhook": (False, "WEBHOOK_URL is not set"),
        "alertmanager": (False, "ALERTMANAGER_URL is not set"),
    }


def test_default_channels_enable_from_environment():
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/abcdef", "WEBHOOK_URL": "https://ops.quickbid/hook",
           "SMTP_HOST": "smtp.quickbid", "ALERT_EMAIL_TO": "oncall@quickbid.com, devops@quickbid.com"}
    chans = {c.name: c for c in parse_channels([], env=env)}
    assert chans["slack"].enabled and chans["webhook"].enabled and chans["email"].enabled
    assert chans["email"].options["to"] == ("oncall@quickbid.com", "devops@quickbid.com")
    assert chans["email"].options["smtp_port"] == 587 and chans["email"].options["starttls"]
    assert chans["webhook"].options["headers"] == {}        # "Bearer ${WEBHOOK_TOKEN:-}" unset: left out
    assert not chans["sms"].send_resolved and chans["slack"].send_resolved
    assert "/services/T1/B2/abcdef" in chans["slack"].secrets()
    assert "abcdef" not in chans["slack"].describe() and "abcdef" not in repr(default_channels(env)[1]["url"])


def test_config_loader_values_name_their_variables():
    text = """
channels:
  - {name: slack, kind: slack, url: "${SLACK_WEBHOOK_URL:-}", send_resolved: true}
  - {name: sms, kind: sms, url: "https://api.twilio.com/2010-04-01/Accounts/${TWILIO_ACCOUNT_SID:-}/Messages.json",
     account_sid: "${TWILIO_ACCOUNT_SID:-}", auth_token: "${TWILIO_AUTH_TOKEN:-}", from: "${SMS_FROM:-}",
     to: ["${SMS_TO:-}"], send_resolved: false}
  - {name: webhook, kind: webhook, url: "${WEBHOOK_URL:-}", headers: {Authorization: "Bearer ${WEBHOOK_TOKEN:-}"}}
routes:
  - {name: critical, match: ['severity="critical"'], channels: [sms], continue: true, group_by: [alertname],
     group_wait: 10s, group_interval: 1m, repeat_interval: 1h}
  - {name: default, match: [], channels: [slack, webhook], group_by: [alertname], group_wait: 30s,
     group_interval: 5m, repeat_interval: 4h, escalation: [{after: 15m, channels: [sms]}]}
"""
    config = parse_config(text, env={"WEBHOOK_URL": "https://ops.quickbid/hook", "WEBHOOK_TOKEN": "tok-xyz-1"})
    chans = parse_channels(config.channels)
    assert [c.describe() for c in chans] == [
        "slack: disabled, SLACK_WEBHOOK_URL is not set",
        "sms: disabled, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM, SMS_TO are not set",
        "webhook: enabled",
    ]
    assert chans[2].options["headers"] == {"Authorization": "Bearer tok-xyz-1"}
    assert "tok-xyz-1" in chans[2].secrets()
    routes = parse_routes(config.routes, chans)
    assert [(r.name, r.continue_, r.group_wait_ms, r.group_interval_ms, r.repeat_interval_ms) for r in routes] == \
        [("critical", True, 10_000, 60_000, 3_600_000), ("default", False, 30_000, 300_000, 14_400_000)]
    assert routes[1].escalation[0].after_ms == 900_000 and routes[1].escalation[0].channels == ("sms",)


def test_placeholders_disable_a_channel():
    hook = parse_channel({"name": "h", "kind": "webhook", "url": "https://hooks.example.com/x"})
    assert hook.disabled_reason == "url points at the placeholder host hooks.example.com"
    mail = parse_channel({"name": "m", "kind": "email", "smtp_host": "smtp.quickbid", "from": "q@quickbid.com",
                          "to": ["ops@quickbid.invalid"]})
    assert mail.disabled_reason == "to: ops@quickbid.invalid is a placeholder address"
    half = parse_channel({"name": "m", "kind": "email", "smtp_host": "smtp.quickbid", "from": "q@quickbid.com",
                          "to": "ops@quickbid.com", "username": "qb"})
    assert half.disabled_reason == "password is not set (a username is)"
    with pytest.raises(ValueError, match="disabled"):
        build_sender(hook)


@pytest.mark.parametrize("raw,message", [
    ({"name": "x", "kind": "pager"}, "channel 'x': kind must be one of email, slack, sms, webhook, alertmanager"),
    ({"name": "x", "kind": "slack", "url": "https://h/x", "sendresolved": True},
     "channel 'x': unknown key 'sendresolved' (did you mean 'send_resolved'?)"),
    ({"name": "x", "kind": "slack", "url": "ftp://secret-host/path"}, "channel 'x': url must be an http:// or https:// URL"),
    ({"name": "x", "kind": "email", "smtp_port": 70000}, "channel 'x': smtp_port must be a port number"),
    ({"name": "x", "kind": "email", "ssl": True, "starttls": True}, "use either ssl"),
    ({"name": "x", "kind": "webhook", "headers": ["a"]}, "channel 'x': headers must map header names"),
    ({"name": "x", "kind": "slack", "timeout": "soon"}, "channel 'x': timeout: not a duration"),
    ({"name": "x", "kind": "sms", "to": 5}, "channel 'x': to must be a string or a list"),
    ({"name": "a b", "kind": "slack"}, "channel 'a b': name must be"),
])
def test_channel_errors_name_channel_and_field(raw, message):
    with pytest.raises(ValueError) as info:
        parse_channel(raw)
    assert message in str(info.value)
    assert "secret-host" not in str(info.value)


def test_duplicate_channel_names_are_an_error():
    with pytest.raises(ValueError, match="channel 'a': defined twice"):
        parse_channels([{"name": "a", "kind": "slack"}, {"name": "a", "kind": "webhook"}])


# ---- routes and inhibit rules -----------------------------------------------------------------
@pytest.mark.parametrize("raw,message", [
    ({"name": "r", "channels": ["slak"]}, "route 'r': channels: no channel named 'slak' (did you mean 'slack'?)"),
    ({"name": "r", "group_wait": "soon"}, "route 'r': group_wait: not a duration"),
    ({"name": "r", "grup_by": ["a"]}, "route 'r': unknown key 'grup_by' (did you mean 'group_by'?)"),
    ({"name": "r", "match": ["severity=~("]}, "route 'r': match: bad regular expression"),
    ({"name": "r", "escalation": [{"after": "10m", "channels": []}, {"after": "5m", "channels": []}]},
     "route 'r': escalation level 2: after must be longer"),
    ({"name": "r", "escalation": [{"channels": ["slack"]}]}, "route 'r': escalation level 1: after is required"),
    ({"name": "r", "group_interval": "0s"}, "route 'r': group_interval and repeat_interval must be positive"),
    ({"match": []}, "route None: name must be"),
])
def test_route_errors_name_route_and_field(raw, message):
    with pytest.raises(ValueError) as info:
        parse_route(raw, {"slack", "email"})
    assert message in str(info.value)


def test_route_shapes():
    r = parse_route({"name": "r", "match": {"severity": "critical"}, "group_by": ["..."]})
    assert r.group_by is None and r.matches({"severity": "critical"}) and not r.matches({"severity": "warning"})
    r = parse_route({"name": "r", "match": ['instance=~"web-.*"', 'severity!="info"']})
    assert r.matches({"instance": "web-1", "severity": "warning"}) and not r.matches({"instance": "db-1"})
    assert (r.group_by, r.group_wait_ms, r.repeat_interval_ms) == (("alertname",), 30_000, 14_400_000)


def test_default_routes_use_only_existing_channels():
    chans = parse_channels([{"name": "email", "kind": "webhook", "url": "https://a/b"}])
    routes = parse_routes(None, chans)
    assert [(r.name, r.channels) for r in routes] == [("critical", ()), ("default", ("email",))]
    assert routes[1].escalation[0].channels == ()


def test_inhibit_rules():
    [rule] = parse_inhibit_rules(None)
    assert [str(m) for m in rule.source] == ['severity="critical"'] and rule.equal == ("alertname", "instance")
    assert parse_inhibit_rules([]) == []
    with pytest.raises(ValueError, match="inhibit rule 1: source_match and target_match"):
        parse_inhibit_rules([{"source_match": ["a=b"]}])
    with pytest.raises(ValueError, match="inhibit rule 1: unknown key 'equals' \\(did you mean 'equal'\\?\\)"):
        parse_inhibit_rules([{"source_match": ["a=b"], "target_match": ["c=d"], "equals": []}])


# ---- messages ---------------------------------------------------------------------------------
def test_fingerprint_and_time_format_agree_with_alertmanager():
    fixture = json.loads((FIXTURES / "alertmanager_webhook_payload.json").read_text())
    alert = fixture["alerts"][0]
    assert messages.am_fingerprint(alert["labels"]) == alert["fingerprint"] == "d8da8f2e9952176d"
    assert messages.rfc3339(None) == alert["endsAt"]
    assert messages.rfc3339(1_800_000_000_123) == "2027-01-15T08:00:00.123Z"


def _notification(n_firing=1, n_resolved=0, **extra):
    alerts = []
    for i in range(n_firing + n_resolved):
        status = "firing" if i < n_firing else "resolved"
        alerts.append({"id": i, "status": status, "labels": {"alertname": "HighCPU", "severity": "warning",
                                                              "instance": f"web-{i}"},
                       "annotations": {"summary": f"CPU 9{i}% on web-{i}"}, "startsAt": 0,
                       "endsAt": 60_000 if status == "resolved" else None, "generatorURL": "", "value": 90.0 + i,
                       "fingerprint": "f", "acknowledgedBy": None})
    return {"receiver": "r", "route": "default", "kind": "notify", "groupKey": "{}/{}:{}", "groupLabels": {},
            "externalURL": "", "createdAt": 120_000, "alerts": alerts, **extra}


def test_titles():
    assert messages.title(_notification(2)) == "[FIRING:2] HighCPU (warning)"
    assert messages.title(_notification(0, 1)) == "[RESOLVED] HighCPU (warning)"
    assert messages.title(_notification(1, kind="escalation", escalationLevel=2)) == \
        "[ESCALATED L2] [FIRING:1] HighCPU (warning)"


def test_sms_is_short_and_slack_is_bounded():
    n = _notification(60)
    assert len(messages.sms_text(n)) == messages.SMS_MAX
    body = messages.slack_body(n)
    assert body["text"] == "[FIRING:60] HighCPU (warning)"
    assert body["blocks"][-1]["elements"][0]["text"] == f"and {60 - messages.SLACK_MAX_ALERTS} more"
    assert len(body["blocks"]) == messages.SLACK_MAX_ALERTS + 2


def test_webhook_truncation_and_common_labels():
    body = messages.webhook_body(_notification(2, 1), max_alerts=2)
    assert body["truncatedAlerts"] == 1 and len(body["alerts"]) == 2
    assert body["commonLabels"] == {"alertname": "HighCPU", "severity": "warning"}
    assert body["commonAnnotations"] == {}
    assert body["status"] == "firing" and body["alerts"][0]["endsAt"] == messages.ZERO_TIME


def test_email_text_lists_alerts_with_labels_annotations_value_and_since():
    text = messages.email_text(_notification(1, 1))
    assert "Firing (1):" in text and "Resolved (1):" in text
    assert 'instance="web-0"' in text and "summary: CPU 90% on web-0" in text
    assert "value: 91" in text and "since: 1970-01-01T00:00:00.000Z (2m ago)" in text
    assert "resolved: 1970-01-01T00:01:00.000Z" in text


# ---- retry helpers ----------------------------------------------------------------------------
def test_parse_retry_after():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), now_s=lambda: when.timestamp() - 42) == 42
    past = format_datetime(when - timedelta(days=1), usegmt=True)
    assert parse_retry_after(past, now_s=lambda: when.timestamp()) == 0.0


def test_backoff_is_exponential_capped_and_jitter_stays_below():
    assert [outbox.backoff_ms(i) for i in (1, 2, 3, 8, 9, 20)] == [2000, 4000, 8000, 256000, 300000, 300000]
    rng = random.Random(7)
    for attempt in range(1, 12):
        assert 0 <= outbox.backoff_ms(attempt, rng=rng) <= outbox.backoff_ms(attempt)
    assert outbox.backoff_ms(5, rng=random.Random(1)) == outbox.backoff_ms(5, rng=random.Random(1))


def test_scrub():
    assert scrub("POST /services/T/B/xyz failed: xyz", ("/services/T/B/xyz", "xyz")) == "POST *** failed: ***"
