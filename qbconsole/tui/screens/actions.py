"""Actions: proposed optimizations, open ones first, then history; the audit log on ``u``.

``enter`` opens the confirmation dialog (the exact action, its evidence, the
pre-run checks; focus on No); approving or rejecting is written in a thread
worker with the app's operator as who decided. The console never runs an
action: the agent does, after checking it again. Proposals are read in a
thread worker at each poll of the app (about every second), so a decision
made in another console shows here within that time.
"""

from __future__ import annotations

import time
from typing import Mapping

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Static

from qbconsole.actions import AuditEntry, Proposal, approve, reject
from qbconsole.tui.actions_data import (
    ActionsData, action_text, audit_detail, counts_text, decided_text, read_actions, state_mark, verdict_mark, when_text,
)
from qbconsole.tui.data import Snapshot
from qbconsole.tui.modals.confirm_action import ConfirmActionModal, RejectModal
from qbconsole.tui.screens.base import SectionScreen

EMPTY = ("No proposals yet. Optimization rules live in rules.yaml under `optimizations` (a condition with "
         "`for`, the proposed action, its bounds, cooldown and expiry); when one holds, its proposal appears "
         "here. Nothing runs without approval: enter shows the exact action and its evidence, y approves, "
         "r rejects.")
WIDE_AT = 120
MEDIUM_AT = 96
COLUMNS = {
    "wide": (("state", "State"), ("rule", "Rule"), ("target", "Target"), ("action", "Action"),
             ("when", "When"), ("by", "Decided by"), ("verdict", "Verdict")),
    "medium": (("state", "State"), ("rule", "Rule"), ("action", "Action"), ("when", "When"),
               ("by", "Decided by"), ("verdict", "Verdict")),
    "narrow": (("state", "State"), ("rule", "Rule"), ("action", "Action"), ("when", "When")),
}
AUDIT_COLUMNS = (("ts", "Time"), ("actor", "Actor"), ("action", "Action"), ("target", "Target"),
                 ("detail", "Detail"))
MIN_FLEX = 12


def fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def proposal_cells(p: Proposal, now_ms: int, colours: Mapping[str, str]) -> dict[str, Text]:
    mark, verdict = state_mark(p.state), verdict_mark(p, now_ms)
    quiet = not p.is_open
    return {
        "state": Text(mark.text, style=f"{'bold ' if p.state == 'proposed' else ''}{colours.get(mark.colour, '')}"),
        "rule": Text(p.rule, style="dim" if quiet else "bold"),
        "target": Text(p.target, style="dim" if quiet else ""),
        "action": Text(action_text(p), style="dim" if quiet else ""),
        "when": Text(when_text(p, now_ms), justify="right",
                     style=colours.get("warning", "") if p.state == "proposed" else ""),
        "by": Text(decided_text(p), style="dim" if p.decided_by is None else ""),
        "verdict": Text(verdict.text.strip(), style=colours.get(verdict.colour, "")),
    }


def audit_cells(e: AuditEntry) -> dict[str, Text]:
    return {
        "ts": Text(time.strftime("%m-%d %H:%M:%S", time.localtime(e.ts / 1000))),
        "actor": Text(e.actor, style="dim" if e.actor == "engine" else "bold"),
        "action": Text(e.action),
        "target": Text(e.target),
        "detail": Text(audit_detail(e), style="dim"),
    }


def table_rows(cells: list[dict[str, Text]], columns: tuple[tuple[str, str], ...], flex: str,
               width: int) -> list[tuple[Text, ...]]:
    """Rows for a table; the ``flex`` column gets what the others leave of ``width`` (cut with …)."""
    used = sum(max([len(label), *(c[key].cell_len for c in cells)]) + 2 for key, label in columns if key != flex)
    room = max(MIN_FLEX, width - used - 2 - 1)
    for c in cells:
        c[flex] = Text(fit(c[flex].plain, room), style=c[flex].style)
    return [tuple(c[key] for key, _ in columns) for c in cells]


class ActionsRead(Message):
    """Posted by the read worker."""

    def __init__(self, data: ActionsData) -> None:
        super().__init__()
        self.data = data


class DecisionDone(Message):
    """Posted by the decision worker: what happened, and whether the store refused it."""

    def __init__(self, text: str, refused: bool = False) -> None:
        super().__init__()
        self.text = text
        self.refused = refused


class ProposalTable(DataTable):
    """The proposals; ``enter`` opens the highlighted one's confirmation dialog."""

    BINDINGS = [Binding("enter", "select_cursor", "Review", key_display="⏎", id="actions.review",
                        tooltip="The exact action, its evidence and checks; approve or reject there")]


