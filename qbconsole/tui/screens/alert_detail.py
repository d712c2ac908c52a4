"""One alert in full: annotations, labels, value, times, acknowledgement, history and notifications.

The poll worker reads the detail of the alert this screen shows (``detail_id``),
so it stays live: a delivery that succeeds or an acknowledgement from another
console appears at the next poll.
"""

from __future__ import annotations

from typing import Any, Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from qbconsole.notify.outbox import OutboxRow
from qbconsole.store.alerts import AlertEvent, AlertRow
from qbconsole.tui.alertfmt import severity_mark, state_mark, value_text
from qbconsole.tui.data import AlertDetail, Snapshot
from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.timefmt import ago, clock, span, until

DELIVERY_MARKS = {"delivered": ("✔ delivered", "$success"), "pending": ("… pending", "$warning"),
                  "failed": ("✖ failed", "bold $error")}
TIME_KEYS = frozenset({"expires", "next_attempt"})
INTERNAL_KEYS = frozenset({"outbox_id"})
Part = tuple[str, str] | str


def when(ts: int | None, now_ms: int) -> str:
    """``11:52:00 (8m ago)``, or ``—``."""
    return "—" if ts is None else f"{clock(ts)} ({ago(ts, now_ms)})"


def event_detail(kind: str, detail: Mapping[str, Any], expr: str | None) -> str:
    """An event's detail for people: values in the alert's unit, times as clock times."""
    if kind in ("notified", "notify_failed"):
        return delivery_detail(detail)
    parts = []
    for key, value in detail.items():
        if value is None or value == "" or value == [] or key in INTERNAL_KEYS:
            continue
        if key == "value" and isinstance(value, (int, float)):
            text = value_text(float(value), expr)
        elif key in TIME_KEYS and isinstance(value, int):
            text = clock(value)
        elif key == "comment":
            text = f'"{value}"'
        elif isinstance(value, list):
            text = ",".join(map(str, value))
        else:
            text = str(value)
        parts.append(f"{key} {text}")
    return " · ".join(parts)


def delivery_detail(detail: Mapping[str, Any]) -> str:
    """``firing to slack, attempt 2: retry at 11:54:35 · HTTP 503 Service Unavailable``."""
    text = f"{detail.get('notification', 'notification')} to {detail.get('channel', '?')}"
    if "attempt" in detail:
        text += f", attempt {detail['attempt']}"
    state = detail.get("state")
    if state == "pending" and isinstance(detail.get("next_attempt"), int):
        text += f": retry at {clock(detail['next_attempt'])}"
    elif state:
        text += f": {state}"
    for key in ("error", "note"):
        if detail.get(key):
            text += f" · {detail[key]}"
    return text


def heading(alert: AlertRow) -> Content:
    sev, state = severity_mark(alert.severity), state_mark(alert.state)
    return Content.assemble((sev.text, f"bold ${sev.colour}"), "  ", (state.text, f"bold ${state.colour}"), "  ",
                            (alert.rule, "bold"), (f"  #{alert.id}", "$text-muted"))


