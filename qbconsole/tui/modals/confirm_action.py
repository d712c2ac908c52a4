"""The approval dialog of a proposal, and the rejection dialog with its optional note.

:class:`ConfirmActionModal` is a ``ModalScreen[bool]``: True means "approve";
False means no approval. It shows the exact action (every argv element, the
whole request or SQL; long text wraps or scrolls, nothing is cut), the evidence,
bounds, expiry (counting down), cooldown and the pre-run checks of a dry run,
which runs in a thread worker and writes nothing. Focus starts on "No":
``enter`` straight away approves nothing. ``y`` approves, ``n``/``escape``
close without deciding, ``r`` closes and asks for a rejection note.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from qbconsole.actions import DryRun, Proposal, dry_run
from qbconsole.tui.actions_data import (
    bounds_lines, check_lines, cooldown_text, evidence_lines, expiry_text, outcome_lines, spec_lines, state_mark,
)
from qbconsole.tui.timefmt import clock


def proposal_heading(p: Proposal) -> Content:
    """``◆ PROPOSED  scale_up → quickbid  #12  high priority`` and the description under it."""
    mark = state_mark(p.state)
    return Content.assemble(
        (mark.text, f"bold ${mark.colour}"), "  ", (p.rule, "bold"), " → ", (p.target, "bold"),
        (f"  #{p.id}  {p.priority} priority", "$text-muted"),
        *((("\n" + p.description, ""),) if p.description else ()),
    )


class DryRunDone(Message):
    """Posted by the dialog's dry-run worker: the result, or why there is none."""

    def __init__(self, run: DryRun | None, error: str | None = None) -> None:
        super().__init__()
        self.run = run
        self.error = error


