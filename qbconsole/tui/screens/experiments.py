"""Experiments: the list with status and verdict, and the highlighted experiment's detail.

The detail shows per variant the users, conversions (or totals), rate (or mean), the
lift with its confidence interval drawn over a zero line, p-value and chance to win,
the sample-ratio check and the progress toward the sample needed. ``c`` opens the
form that creates an experiment, ``x`` stops the highlighted one after a
confirmation (focus on No).

Analysis can take half a second for a large experiment, so none of it runs in the
app's one-second poll: while this section is shown, thread workers analyse the
highlighted experiment every ``DETAIL_EVERY_S`` seconds and the whole list every
``LIST_EVERY_S`` (a stopped experiment's analysis never changes and is kept).
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from qbconsole.experiments import lifecycle
from qbconsole.experiments.analyze import analyze
from qbconsole.experiments.model import Experiment, ExperimentError, Spec
from qbconsole.experiments.verdict import decide
from qbconsole.tui.expfmt import ListRow, detail_content, running_text, status_mark, verdict_mark
from qbconsole.tui.modals.confirm import ConfirmModal
from qbconsole.tui.modals.experiment_form import ExperimentForm
from qbconsole.tui.screens.base import SectionScreen

DETAIL_EVERY_S = 5.0
LIST_EVERY_S = 30.0
EMPTY = ("No experiments yet. c creates one here; `qbconsole ab create NAME --metric conversion=purchase` "
         "or the experiments: section of rules.yaml also do.")
COLUMNS = (("name", "Experiment"), ("status", "Status"), ("users", "Users"), ("running", "Running"),
           ("verdict", "Verdict"))
STOP_REASON = "stopped from the console"


class ListRead(Message):
    def __init__(self, rows: list[ListRow]) -> None:
        super().__init__()
        self.rows = rows


class DetailRead(Message):
    def __init__(self, row: ListRow) -> None:
        super().__init__()
        self.row = row


class ExperimentWritten(Message):
    def __init__(self, text: str, refused: bool = False) -> None:
        super().__init__()
        self.text = text
        self.refused = refused


def analysed(conn, exp: Experiment, now_ms: int) -> ListRow:
    """One experiment analysed as of ``now_ms``; a failure is kept in the row, not raised."""
    try:
        analysis = analyze(conn, exp, now_ms)
        return ListRow(exp, analysis, decide(analysis))
    except Exception as exc:  # shown in the detail; the next read tries again
        return ListRow(exp, None, None, f"{type(exc).__name__}: {exc}")


class ExperimentTable(DataTable):
    """The list; the highlighted row is the experiment the detail shows."""


class ExperimentsScreen(SectionScreen):
    """The Experiments section (see the module docstring)."""

    MODE = "experiments"
    AUTO_FOCUS = "#experiments-table"
    BINDINGS = [
        Binding("c", "create", "Create", tooltip="Create an experiment (a form)", id="experiments.create"),
        Binding("x", "stop", "Stop", tooltip="Stop the highlighted experiment (asks first)", id="experiments.stop"),
        Binding("r", "reload", "Refresh", show=False, tooltip="Analyse every experiment again now",
                id="experiments.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, ListRow] = {}
        self.order: list[str] = []
        self._refresh_timers: list = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="experiments-summary", markup=False)
        table = ExperimentTable(id="experiments-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with VerticalScroll(id="experiment-detail", can_focus=True):
            yield Static(EMPTY, id="experiment-detail-text")

    def on_mount(self) -> None:
        self._refresh_timers = [self.set_interval(LIST_EVERY_S, self.read_list, pause=True),
                        self.set_interval(DETAIL_EVERY_S, self.read_detail, pause=True)]
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._show_all())

    def on_screen_resume(self) -> None:
        for timer in self._refresh_timers:
            timer.resume()
        self.read_list()

    def on_screen_suspend(self) -> None:
        for timer in self._refresh_timers:
            timer.pause()

    def on_resize(self) -> None:
        self._show_detail()

    # ---- reading (thread workers) -----------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.console.clock() * 1000)

    def read_list(self) -> None:
        self._read_list(self.now_ms(), dict(self.rows))

    def read_detail(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._read_detail(name, self.now_ms())

    @work(thread=True, exclusive=True, group="experiments list", name="experiments", exit_on_error=False)
    def _read_list(self, now_ms: int, known: dict[str, ListRow]) -> None:
        conn = self.console.store.read()
        rows = []
        for exp in lifecycle.list_all(conn):
            old = known.get(exp.name)
            if old is not None and old.analysis is not None and exp.status == "stopped" \
                    and old.experiment == exp:
                rows.append(old)  # a stopped experiment's figures are final
            else:
                rows.append(analysed(conn, exp, now_ms))
            if get_current_worker().is_cancelled:
                return
        self.post_message(ListRead(rows))

    @work(thread=True, exclusive=True, group="experiment detail", name="experiment", exit_on_error=False)
    def _read_detail(self, name: str, now_ms: int) -> None:
        conn = self.console.store.read()
        exp = lifecycle.find(conn, name)
        if exp is not None and not get_current_worker().is_cancelled:
            self.post_message(DetailRead(analysed(conn, exp, now_ms)))

    def on_list_read(self, message: ListRead) -> None:
        self.rows = {row.experiment.name: row for row in message.rows}
        self.order = [row.experiment.name for row in message.rows]
        self._show_all()

    def on_detail_read(self, message: DetailRead) -> None:
        name = message.row.experiment.name
        if name not in self.rows:
            self.order.append(name)
        self.rows[name] = message.row
        self._show_all()

    # ---- showing ---------------------------------------------------------------------------------
    def _show_all(self) -> None:
        self._show_table()
        self._show_summary()
        self._show_detail()

    def _cells(self, row: ListRow) -> tuple[Text, ...]:
        colours = self.app.theme_variables
        status = status_mark(row.experiment.status)
        verdict = verdict_mark(row.verdict, short=True) if row.error is None else verdict_mark(None)._replace(
            text="✖ analysis failed", colour="error")
        users = "…" if row.analysis is None else f"{row.analysis.users:,}"
        return (Text(row.experiment.name, style="bold"), Text(status.text, style=colours.get(status.colour, "")),
                Text(users, justify="right"), Text(running_text(row), justify="right"),
                Text(verdict.text, style=colours.get(verdict.colour, "")))

    def _show_table(self) -> None:
        table = self.query_one(ExperimentTable)
        current = self.selected_name()
        keys = list(self.order)
        if [k.value for k in table.rows] == keys:
            for key in keys:
                for (column, _), cell in zip(COLUMNS, self._cells(self.rows[key])):
                    table.update_cell(key, column, cell, update_width=True)
        else:
            table.clear()
            for key in keys:
                table.add_row(*self._cells(self.rows[key]), key=key)
            if current in keys:
                table.move_cursor(row=keys.index(current))
        table.display = bool(keys)

    def _show_summary(self) -> None:
        counts = {s: sum(r.experiment.status == s for r in self.rows.values()) for s in ("running", "draft", "stopped")}
        text = (f"{len(self.rows)} experiment{'s' if len(self.rows) != 1 else ''}: "
                + ", ".join(f"{n} {s}" for s, n in counts.items() if n)) if self.rows else "No experiments"
        self.query_one("#experiments-summary", Static).update(text + "  ·  c create · x stop")

    def _show_detail(self) -> None:
        text = self.query_one("#experiment-detail-text", Static)
        name = self.selected_name()
        row = self.rows.get(name) if name else None
        if row is None:
            text.update(EMPTY if not self.rows else "")
            return
        box = self.query_one("#experiment-detail", VerticalScroll)
        width = box.scrollable_content_region.width or self.size.width - 6
        text.update(detail_content(row.experiment, row.analysis, row.verdict, width, row.error))

    # ---- the highlighted experiment ----------------------------------------------------------------
    def selected_name(self) -> str | None:
        table = self.query_one(ExperimentTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def selected(self) -> ListRow | None:
        name = self.selected_name()
        return self.rows.get(name) if name else None

    @on(DataTable.RowHighlighted, "#experiments-table")
    def _highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()
        self.read_detail()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            row = self.selected()
            return True if row is not None and row.experiment.status != "stopped" else None
        return True

    # ---- create and stop -----------------------------------------------------------------------------
    def action_reload(self) -> None:
        self.read_list()

    def action_create(self) -> None:
        self.app.push_screen(ExperimentForm(self._creator()), self._created)

    def _creator(self) -> Callable[[Spec, bool], Experiment]:
        store, who, clock = self.console.store, self.console.operator, self.console.clock

        def create(spec: Spec, start: bool) -> Experiment:  # runs in the form's thread worker
            now = int(clock() * 1000)
            # origin "cli": the store knows only cli and config (an operator's command vs the rules file)
            return store.transaction(lambda conn: lifecycle.create(conn, spec, who, now, start=start))
        return create

    def _created(self, experiment: Experiment | None) -> None:
        if experiment is None:
            return
        self.notify(f"Created experiment {experiment.name} ({experiment.status}) as {experiment.created_by}.",
                    timeout=5)
        self.order.append(experiment.name)
        self.rows[experiment.name] = ListRow(experiment, None, None)
        self._show_all()
        table = self.query_one(ExperimentTable)
        table.move_cursor(row=self.order.index(experiment.name))
        self.read_list()

    def action_stop(self) -> None:
        row = self.selected()
        if row is None or row.experiment.status == "stopped":
            return
        exp = row.experiment
        verdict = f"Verdict now: {row.verdict.headline}." if row.verdict else ""
        note = (f"It stops counting exposures and events now and never runs again (users exposed before "
                f"and after would mix). {verdict} Recorded in the audit log as {self.console.operator}.")
        self.app.push_screen(ConfirmModal("Stop experiment", f"Stop {exp.name} ({exp.status})?", note,
                                          yes="Stop it", no="No"),
                             lambda yes: self._stop(exp.name) if yes else None)

    @work(thread=True, group="experiment writes", name="stop experiment", exit_on_error=False)
    def _stop(self, name: str) -> None:
        who, now = self.console.operator, self.now_ms()
        try:
            self.console.store.transaction(lambda conn: lifecycle.stop(conn, name, who, now, STOP_REASON))
        except ExperimentError as err:
            self.post_message(ExperimentWritten(str(err), refused=True))
            return
        self.post_message(ExperimentWritten(f"Stopped experiment {name} as {who}."))

    def on_experiment_written(self, message: ExperimentWritten) -> None:
        if message.refused:
            self.notify(message.text, title="Refused", severity="error", timeout=10)
        else:
            self.notify(message.text, timeout=5)
        self.read_list()
