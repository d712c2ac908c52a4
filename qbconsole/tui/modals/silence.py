"""The silence dialog: matchers prefilled from the alert's labels, a duration and a required comment."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from qbconsole.config.durations import parse_duration
from qbconsole.store.alerts import AlertRow, Matcher
from qbconsole.tui.alertfmt import matchers_text, parse_matchers
from qbconsole.tui.modals.ack import alert_heading
from qbconsole.tui.timefmt import span

DEFAULT_DURATION = "1h"


class SilenceRequest(NamedTuple):
    """A validated silence, starting when the app writes it."""

    matchers: tuple[Matcher, ...]
    duration_ms: int
    comment: str


def parse_silence(matchers: str, duration: str, comment: str) -> SilenceRequest:
    """Validate the three fields; ValueError names the first that is wrong."""
    parsed = tuple(parse_matchers(matchers))
    try:
        seconds = parse_duration(duration.strip())
    except ValueError:
        raise ValueError(f"duration {duration.strip()!r} is not a duration: use e.g. 30m, 1h, 2h30m") from None
    if seconds <= 0:
        raise ValueError("duration must be longer than zero")
    if not comment.strip():
        raise ValueError("a comment is required: say why (e.g. planned deploy, known issue #123)")
    return SilenceRequest(parsed, int(seconds * 1000), comment.strip())


def match_count(matchers: Sequence[Matcher], alerts: Sequence[AlertRow]) -> int:
    return sum(all(m.matches(a.labels) for m in matchers) for a in alerts)


class SilenceModal(ModalScreen[SilenceRequest | None]):
    """Mutes notifications (not the alert) for every alert the matchers match, for a while."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="silence.cancel"),
    ]

    def __init__(self, alert: AlertRow, feed: Sequence[AlertRow] = ()) -> None:
        super().__init__()
        self.alert = alert
        self.feed = tuple(feed) or (alert,)

    def compose(self) -> ComposeResult:
        with Vertical(id="silence-dialog", classes="dialog") as dialog:
            dialog.border_title = "Silence notifications"
            dialog.border_subtitle = "enter confirms · escape cancels"
            yield Static(alert_heading(self.alert), classes="dialog-heading")
            yield Label('Matchers: name="value", name!="value", name=~"regex", name!~"regex"')
            yield Input(matchers_text(self.alert.labels), id="silence-matchers")
            yield Static("", id="silence-matches", classes="dialog-note", markup=False)
            yield Label("For (from now)")
            yield Input(DEFAULT_DURATION, placeholder="e.g. 30m, 1h, 2h30m", id="silence-duration")
            yield Label("Comment (required)")
            yield Input(placeholder="why: planned deploy, known issue #123, ...", id="silence-comment")
            yield Static("", id="silence-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Silence", variant="warning", id="silence-confirm", compact=True)
                yield Button("Cancel", id="silence-cancel", compact=True)

    def on_mount(self) -> None:
        self._show_matches()
        self.query_one("#silence-comment", Input).focus()

    @on(Input.Changed, "#silence-matchers, #silence-duration")
    def _show_matches(self) -> None:
        """Say what the matchers would mute among the alerts in the feed, as they are typed."""
        note = self.query_one("#silence-matches", Static)
        try:
            matchers = parse_matchers(self.query_one("#silence-matchers", Input).value)
        except ValueError:
            note.update("")
            return
        count = match_count(matchers, self.feed)
        duration = self.query_one("#silence-duration", Input).value.strip()
        try:
            length = f" for {span(int(parse_duration(duration) * 1000))}"
        except ValueError:
            length = ""
        this = "including this one" if match_count(matchers, (self.alert,)) else "NOT this one"
        note.update(f"Mutes {count} alert{'s' if count != 1 else ''} in the feed ({this}){length}.")

    @on(Input.Submitted)
    @on(Button.Pressed, "#silence-confirm")
    def confirm(self) -> None:
        try:
            request = parse_silence(self.query_one("#silence-matchers", Input).value,
                                    self.query_one("#silence-duration", Input).value,
                                    self.query_one("#silence-comment", Input).value)
        except ValueError as err:
            error = self.query_one("#silence-error", Static)
            error.update(f"✖ {err}")
            error.display = True
            return
        self.dismiss(request)

    @on(Button.Pressed, "#silence-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
