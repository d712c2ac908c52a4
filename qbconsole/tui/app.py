"""The console app: sections as modes, the poll worker, themes, settings and the agent's lifecycle."""

from __future__ import annotations

import asyncio
import getpass
import importlib
import os
import signal
import threading
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState, get_current_worker

from qbconsole.store import Store
from qbconsole.store.alerts import AlertRow, acknowledge, add_silence
from qbconsole.tui.alertfmt import alert_expressions
from qbconsole.tui.data import FIGURES_WAIT_S, FiguresReader, Snapshot, WindowMemo, failed_snapshot, read_snapshot
from qbconsole.tui.groups import GROUPS
from qbconsole.tui.recent import RecentSamples
from qbconsole.tui.sections import BY_MODE, SECTIONS
from qbconsole.tui.settings import default_settings_path, load_settings, save_settings
from qbconsole.tui.targets import Target, targets_from_slos
from qbconsole.tui.timefmt import clock
from qbconsole.tui.themes import APP_CSS_PATH, DEFAULT_THEME, PACKAGE_THEME_DIR, load_themes

if TYPE_CHECKING:
    from qbconsole.tui.modals.ack import AckRequest
    from qbconsole.tui.modals.silence import SilenceRequest

SECTION_KEYS = Binding.Group("Sections", compact=True)
HANGUP_RETURN_CODE = 128 + signal.SIGHUP


class SnapshotReady(Message):
    """Posted by the poll worker with each snapshot (good or carrying a read error)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class OperatorWriteDone(Message):
    """Posted by an operator-write worker: what happened, and whether it was refused."""

    def __init__(self, text: str, refused: bool = False) -> None:
        super().__init__()
        self.text = text
        self.refused = refused


def default_operator() -> str:
    """The OS (or SSH) user, as ``qbconsole alerts ack`` records it."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


# Section mode -> "module:Screen class". A section's module (and what it imports: reports,
# actions, experiments ...) is imported when the section is first opened, not before the
# console's first frame.
SECTION_SCREENS = {"overview": "qbconsole.tui.screens.overview:OverviewScreen",
                   "alerts": "qbconsole.tui.screens.alerts:AlertsScreen",
                   "actions": "qbconsole.tui.screens.actions:ActionsScreen",
                   "reports": "qbconsole.tui.screens.reports:ReportsScreen",
                   "experiments": "qbconsole.tui.screens.experiments:ExperimentsScreen",
                   "sources": "qbconsole.tui.screens.sources:SourcesScreen"}
METRIC_NAMES = tuple(spec.name for group in GROUPS for spec in group.metrics)


def section_screen_class(mode: str) -> type[Screen]:
    """The Screen class of a section (importing its module on first use)."""
    module, _, name = SECTION_SCREENS[mode].partition(":")
    return getattr(importlib.import_module(module), name)


def new_section_screen(mode: str) -> Screen:
    """A new screen for the section ``mode``: what Textual calls to open a mode (``App.MODES``)."""
    return section_screen_class(mode)()


def default_config() -> object | None:
    """The built-in default rules (their SLOs are the source design's targets); None if unreadable."""
    from qbconsole.config import DEFAULT_RULES, ConfigError, load_config

    try:
        return load_config(DEFAULT_RULES)
    except (ConfigError, OSError):
        return None


