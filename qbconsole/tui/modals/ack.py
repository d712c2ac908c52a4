"""The acknowledge dialog: an optional comment and an optional timeout; enter confirms, escape cancels."""

from __future__ import annotations

from typing import NamedTuple

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from qbconsole.config.durations import parse_duration
from qbconsole.store.alerts import AlertRow
from qbconsole.tui.alertfmt import compact_labels, severity_mark, state_mark


class AckRequest(NamedTuple):
    """What the operator asked for; the app writes it in a thread worker."""

    alert_id: int
    comment: str
    timeout_ms: int | None


def parse_timeout(text: str) -> int | None:
    """ "2h" -> 7 200 000 ms; empty -> None (no timeout). ValueError says what is wrong."""
    text = text.strip()
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError(f"timeout {text!r} is not a duration: use e.g. 30m, 2h, 1h30m (empty: none)") from None
    if seconds <= 0:
        raise ValueError("timeout must be longer than zero (empty: none)")
    return int(seconds * 1000)


def alert_heading(alert: AlertRow) -> Content:
    """``✖ CRITICAL ● FIRING HighMemory #12`` and the alert's labels, for dialog titles."""
    sev, state = severity_mark(alert.severity), state_mark(alert.state)
    labels = compact_labels(alert.labels)
    return Content.assemble(
        (sev.text, f"bold ${sev.colour}"), "  ", (state.text, f"${state.colour}"), "  ",
        (alert.rule, "bold"), (f"  #{alert.id}", "$text-muted"),
        *((("\n" + labels, "$text-muted"),) if labels else ()),
    )


class AckModal(ModalScreen[AckRequest | None]):
    """Acknowledging stops escalation and repeated notifications; the alert itself keeps its state."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="ack.cancel"),
    ]

    def __init__(self, alert: AlertRow) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        with Vertical(id="ack-dialog", classes="dialog") as dialog:
            dialog.border_title = "Acknowledge alert"
            dialog.border_subtitle = "enter confirms · escape cancels"
            yield Static(alert_heading(self.alert), classes="dialog-heading")
            yield Static("Stops escalation and repeated notifications; the alert stays "
                         f"{self.alert.state} until its condition clears.", classes="dialog-note", markup=False)
            yield Label("Comment (optional)")
            yield Input(placeholder="e.g. looking into it, rollback started", id="ack-comment")
            yield Label("Timeout (optional): the acknowledgement lapses after")
            yield Input(placeholder="e.g. 2h; empty = until resolved", id="ack-timeout")
            yield Static("", id="ack-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Acknowledge", variant="primary", id="ack-confirm", compact=True)
                yield Button("Cancel", id="ack-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#ack-comment", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ack-confirm")
    def confirm(self) -> None:
        try:
            timeout_ms = parse_timeout(self.query_one("#ack-timeout", Input).value)
        except ValueError as err:
            error = self.query_one("#ack-error", Static)
            error.update(f"✖ {err}")
            error.display = True
            self.query_one("#ack-timeout", Input).focus()
            return
        comment = self.query_one("#ack-comment", Input).value.strip()
        self.dismiss(AckRequest(self.alert.id, comment, timeout_ms))

    @on(Button.Pressed, "#ack-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