def facts(alert: AlertRow, now_ms: int, expr: str | None, silenced: bool) -> Content:
    """Annotations, labels, value, times and the acknowledgement, one per line."""
    lines: list[list[Part]] = []
    annotations = dict(alert.annotations)
    for key in ("summary", "description"):
        if key in annotations:
            lines.append([(f"{key.capitalize()}: ", "bold"), annotations.pop(key)])
    for key, value in sorted(annotations.items()):
        lines.append([(f"{key}: ", "bold"), value])
    if not alert.annotations:
        lines.append([("No annotations", "$text-muted"), (" (the rule's annotations: summary, description)",
                                                           "$text-muted")])
    lines.append([("Labels: ", "bold"), " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))])
    value = [("Value: ", "bold"), value_text(alert.value, expr)]
    if expr:
        value.append((f"   expr: {expr}", "$text-muted"))
    lines.append(value)
    lines.append([("Active since ", "bold"), when(alert.active_at, now_ms), ("  Fired at ", "bold"),
                  when(alert.fired_at, now_ms), ("  Resolved at ", "bold"), when(alert.resolved_at, now_ms)])
    if alert.ack_by is None:
        ack: list[Part] = [("Not acknowledged", "$warning" if alert.state == "firing" else "$text-muted")]
    else:
        held = alert.acknowledged(now_ms)
        ack = [("Acknowledged by ", "bold"), (alert.ack_by, "bold $success" if held else "bold"),
               f" at {when(alert.ack_at, now_ms)}"]
        if alert.ack_comment:
            ack.append(f' · "{alert.ack_comment}"')
        if alert.ack_expires is not None:
            ack.append(f" · expires {clock(alert.ack_expires)} ({until(alert.ack_expires, now_ms)})"
                       if held else (" · lapsed", "bold $warning"))
    lines.append(ack)
    extra: list[Part] = [f"Escalation level {alert.escalation_level} · source {alert.source}"]
    if silenced:
        extra.append((" · silenced (notifications muted)", "bold $warning"))
    lines.append(extra)
    return Content("\n").join(Content.assemble(*line) for line in lines)


def history(events: tuple[AlertEvent, ...], expr: str | None) -> Content:
    if not events:
        return Content.styled("No events recorded yet.", "$text-muted")
    width = max(len(e.kind) for e in events)
    actor_width = max(len(e.actor) for e in events)
    lines = [Content.assemble((clock(e.ts), "$text-muted"), "  ", (e.kind.ljust(width), "bold"), "  ",
                              e.actor.ljust(actor_width), "  ", event_detail(e.kind, e.detail, expr))
             for e in events]
    return Content("\n").join(lines)


def notifications(rows: tuple[OutboxRow, ...], now_ms: int) -> Content:
    """Each notification: channel, kind, delivery state, attempts, last error, next attempt."""
    if not rows:
        return Content.styled("No notification has carried this alert yet (not due, silenced, inhibited, no route, "
                              "or its channels are disabled).",
                              "$text-muted")
    width = max(len(r.channel) for r in rows)
    kind_width = max(len(r.kind) for r in rows)
    lines = []
    for row in rows:
        mark, style = DELIVERY_MARKS.get(row.state, (row.state, ""))
        parts: list[Part] = [(row.channel.ljust(width), "bold"), "  ", row.kind.ljust(kind_width), "  ",
                             (mark.ljust(11), style), f"  {row.attempts} attempt{'s' if row.attempts != 1 else ''}"]
        if row.state == "delivered":
            parts.append(f" · delivered {when(row.delivered_at, now_ms)}")
        elif row.state == "pending":
            due = (f"in {span(row.next_attempt - now_ms)}" if row.next_attempt >= now_ms
                   else f"overdue {span(now_ms - row.next_attempt)}")
            parts.append(f" · next attempt {clock(row.next_attempt)} ({due})")
        if row.last_error:
            parts.append((f"\n  last error: {row.last_error}", "$error" if row.state == "failed" else "$warning"))
        lines.append(Content.assemble(*parts))
    return Content("\n").join(lines)


class AlertDetailScreen(SectionScreen):
    """Pushed over the feed by ``enter``; ``escape`` goes back."""

    MODE = "alerts"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the alert feed", id="alert_detail.back"),
        Binding("a", "ack", "Acknowledge", tooltip="Acknowledge this alert (stops escalation)",
                id="alert_detail.ack"),
        Binding("s", "silence", "Silence", tooltip="Silence notifications for alerts like this one",
                id="alert_detail.silence"),
    ]

    def __init__(self, alert_id: int) -> None:
        super().__init__()
        self.alert_id = alert_id

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="alert-detail", can_focus=True):
            yield Static(f"… reading alert #{self.alert_id}", id="detail-heading")
            yield Static("", id="detail-facts")
            yield Static("History", classes="detail-title")
            yield Static("", id="detail-history")
            yield Static("Notifications", classes="detail-title")
            yield Static("", id="detail-notifications")

    def on_mount(self) -> None:
        self.query_one("#alert-detail").focus()

    def on_screen_resume(self) -> None:
        self.console.watch_detail(self.alert_id)

    def on_screen_suspend(self) -> None:
        self.console.watch_detail(None)

    def on_unmount(self) -> None:
        if self.console.detail_alert_id == self.alert_id:
            self.console.watch_detail(None)

    def current(self) -> AlertDetail | None:
        snapshot = self.console.snapshot
        if snapshot is None or snapshot.detail_id != self.alert_id:
            return None
        return snapshot.detail

    def show_body(self, snapshot: Snapshot) -> None:
        if snapshot.detail_id != self.alert_id:
            return  # an older poll, from before this screen asked
        detail = snapshot.detail
        if detail is None:
            self.query_one("#detail-heading", Static).update(
                Content.styled(f"Alert #{self.alert_id} is no longer in the store.", "bold $warning"))
            return
        expr = self.console.alert_expressions().get(detail.alert.rule)
        self.query_one("#detail-heading", Static).update(heading(detail.alert))
        self.query_one("#detail-facts", Static).update(
            facts(detail.alert, snapshot.now_ms, expr, snapshot.silenced(detail.alert)))
        self.query_one("#detail-history", Static).update(history(detail.events, expr))
        self.query_one("#detail-notifications", Static).update(notifications(detail.notifications, snapshot.now_ms))

    def action_back(self) -> None:
        self.dismiss()

    def action_ack(self) -> None:
        detail = self.current()
        if detail is not None:
            self.console.ask_acknowledge(detail.alert)

    def action_silence(self) -> None:
        detail, snapshot = self.current(), self.console.snapshot
        if detail is not None:
            self.console.ask_silence(detail.alert, snapshot.alerts if snapshot else ())
