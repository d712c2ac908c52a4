"""What a notification says: the stored notification, and its text for each channel kind.

A *notification* is a plain JSON-able dict built when it is planned and stored
in the outbox; it holds no secrets (no URLs, no credentials)::

    {"receiver": channel, "route": route, "kind": "notify|repeat|escalation|resend",
     "status": "firing|resolved", "groupKey": "...", "groupLabels": {...},
     "externalURL": "...", "createdAt": ms, "escalationLevel": n (escalations only),
     "alerts": [{"id", "status", "labels", "annotations", "startsAt": ms,
                 "endsAt": ms | None, "generatorURL", "fingerprint", "value",
                 "acknowledgedBy"}]}

The renderers below turn it into each sink's format at send time: an email,
Slack incoming-webhook JSON, a short SMS, Alertmanager's webhook payload
(version 4) and the body of Alertmanager's ``POST /api/v2/alerts``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Mapping

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time, as Alertmanager writes an open endsAt
SMS_MAX = 320
SLACK_MAX_ALERTS = 20
_SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def am_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over sorted name/value pairs."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ms: int | None) -> str:
    """``2026-11-26T19:25:53.134Z``; None gives Go's zero time."""
    if ms is None:
        return ZERO_TIME
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


def common_labels(n: Mapping[str, Any]) -> dict[str, str]:
    return _common([a["labels"] for a in n["alerts"]])


def common_annotations(n: Mapping[str, Any]) -> dict[str, str]:
    return _common([a["annotations"] for a in n["alerts"]])


def _firing(n: Mapping[str, Any]) -> list[dict]:
    return [a for a in n["alerts"] if a["status"] == "firing"]


def _resolved(n: Mapping[str, Any]) -> list[dict]:
    return [a for a in n["alerts"] if a["status"] == "resolved"]


def title(n: Mapping[str, Any]) -> str:
    """``[FIRING:2] HighCPU (warning)``, ``[RESOLVED] HighCPU (warning)``, ``[ESCALATED L1] ...``."""
    labels = common_labels(n)
    name = labels.get("alertname") or n.get("groupLabels", {}).get("alertname") \
        or f"{len(n['alerts'])} alerts"
    severities = sorted({a["labels"].get("severity", "") for a in n["alerts"]} - {""},
                        key=lambda s: _SEVERITY_RANK.get(s, 9))
    severity = f" ({severities[0]})" if severities else ""
    firing = len(_firing(n))
    head = f"[FIRING:{firing}]" if firing else "[RESOLVED]"
    if n.get("kind") == "escalation":
        head = f"[ESCALATED L{n.get('escalationLevel', 1)}] " + head
    return f"{head} {name}{severity}"