class QBConsoleApp(App):
    """The QuickBid launch console. The UI thread never touches the store; the poll worker does."""

    TITLE = "qbconsole"
    CSS_PATH = APP_CSS_PATH
    MODES = {s.mode: partial(new_section_screen, s.mode) for s in SECTIONS}
    DEFAULT_MODE = "overview"
    BINDINGS = [
        *(Binding(s.key, f"section('{s.mode}')", s.title, group=SECTION_KEYS, tooltip=f"Go to {s.title}",
                  id=f"section.{s.mode}") for s in SECTIONS),
        Binding("t", "cycle_theme", "Theme", tooltip="Next theme (remembered)", id="app.theme"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="List every key", id="app.help"),
        Binding("q", "quit", "Quit", tooltip="Quit the console", id="app.quit"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True,
                tooltip="Command palette: sections, themes and actions by name", id="app.palette"),
    ]

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time, refresh: float = 1.0,
                 agent: object | None = None, settings_path: Path | None = None,
                 theme: str | None = None, operator: str | None = None,
                 alert_exprs: Mapping[str, str] | None = None, config: object | None = None,
                 metrics: object | None = None) -> None:
        """``operator`` is recorded as who acknowledged, silenced, created or stopped (default: the OS user);
        ``alert_exprs`` maps alert rule names to expressions (default: the agent's config); ``config``
        is the rules file whose ``slos`` set the Overview's targets (default: the agent's, else the
        built-in default rules); ``metrics`` is what the Overview and charts read series from
        (default: the store; a ``PrometheusReader`` with a Prometheus datasource)."""
        super().__init__()
        self._config = config if config is not None or agent is not None else default_config()
        self._targets_of: tuple[object, dict[str, Target]] = (object(), {})
        self.store = store
        self.metrics = store if metrics is None else metrics
        self.operator = operator or default_operator()
        self._alert_exprs = dict(alert_exprs) if alert_exprs is not None else None
        self._exprs_of: tuple[object, dict[str, str]] = (None, {})
        self.detail_alert_id: int | None = None
        self.clock = clock
        self.refresh_s = max(0.05, float(refresh))
        self.agent = agent
        self.own_holder: str | None = getattr(agent, "holder", None)
        self.snapshot: Snapshot | None = None
        self.snapshot_signal: Signal[Snapshot] = Signal(self, "snapshot")
        self.settings_path = settings_path or default_settings_path()
        # Start-up file reads happen here, before the UI loop runs; problems are shown on mount.
        self.settings, settings_error = load_settings(self.settings_path)
        themes, self._startup_errors = load_themes([PACKAGE_THEME_DIR, self.settings_path.parent / "themes"])
        if settings_error:
            self._startup_errors.append(settings_error)
        for loaded in themes:
            self.register_theme(loaded)
        self.cycle_names = [t.name for t in themes]
        self._requested_theme = theme
        self._theme_warning: str | None = None
        self._use_theme_before_start(self._initial_theme())
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._agent_started: Worker | None = None
        self._in_run = False
        """True inside ``run()`` (a real terminal), False under ``run_test``."""
        self._hangup_watchdog: threading.Event | None = None

    # ---- lifecycle -------------------------------------------------------------
    def on_mount(self) -> None:
        self._shown_theme = self.theme
        if self._theme_warning:
            self.notify(self._theme_warning, severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, lambda theme: self._remember_theme(theme.name))
        for message in self._startup_errors:
            self.notify(message, title="Theme or settings file skipped", severity="error", timeout=15)
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_hangup)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread or no signals here: the terminal's EOF still ends input
        if self.agent is not None:
            self.call_after_refresh(self._start_agent)
        self._poll()

    def _start_agent(self) -> None:
        """Start the agent once the first frame is on the screen: its activation (collectors,
        rules, servers and their imports) holds the GIL for a while and would delay that frame."""
        if self.agent is not None and self._agent_started is None and not self._stopping.is_set():
            self._agent_started = self.run_worker(self.agent.start, thread=True, group="agent",  # type: ignore[attr-defined]
                                                  name="agent start", exit_on_error=False)

    async def on_unmount(self) -> None:
        self._stopping.set()
        self._wake.set()
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        if self.agent is not None:
            if self._agent_started is not None:
                await self._agent_started.wait()
            # stop() joins the agent's threads (up to a second or so): off the UI loop.
            await asyncio.to_thread(self.agent.stop)  # type: ignore[attr-defined]

    def _fatal_error(self) -> None:
        """Textual's crash report, without local variables: they can hold secrets.

        (Textual renders ``Traceback(show_locals=True)`` here; this is its own
        method with that one setting changed.)
        """
        import rich
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None, suppress=[rich])
        self._exit_renderables.append(Segments(self.console.render(traceback, self.console.options)))
        self._close_messages_no_wait()

    def _on_hangup(self) -> None:
        """SIGHUP: the terminal went away (SSH dropped); leave cleanly so the lease is released.
        In a real run a watchdog ends the process if that exit hangs (see ``tui/hangup.py``)."""
        if self._in_run and self._hangup_watchdog is None:
            from qbconsole.tui.hangup import start_watchdog

            self._hangup_watchdog = start_watchdog(self.agent, HANGUP_RETURN_CODE)
        self.exit(return_code=HANGUP_RETURN_CODE)

    def run(self, *args, **kwargs):
        """Textual's run; a hang-up watchdog started meanwhile is called off once it returns."""
        self._in_run = True
        try:
            return super().run(*args, **kwargs)
        finally:
            self._in_run = False
            if self._hangup_watchdog is not None:
                self._hangup_watchdog.set()

    def _initial_theme(self) -> str:
        wanted = self._requested_theme or self.settings.get("theme") or DEFAULT_THEME
        if wanted in self.available_themes:
            return wanted
        self._theme_warning = f"Unknown theme {wanted!r}; using {DEFAULT_THEME!r}. Known: {', '.join(self.cycle_names)}"
        return DEFAULT_THEME

    def _use_theme_before_start(self, name: str) -> None:
        """Make ``name`` the theme before the app runs. Setting ``App.theme`` runs Textual's
        watcher, which schedules a full CSS refresh: from ``on_mount`` that restyles and lays out
        the composed Overview a second time, ~60 ms before the first frame. This does what that
        watcher does (Textual 8.2 ``App._watch_theme``) except the refresh: the stylesheet gets
        the theme's variables now, and its first parse and application use them."""
        self.set_reactive(App.theme, name)
        theme = self.current_theme
        self.stylesheet.set_variables(self.get_css_variables())
        self.update_classes({**{name: False for name in self.classes if name.startswith("-theme-")},
                             f"-theme-{theme.name}": True, "-dark-mode": theme.dark,
                             "-light-mode": not theme.dark}, update=False)
        self._refresh_truecolor_filter(self.ansi_theme)

    # ---- data ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll", name="poll", exit_on_error=False)
    def _poll(self) -> None:
        """Read the store every ``refresh_s`` seconds and post a snapshot; errors become part of it."""
        worker = get_current_worker()
        good: Snapshot | None = None
        # Figures from another source than the store (Prometheus) are read in a thread of their
        # own: a slow or dead Prometheus must not hold up the alerts, lease and sources.
        remote = FiguresReader(self.metrics) if self.metrics is not self.store else None
        # From the store, each poll reads only the recent tail of every figure (tui/recent.py),
        # and derives the figures only from the points new since the previous poll (WindowMemo).
        local = RecentSamples(self.store) if remote is None else None
        memo = WindowMemo() if local is not None else None
        try:
            while not worker.is_cancelled and not self._stopping.is_set():
                now_ms = int(self.clock() * 1000)
                figures = remote.figures(now_ms, min(self.refresh_s, FIGURES_WAIT_S)) if remote else None
                try:
                    snapshot = good = read_snapshot(self.store, now_ms, detail_id=self.detail_alert_id,
                                                    metrics=local or self.metrics, figures=figures, memo=memo)
                except Exception as exc:  # any read failure is shown in the status line
                    snapshot = failed_snapshot(good, now_ms, exc)
                self.post_message(SnapshotReady(snapshot))
                self._wake.wait(self.refresh_s)
                self._wake.clear()
        finally:
            if remote is not None:
                remote.close()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        self.snapshot_signal.publish(message.snapshot)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed",
                        severity="error", timeout=15)

    def poll_now(self) -> None:
        """Read the store again without waiting for the next refresh."""
        self._wake.set()

    # ---- alerts: expressions, detail, operator writes --------------------------
    def alert_expressions(self) -> dict[str, str]:
        """Alert rule name -> expression: as given, else from the agent's (reloaded) config."""
        if self._alert_exprs is not None:
            return self._alert_exprs
        config = getattr(self.agent, "config", None)
        if self._exprs_of[0] is not config:
            self._exprs_of = (config, alert_expressions(config))
        return self._exprs_of[1]

    @property
    def config(self) -> object | None:
        """The rules file in use: as given, else the agent's (which it may reload)."""
        return self._config if self._config is not None else getattr(self.agent, "config", None)

    def targets(self) -> dict[str, Target]:
        """Store metric name -> target, from the config's SLOs (recomputed when the config changes)."""
        config = self.config
        if self._targets_of[0] is not config:
            self._targets_of = (config, targets_from_slos(getattr(config, "slos", None) or (), METRIC_NAMES))
        return self._targets_of[1]

    def open_alert_detail(self, alert_id: int) -> None:
        from qbconsole.tui.screens.alert_detail import AlertDetailScreen

        self.push_screen(AlertDetailScreen(alert_id))

    def watch_detail(self, alert_id: int | None) -> None:
        """Have the poll worker read this alert's detail (None: no detail is shown)."""
        if alert_id != self.detail_alert_id:
            self.detail_alert_id = alert_id
            if alert_id is not None:
                self.poll_now()

    def ask_acknowledge(self, alert: AlertRow) -> None:
        if alert.state not in ("pending", "firing"):
            self.notify(f"{alert.rule} (#{alert.id}) is {alert.state}; only active alerts can be acknowledged.",
                        title="Not acknowledged", severity="error")
            return
        from qbconsole.tui.modals.ack import AckModal

        self.push_screen(AckModal(alert), self._acknowledge)

    def ask_silence(self, alert: AlertRow, feed: Sequence[AlertRow] = ()) -> None:
        from qbconsole.tui.modals.silence import SilenceModal

        self.push_screen(SilenceModal(alert, feed), self._silence)

    def _acknowledge(self, request: AckRequest | None) -> None:
        if request is not None:
            self._write_ack(request)

    def _silence(self, request: SilenceRequest | None) -> None:
        if request is not None:
            self._write_silence(request)

    @work(thread=True, group="operator", name="acknowledge", exit_on_error=False)
    def _write_ack(self, request: AckRequest) -> None:
        now, who = int(self.clock() * 1000), self.operator
        try:
            alert = self.store.transaction(
                lambda conn: acknowledge(conn, request.alert_id, who, now, request.comment, request.timeout_ms))
        except ValueError as err:
            self.post_message(OperatorWriteDone(str(err), refused=True))
            return
        self.post_message(OperatorWriteDone(f"Acknowledged {alert.rule} (#{alert.id}) as {who}."))

    @work(thread=True, group="operator", name="silence", exit_on_error=False)
    def _write_silence(self, request: SilenceRequest) -> None:
        now, who = int(self.clock() * 1000), self.operator
        try:
            silence_id = self.store.transaction(lambda conn: add_silence(
                conn, request.matchers, now, now + request.duration_ms, who, request.comment, now))
        except ValueError as err:
            self.post_message(OperatorWriteDone(str(err), refused=True))
            return
        self.post_message(OperatorWriteDone(
            f"Silence {silence_id} by {who} until {clock(now + request.duration_ms)}: "
            + " ".join(str(m) for m in request.matchers)))

    def on_operator_write_done(self, message: OperatorWriteDone) -> None:
        if message.refused:
            self.notify(message.text, title="Refused by the store", severity="error", timeout=10)
        else:
            self.notify(message.text, timeout=5)
        self.poll_now()

    # ---- themes and settings ---------------------------------------------------
    def action_cycle_theme(self) -> None:
        names = self.cycle_names or [self.theme]
        index = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[index % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def _remember_theme(self, name: str) -> None:
        """Save a theme the user picked (not the one applied at start-up, nor a --theme override)."""
        if name == self._shown_theme:
            return
        self._shown_theme = name
        if self.settings.get("theme") == name:
            return
        self.settings = {**self.settings, "theme": name}
        self._save_settings(dict(self.settings))

    @work(thread=True, exclusive=True, group="settings", name="save settings", exit_on_error=False)
    def _save_settings(self, settings: dict) -> None:
        save_settings(self.settings_path, settings)

    # ---- sections, help, palette ------------------------------------------------
    def action_section(self, mode: str) -> None:
        if mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        from qbconsole.tui.screens.help import HelpScreen, key_rows

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(key_rows(self._binding_list(), self.screen)))

    def _binding_list(self) -> list[Binding]:
        return [b for b in self.BINDINGS if isinstance(b, Binding)]

    @staticmethod
    def _screen_commands(screen: Screen) -> Iterable[SystemCommand]:
        """The section's own keys (acknowledge, silence, filter ...) by name, for the palette."""
        section = BY_MODE.get(getattr(screen, "MODE", ""))
        where = f" ({section.title})" if section else ""
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.id:
                key = binding.key_display or binding.key
                yield SystemCommand(f"{binding.description}{where}", f"{key} · {binding.tooltip or binding.description}",
                                    partial(screen.run_action, binding.action))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for section in SECTIONS:
            yield SystemCommand(f"Go to {section.title}", f"{section.key} · {section.summary}",
                                partial(self.action_section, section.mode))
        yield SystemCommand("Next theme", "t · cycle the console's themes (remembered)", self.action_cycle_theme)
        for name in self.cycle_names:
            yield SystemCommand(f"Use theme {name}", "remembered for the next start",
                                partial(setattr, self, "theme", name))
        yield from self._screen_commands(screen)
        yield SystemCommand("Help: keys", "? · every key and what it does", self.action_help)
        yield from super().get_system_commands(screen)
