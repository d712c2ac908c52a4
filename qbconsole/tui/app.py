"""The console app: sections as modes, the poll worker, themes, settings and the agent's lifecycle."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState, get_current_worker

from qbconsole.store import Store
from qbconsole.tui.data import Snapshot, failed_snapshot, read_snapshot
from qbconsole.tui.screens.help import HelpScreen, key_rows
from qbconsole.tui.screens.overview import OverviewScreen
from qbconsole.tui.screens.placeholder import PlaceholderScreen
from qbconsole.tui.screens.sources import SourcesScreen
from qbconsole.tui.sections import SECTIONS
from qbconsole.tui.settings import default_settings_path, load_settings, save_settings
from qbconsole.tui.themes import APP_CSS_PATH, DEFAULT_THEME, PACKAGE_THEME_DIR, load_themes

SECTION_KEYS = Binding.Group("Sections", compact=True)
HANGUP_RETURN_CODE = 128 + signal.SIGHUP


class SnapshotReady(Message):
    """Posted by the poll worker with each snapshot (good or carrying a read error)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class QBConsoleApp(App):
    """The QuickBid launch console. The UI thread never touches the store; the poll worker does."""

    TITLE = "qbconsole"
    CSS_PATH = APP_CSS_PATH
    MODES = {
        s.mode: (OverviewScreen if s.mode == "overview" else SourcesScreen if s.mode == "sources"
                 else partial(PlaceholderScreen, s.mode))
        for s in SECTIONS
    }
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
                 theme: str | None = None) -> None:
        super().__init__()
        self.store = store
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
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._agent_started: Worker | None = None

    # ---- lifecycle -------------------------------------------------------------
    def on_mount(self) -> None:
        self.theme = self._shown_theme = self._initial_theme()
        self.theme_changed_signal.subscribe(self, lambda theme: self._remember_theme(theme.name))
        for message in self._startup_errors:
            self.notify(message, title="Theme or settings file skipped", severity="error", timeout=15)
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_hangup)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread or no signals here: the terminal's EOF still ends input
        if self.agent is not None:
            self._agent_started = self.run_worker(self.agent.start, thread=True, group="agent",  # type: ignore[attr-defined]
                                                  name="agent start", exit_on_error=False)
        self._poll()

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

    def _on_hangup(self) -> None:
        """SIGHUP: the terminal went away (SSH dropped); leave cleanly so the lease is released."""
        self.exit(return_code=HANGUP_RETURN_CODE)

    def _initial_theme(self) -> str:
        wanted = self._requested_theme or self.settings.get("theme") or DEFAULT_THEME
        if wanted in self.available_themes:
            return wanted
        self.notify(f"Unknown theme {wanted!r}; using {DEFAULT_THEME!r}. Known: {', '.join(self.cycle_names)}",
                    severity="warning", timeout=10)
        return DEFAULT_THEME

    # ---- data ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll", name="poll", exit_on_error=False)
    def _poll(self) -> None:
        """Read the store every ``refresh_s`` seconds and post a snapshot; errors become part of it."""
        worker = get_current_worker()
        good: Snapshot | None = None
        while not worker.is_cancelled and not self._stopping.is_set():
            now_ms = int(self.clock() * 1000)
            try:
                snapshot = good = read_snapshot(self.store, now_ms)
            except Exception as exc:  # any read failure is shown in the status line
                snapshot = failed_snapshot(good, now_ms, exc)
            self.post_message(SnapshotReady(snapshot))
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        self.snapshot_signal.publish(message.snapshot)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed",
                        severity="error", timeout=15)

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
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(key_rows(self._binding_list(), self.screen)))

    def _binding_list(self) -> list[Binding]:
        return [b for b in self.BINDINGS if isinstance(b, Binding)]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for section in SECTIONS:
            yield SystemCommand(f"Go to {section.title}", f"{section.key} · {section.summary}",
                                partial(self.action_section, section.mode))
        yield SystemCommand("Next theme", "t · cycle the console's themes (remembered)", self.action_cycle_theme)
        for name in self.cycle_names:
            yield SystemCommand(f"Use theme {name}", "remembered for the next start",
                                partial(setattr, self, "theme", name))
        yield SystemCommand("Help: keys", "? · every key and what it does", self.action_help)
        yield from super().get_system_commands(screen)