class ConfirmActionModal(ModalScreen[bool]):
    """Approve one proposal, knowing exactly what will run and why; the safe answer has the focus."""

    DEFAULT_CSS = """
    ConfirmActionModal { align: center middle; }
    #confirm-dialog {
        width: 104; max-width: 100%; height: 100%; max-height: 42;
        border: round $warning; background: $surface; padding: 0 1;
    }
    #confirm-body { height: 1fr; }
    #confirm-body .confirm-title { margin: 1 0 0 0; text-style: bold; color: $primary; }
    #confirm-spec { background: $panel; padding: 0 1; }
    #confirm-expiry { height: auto; margin: 1 0 0 0; text-style: bold; }
    #confirm-expiry.-expired { color: $error; }
    #confirm-error { display: none; height: auto; color: $error; text-style: bold; }
    #confirm-buttons { height: 1; margin: 1 0 0 0; align-horizontal: right; }
    #confirm-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("y", "approve", "Approve", id="confirm.approve"),
        Binding("n", "close", "No", id="confirm.no"),
        Binding("escape", "close", "No", show=False, id="confirm.escape"),
        Binding("r", "reject", "Reject…", id="confirm.reject"),
        Binding("up", "scroll('up')", "Scroll", show=False),
        Binding("down", "scroll('down')", "Scroll", show=False),
        Binding("pageup", "scroll('page_up')", "Scroll", show=False),
        Binding("pagedown", "scroll('page_down')", "Scroll", show=False),
    ]

    def __init__(self, proposal: Proposal, *, store, config: Any, now_ms: Callable[[], int],
                 on_reject: Callable[[Proposal], None] | None = None,
                 alert_exprs: Mapping[str, str] | None = None) -> None:
        """``alert_exprs`` (alert rule -> expression) gives alert values in the evidence their unit."""
        super().__init__()
        self.alert_exprs = alert_exprs
        self.proposal = proposal
        self.store = store
        self.config = config
        self.now_ms = now_ms
        self.on_reject = on_reject
        self.run: DryRun | None = None

    def compose(self) -> ComposeResult:
        p = self.proposal
        with Vertical(id="confirm-dialog") as dialog:
            dialog.border_title = "Approve this action?"
            dialog.border_subtitle = "y approve · n/escape close · r reject · ↑↓ scroll"
            yield Static(proposal_heading(p), id="confirm-heading")
            with VerticalScroll(id="confirm-body", can_focus=False):
                yield Label("Will run exactly (nothing is shortened)", classes="confirm-title")
                yield Static("\n".join(spec_lines(p.spec)), id="confirm-spec", markup=False)
                yield Label("Evidence", classes="confirm-title")
                yield Static("\n".join(evidence_lines(p, self.alert_exprs)), id="confirm-evidence", markup=False)
                yield Label("Bounds and cooldown", classes="confirm-title")
                yield Static("\n".join(bounds_lines(p) + [f"cooldown {cooldown_text(self.config, p.rule)}"]),
                             id="confirm-bounds", markup=False)
                yield Label("Checks before running (a dry run here, nothing runs; the agent repeats them)",
                            classes="confirm-title")
                yield Static("checking…", id="confirm-checks", markup=False)
                yield Label("State", classes="confirm-title")
                yield Static("", id="confirm-outcome", markup=False)
            yield Static("", id="confirm-expiry", markup=False)
            yield Static("", id="confirm-error", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes, approve", id="confirm-yes", variant="warning", compact=True, tooltip="y")
                yield Button("No", id="confirm-no", variant="primary", compact=True, tooltip="n, escape")
                yield Button("Reject…", id="confirm-reject", variant="error", compact=True, tooltip="r")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()
        self.show_proposal(self.proposal, check=True)
        self.set_interval(1.0, self._tick)

    # ---- what is shown --------------------------------------------------------------------
    def show_proposal(self, p: Proposal, *, check: bool = False) -> None:
        """Show the proposal as it now is (another console may have decided meanwhile)."""
        changed = p != self.proposal
        self.proposal = p
        deciding = p.state == "proposed"
        self.query_one("#confirm-heading", Static).update(proposal_heading(p))
        self.query_one("#confirm-outcome", Static).update("\n".join(outcome_lines(p, self.now_ms())))
        self.query_one("#confirm-yes", Button).disabled = not deciding
        self.query_one("#confirm-reject", Button).disabled = not deciding
        self.query_one("#confirm-dialog").border_title = "Approve this action?" if deciding else "Proposal (decided)"
        self._tick()
        if check or changed:
            self._dry_run(p.id)

    def _tick(self) -> None:
        text = expiry_text(self.proposal, self.now_ms())
        expiry = self.query_one("#confirm-expiry", Static)
        expiry.update(text)
        expiry.set_class(text.startswith("EXPIRED"), "-expired")

    def _show_error(self, text: str) -> None:
        error = self.query_one("#confirm-error", Static)
        error.update(text)
        error.display = bool(text)

    @work(thread=True, exclusive=True, group="dry-run", name="dry run", exit_on_error=False)
    def _dry_run(self, proposal_id: int) -> None:
        try:
            run = dry_run(self.store, proposal_id, self.config, now=self.now_ms())
        except Exception as err:  # a check that cannot be made is shown, the dialog stays usable
            self.post_message(DryRunDone(None, f"{type(err).__name__}: {err}"))
            return
        self.post_message(DryRunDone(run))

    def on_dry_run_done(self, message: DryRunDone) -> None:
        checks = self.query_one("#confirm-checks", Static)
        if message.run is None:
            checks.update(Content.styled(f"✖ the checks could not be made: {message.error}", "$error"))
            return
        self.run = message.run
        lines = [Content.styled(text, "$success" if ok else "bold $error") for ok, text in check_lines(message.run)]
        verdict = ("✔ it would run now if approved" if message.run.runnable else
                   "✖ as things are now, the agent would refuse it (reasons above)")
        lines.append(Content.styled(f"{verdict} · checked {clock(self.now_ms())}",
                                    "bold" if message.run.runnable else "bold $warning"))
        checks.update(Content("\n").join(lines))

    # ---- keys and buttons -------------------------------------------------------------------
    def _decided(self) -> bool:
        p = self.proposal
        if p.state == "proposed":
            return False
        by = f" by {p.decided_by}" if p.decided_by else ""
        self._show_error(f"✖ #{p.id} is already {p.state}{by}: there is nothing to decide.")
        return True

    @on(Button.Pressed, "#confirm-yes")
    def action_approve(self) -> None:
        if not self._decided():
            self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def action_close(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm-reject")
    def action_reject(self) -> None:
        if self._decided():
            return
        self.dismiss(False)
        if self.on_reject is not None:
            self.on_reject(self.proposal)

    def action_scroll(self, how: str) -> None:
        body = self.query_one("#confirm-body", VerticalScroll)
        {"up": body.scroll_up, "down": body.scroll_down, "page_up": body.scroll_page_up,
         "page_down": body.scroll_page_down}[how]()


class RejectModal(ModalScreen[str | None]):
    """Reject a proposal (it never runs), with an optional note; returns the note, None to cancel."""

    DEFAULT_CSS = """
    RejectModal { align: center middle; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="reject.cancel"),
    ]

    def __init__(self, proposal: Proposal) -> None:
        super().__init__()
        self.proposal = proposal

    def compose(self) -> ComposeResult:
        p = self.proposal
        with Vertical(id="reject-dialog", classes="dialog") as dialog:
            dialog.border_title = "Reject proposal"
            dialog.border_subtitle = "enter rejects · escape cancels"
            yield Static(proposal_heading(p), classes="dialog-heading")
            yield Static(f"Rejected, it never runs: {p.summary}", classes="dialog-note", markup=False)
            yield Label("Note (optional): why, for the audit log")
            yield Input(placeholder="e.g. traffic already falling; will scale by hand", id="reject-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Reject", id="reject-confirm", variant="error", compact=True)
                yield Button("Cancel", id="reject-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reject-note", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#reject-confirm")
    def confirm(self) -> None:
        self.dismiss(self.query_one("#reject-note", Input).value.strip())

    @on(Button.Pressed, "#reject-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