class ActionsScreen(SectionScreen):
    """Proposals awaiting approval and their history; the confirmation and rejection dialogs."""

    MODE = "actions"
    AUTO_FOCUS = "#actions-table"
    BINDINGS = [
        Binding("enter", "review", "Review", show=False, tooltip="Open the confirmation dialog",
                id="actions.open"),
        Binding("r", "reject", "Reject", tooltip="Reject the highlighted proposal (it never runs), with a note",
                id="actions.reject"),
        Binding("u", "audit", "Audit", tooltip="Show the audit log instead of the proposals (u again: back)",
                id="actions.audit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: ActionsData | None = None
        self.audit_shown = False
        self._columns: tuple[tuple[str, str], ...] = ()
        self._shown: tuple | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="actions-bar"):
            yield Static("reading proposals…", id="actions-summary", markup=False)
            yield Button("Review", id="actions-review-button", compact=True, tooltip="enter")
            yield Button("Reject", id="actions-reject-button", compact=True, tooltip="r")
            yield Button("Audit", id="actions-audit-button", compact=True, tooltip="u")
        yield ProposalTable(id="actions-table", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="actions-detail", markup=False)
        yield Static(EMPTY, id="actions-empty", markup=False)

    DEFAULT_CSS = """
    #actions-bar { height: 1; margin: 1 1 0 1; }
    #actions-summary { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    #actions-bar Button { width: auto; min-width: 0; margin-left: 1; }
    #actions-table, #audit-table { height: 1fr; margin: 1 1 0 1; }
    #actions-detail { height: auto; max-height: 4; margin: 0 1; padding: 0 1; color: $text-muted; }
    #actions-empty { height: auto; padding: 1 2; color: $text-muted; }
    """

    def on_mount(self) -> None:
        audit = self.query_one("#audit-table", DataTable)
        audit.display = False
        for key, label in AUDIT_COLUMNS:
            audit.add_column(label, key=key)
        self.query_one("#actions-empty").display = False
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._reshow())
        self.read_now()

    def on_resize(self) -> None:
        self._reshow()

    def _reshow(self) -> None:
        if self.data is not None:
            self.show_data(self.data, force=True)

    # ---- reading -----------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.console.clock() * 1000)

    def show_body(self, snapshot: Snapshot) -> None:
        """Each poll of the app: read the proposals again while this section is on screen."""
        if self.app.current_mode == self.MODE:
            self.read_now()

    def read_now(self) -> None:
        self._read(self.audit_shown)

    @work(thread=True, exclusive=True, group="actions-read", name="read proposals", exit_on_error=False)
    def _read(self, with_audit: bool) -> None:
        now = self._now_ms()
        try:
            data = read_actions(self.console.store, now, with_audit=with_audit)
        except Exception as exc:  # shown in the summary line; the last good rows stay
            previous = self.data
            data = ActionsData(now, previous.proposals if previous else (), previous.audit if previous else None,
                               f"{type(exc).__name__}: {exc}")
        self.post_message(ActionsRead(data))

    def on_actions_read(self, message: ActionsRead) -> None:
        self.show_data(message.data)
        dialog = self.app.screen
        if isinstance(dialog, ConfirmActionModal):
            current = message.data.by_id(dialog.proposal.id)
            if current is not None and current != dialog.proposal:
                dialog.show_proposal(current)

    # ---- showing -------------------------------------------------------------------------------
    def show_data(self, data: ActionsData, *, force: bool = False) -> None:
        shown = (data, self.audit_shown, self.size.width)
        if shown == self._shown and not force:
            return
        self._shown = shown
        self.data = data
        table, audit = self.query_one(ProposalTable), self.query_one("#audit-table", DataTable)
        summary = self.query_one("#actions-summary", Static)
        empty = self.query_one("#actions-empty", Static)
        if self.audit_shown:
            self._fill_audit(audit, data.audit or ())
            text = f"Audit log, newest first (7 days): {len(data.audit or ())} rows · u: back to proposals"
            empty.update("The audit log is empty: every proposal, decision and run is written here.")
            empty.display = not data.audit
            audit.display, table.display = bool(data.audit), False
        else:
            self._fill_proposals(table, data)
            text = counts_text(data.proposals)
            empty.update(EMPTY)
            empty.display = not data.proposals
            table.display, audit.display = bool(data.proposals), False
        if data.error:
            text = f"✖ read failed: {data.error} · {text}"
        summary.update(text)
        self._show_detail()
        self.refresh_bindings()

    def _fill_proposals(self, table: ProposalTable, data: ActionsData) -> None:
        width = self.size.width
        columns = COLUMNS["wide" if width >= WIDE_AT else "medium" if width >= MEDIUM_AT else "narrow"]
        current = self.selected_id()
        if columns != self._columns:
            table.clear(columns=True)
            for key, label in columns:
                table.add_column(label, key=key)
            self._columns = columns
        cells = [proposal_cells(p, data.now_ms, self.app.theme_variables) for p in data.proposals]
        rows = table_rows(cells, columns, "action", table.size.width or width - 2)
        keys = [str(p.id) for p in data.proposals]
        if [k.value for k in table.rows] == keys:
            for key, row in zip(keys, rows):
                for (column, _), cell in zip(columns, row):
                    table.update_cell(key, column, cell, update_width=True)
        else:
            table.clear()
            for key, row in zip(keys, rows):
                table.add_row(*row, key=key)
            if current is not None and str(current) in keys:
                table.move_cursor(row=keys.index(str(current)))

    def _fill_audit(self, audit: DataTable, entries: tuple[AuditEntry, ...]) -> None:
        cells = [audit_cells(e) for e in entries]
        rows = table_rows(cells, AUDIT_COLUMNS, "detail", audit.size.width or self.size.width - 2)
        row = audit.cursor_row
        audit.clear()
        for entry, cells_row in zip(entries, rows):
            audit.add_row(*cells_row, key=str(entry.id))
        if entries:
            audit.move_cursor(row=min(row, len(entries) - 1))

    def _show_detail(self) -> None:
        """Under the table: the highlighted row in full words (what the columns cut or leave out)."""
        detail = self.query_one("#actions-detail", Static)
        for button in ("#actions-review-button", "#actions-reject-button"):
            self.query_one(button).display = not self.audit_shown
        text = ""
        if self.audit_shown:
            entry = self.selected_entry()
            if entry is not None:
                text = f"{entry.actor} {entry.action} {entry.target}: {audit_detail(entry)}"
        else:
            p = self.selected()
            if p is not None:
                by = f", decided by {p.decided_by}" if p.decided_by else ""
                verdict = verdict_mark(p, self.data.now_ms if self.data else 0).text.strip()
                by += f", {verdict}" if verdict != "—" else ""
                text = f"#{p.id} {p.rule} → {p.target} ({p.state}{by}) · {p.description}\nruns: {p.summary}"
        detail.update(text)
        detail.display = bool(text)

    # ---- the highlighted proposal ----------------------------------------------------------------
    def selected_id(self) -> int | None:
        table = self.query_one(ProposalTable)
        if not table.row_count or not table.display:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def selected(self) -> Proposal | None:
        proposal_id = self.selected_id()
        if self.data is None or proposal_id is None:
            return None
        return self.data.by_id(proposal_id)

    def selected_entry(self) -> AuditEntry | None:
        audit = self.query_one("#audit-table", DataTable)
        entries = (self.data.audit if self.data else None) or ()
        if not audit.row_count or not audit.display or audit.cursor_row >= len(entries):
            return None
        return entries[audit.cursor_row]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("review", "reject") and self.audit_shown:
            return False
        if action == "review":
            return True if self.selected() is not None else None
        if action == "reject":
            p = self.selected()
            return True if p is not None and p.state == "proposed" else None
        return True

    # ---- actions ---------------------------------------------------------------------------------
    def action_review(self) -> None:
        p = self.selected()
        if p is None:
            return
        config = getattr(self.console.agent, "config", None)
        self.app.push_screen(ConfirmActionModal(p, store=self.console.store, config=config, now_ms=self._now_ms,
                                                on_reject=self.ask_reject,
                                                alert_exprs=self.console.alert_expressions()),
                             lambda yes, pid=p.id: self._decide("approve", pid, "") if yes else None)

    def action_reject(self) -> None:
        p = self.selected()
        if p is not None and p.state == "proposed":
            self.ask_reject(p)

    def ask_reject(self, p: Proposal) -> None:
        self.app.push_screen(RejectModal(p),
                             lambda note, pid=p.id: self._decide("reject", pid, note) if note is not None else None)

    def action_audit(self) -> None:
        self.audit_shown = not self.audit_shown
        if self.data is not None:
            self.show_data(self.data, force=True)
        (self.query_one("#audit-table") if self.audit_shown else self.query_one(ProposalTable)).focus()
        self.read_now()

    @work(thread=True, group="actions-write", name="decide", exit_on_error=False)
    def _decide(self, verdict: str, proposal_id: int, note: str) -> None:
        now, who = self._now_ms(), self.console.operator
        decide = approve if verdict == "approve" else reject
        try:
            p = decide(self.console.store, proposal_id, who, now, note)
        except ValueError as err:
            self.post_message(DecisionDone(f"#{proposal_id} not {verdict}d: {err}", refused=True))
            return
        if verdict == "approve":
            text = (f"Approved #{p.id} {p.rule} → {p.target} as {who}. The agent checks it again and runs it "
                    "at its next tick.")
        else:
            text = f"Rejected #{p.id} {p.rule} → {p.target} as {who}: it will not run."
        self.post_message(DecisionDone(text))

    def on_decision_done(self, message: DecisionDone) -> None:
        if message.refused:
            self.notify(message.text, title="Refused by the store", severity="error", timeout=10)
        else:
            self.notify(message.text, timeout=6)
        self.read_now()

    @on(DataTable.RowSelected, "#actions-table")
    def _row_selected(self) -> None:
        self.action_review()

    @on(DataTable.RowHighlighted, "#actions-table")
    def _row_highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#audit-table")
    def _entry_highlighted(self) -> None:
        self._show_detail()

    @on(Button.Pressed, "#actions-review-button")
    def _review_pressed(self) -> None:
        self.action_review()

    @on(Button.Pressed, "#actions-reject-button")
    def _reject_pressed(self) -> None:
        self.action_reject()

    @on(Button.Pressed, "#actions-audit-button")
    def _audit_pressed(self) -> None:
        self.action_audit()