def _age(ms: int) -> str:
    seconds = max(0, ms // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _value(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def alert_lines(a: Mapping[str, Any], now: int) -> list[str]:
    """The plain-text block for one alert (email body, webhook-less sinks)."""
    since = a["startsAt"]
    lines = [f"- {a['labels'].get('alertname', '?')} [{a['status'].upper()}]",
             f"  labels: {_labels_text(a['labels'])}",
             f"  value: {_value(a.get('value'))}",
             f"  since: {rfc3339(since)} ({_age(now - since)} ago)"]
    if a["status"] == "resolved" and a.get("endsAt"):
        lines.append(f"  resolved: {rfc3339(a['endsAt'])}")
    if a.get("acknowledgedBy"):
        lines.append(f"  acknowledged by: {a['acknowledgedBy']}")
    for key, text in sorted(a["annotations"].items()):
        lines.append(f"  {key}: {text}")
    if a.get("generatorURL"):
        lines.append(f"  source: {a['generatorURL']}")
    return lines


def email_text(n: Mapping[str, Any]) -> str:
    now = n["createdAt"]
    out = [title(n), ""]
    if n.get("kind") == "escalation":
        out += [f"Escalation level {n.get('escalationLevel')}: firing and not acknowledged.", ""]
    for heading, group in (("Firing", _firing(n)), ("Resolved", _resolved(n))):
        if group:
            out.append(f"{heading} ({len(group)}):")
            for a in group:
                out += alert_lines(a, now)
            out.append("")
    out.append(f"Route: {n['route']}   Group: {n['groupKey']}")
    if n.get("externalURL"):
        out.append(f"Console: {n['externalURL']}")
    return "\n".join(out) + "\n"


def email_message(n: Mapping[str, Any], sender: str, to: tuple[str, ...], key: str) -> EmailMessage:
    """The email; its Message-ID derives from the dedup key so receivers can drop a duplicate."""
    msg = EmailMessage()
    msg["Subject"] = title(n)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(datetime.fromtimestamp(n["createdAt"] / 1000, tz=timezone.utc))
    domain = sender.rpartition("@")[2] or "qbconsole"
    msg["Message-ID"] = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
    msg["X-Qbconsole-Notification-Id"] = key
    msg.set_content(email_text(n))
    return msg


def sms_text(n: Mapping[str, Any]) -> str:
    """``[FIRING:1] HighMemory (critical): Memory at 91% on web-1`` cut to :data:`SMS_MAX`."""
    summaries = []
    for a in _firing(n) or _resolved(n):
        ann = a["annotations"]
        text = ann.get("summary") or ann.get("description") or a["labels"].get("instance") or ""
        if text and text not in summaries:
            summaries.append(text)
    body = title(n) + (": " + "; ".join(summaries) if summaries else "")
    return body if len(body) <= SMS_MAX else body[:SMS_MAX - 1] + "…"


def slack_body(n: Mapping[str, Any], channel: str = "") -> dict[str, Any]:
    """Incoming-webhook JSON: ``text`` (the fallback) plus ``blocks``."""
    now = n["createdAt"]
    head = title(n)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}}]
    shown = n["alerts"][:SLACK_MAX_ALERTS]
    for a in shown:
        ann = a["annotations"]
        summary = ann.get("summary") or ann.get("description") or ""
        ack = f"\nacknowledged by {a['acknowledgedBy']}" if a.get("acknowledgedBy") else ""
        text = (f"*{a['status'].upper()}* `{_labels_text(a['labels'])}`\n"
                f"value {_value(a.get('value'))}, since {rfc3339(a['startsAt'])} "
                f"({_age(now - a['startsAt'])} ago){ack}" + (f"\n{summary}" if summary else ""))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    if len(n["alerts"]) > len(shown):
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"and {len(n['alerts']) - len(shown)} more"}]})
    body: dict[str, Any] = {"text": head, "blocks": blocks}
    if channel:
        body["channel"] = channel
    return body


def _am_alert(a: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": a["status"], "labels": dict(a["labels"]), "annotations": dict(a["annotations"]),
            "startsAt": rfc3339(a["startsAt"]),
            "endsAt": rfc3339(a.get("endsAt") if a["status"] == "resolved" else None),
            "generatorURL": a.get("generatorURL", ""), "fingerprint": a["fingerprint"]}


def webhook_body(n: Mapping[str, Any], max_alerts: int = 0) -> dict[str, Any]:
    """Alertmanager's webhook payload, version 4, key for key."""
    alerts = n["alerts"]
    shown = alerts[:max_alerts] if max_alerts else alerts
    return {"receiver": n["receiver"], "status": "firing" if _firing(n) else "resolved",
            "alerts": [_am_alert(a) for a in shown], "groupLabels": dict(n.get("groupLabels", {})),
            "commonLabels": common_labels(n), "commonAnnotations": common_annotations(n),
            "externalURL": n.get("externalURL", ""), "version": "4", "groupKey": n["groupKey"],
            "truncatedAlerts": len(alerts) - len(shown)}


def alertmanager_body(n: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``POST /api/v2/alerts``: postable alerts; a firing alert's endsAt is its validity end."""
    out = []
    for a in n["alerts"]:
        item = {"labels": dict(a["labels"]), "annotations": dict(a["annotations"]),
                "startsAt": rfc3339(a["startsAt"]), "generatorURL": a.get("generatorURL", "")}
        if a.get("endsAt") is not None:
            item["endsAt"] = rfc3339(a["endsAt"])
        out.append(item)
    return out
