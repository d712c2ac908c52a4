"""The console's start-up path: what it imports before the first frame, when the agent starts,
the theme applied before the app runs, and the PromQL parser's cached tables."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from qbconsole.rules.promql import parser as promql_parser
from qbconsole.tui.app import QBConsoleApp, section_screen_class
from qbconsole.tui.sections import SECTIONS
from qbconsole.tui.widgets.chrome import SectionBar

# Modules the first frame does not need: the agent's working parts, the other sections, the
# report and statistics stacks, HTTP clients and servers, the web viewer's stack.
NOT_BEFORE_FIRST_FRAME = (
    "scipy", "numpy", "aiohttp", "jinja2", "httpx", "smtplib", "prometheus_client",
    "qbconsole.actions.engine", "qbconsole.actions.dryrun", "qbconsole.alertmanager", "qbconsole.collect",
    "qbconsole.exporter", "qbconsole.ingest", "qbconsole.notify.channels", "qbconsole.report",
    "qbconsole.rules.engine", "qbconsole.rules.promql.evaluator", "qbconsole.experiments.analyze",
    "qbconsole.tui.screens.alerts", "qbconsole.tui.screens.actions", "qbconsole.tui.screens.reports",
    "qbconsole.tui.screens.experiments", "qbconsole.tui.screens.sources", "qbconsole.tui.screens.help",
)

# What `qbconsole` (cmd_run) does before app.run(), then the app headless until the agent is
# started (after the first frame): the modules loaded by then, as JSON.
START_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from qbconsole.cli import build_parser, chart_source, load_rules, open_store, rules_path
    from qbconsole.config import DEFAULT_RULES

    args = build_parser().parse_args(["--rules", str(DEFAULT_RULES), "--db", sys.argv[1]])
    config = load_rules(rules_path(args))
    store = open_store(args, config)
    from qbconsole.agent import Agent
    from qbconsole.tui.app import QBConsoleApp

    metrics, _ = chart_source(store, config.datasource, None)
    agent = Agent(store, rules_path(args), config=config)
    seen = {}

    class FirstFrameAgent:
        holder, config = agent.holder, agent.config

        def start(self):
            seen["modules"] = sorted(sys.modules)

        def stop(self):
            pass

    app = QBConsoleApp(store, agent=FirstFrameAgent(), metrics=metrics,
                       settings_path=Path(sys.argv[1]).with_name("settings.json"))

    async def main():
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(100):
                if "modules" in seen:
                    break
                await pilot.pause(0.05)

    asyncio.run(main())
    store.close()
    print(json.dumps(seen.get("modules")))
""")


def test_the_console_imports_only_what_its_first_frame_needs(tmp_path):
    done = subprocess.run([sys.executable, "-c", START_SCRIPT, str(tmp_path / "qb.db")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert modules is not None, "the agent was never started"
    assert "qbconsole.tui.screens.overview" in modules and "qbconsole.config" in modules
    loaded = sorted(m for m in modules if any(m == name or m.startswith(name + ".")
                                               for name in NOT_BEFORE_FIRST_FRAME))
    assert loaded == []


class FrameCountingApp(QBConsoleApp):
    """Counts the frames with the section bar in them it sends to the (headless) terminal, and
    notes how many there were when it started its agent."""

    frames = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames_at_agent_start: list[int] = []

    def _display(self, screen, renderable) -> None:
        if renderable is not None and any(bar.region.width for bar in screen.query(SectionBar)):
            self.frames += 1
        super()._display(screen, renderable)

    def _start_agent(self) -> None:
        self.frames_at_agent_start.append(self.frames)
        super()._start_agent()


class RecordingAgent:
    holder = "me@here:1"
    config = None

    def __init__(self) -> None:
        self.started = self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1


async def test_the_agent_starts_once_the_first_frame_is_drawn(store, tmp_path):
    agent = RecordingAgent()
    app = FrameCountingApp(store, agent=agent, settings_path=tmp_path / "settings.json")
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(100):
            if agent.started:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        assert agent.started == 1
        assert len(app.frames_at_agent_start) == 1 and app.frames_at_agent_start[0] >= 1
    assert agent.stopped == 1


@pytest.mark.parametrize("name", ["light", "high-contrast"])
async def test_the_start_up_theme_styles_as_a_theme_switched_to_later(store, tmp_path, name):
    def make(theme):
        return QBConsoleApp(store, theme=theme, settings_path=tmp_path / "settings.json")

    started = make(name)
    async with started.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        first = (started.theme, started.screen.styles.background, started.screen.styles.color,
                 started.screen.query_one(SectionBar).styles.background,
                 sorted(c for c in started.classes if c.startswith("-")))
    switched = make("dark")
    async with switched.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        switched.theme = name
        await pilot.pause(0.2)
        later = (switched.theme, switched.screen.styles.background, switched.screen.styles.color,
                 switched.screen.query_one(SectionBar).styles.background,
                 sorted(c for c in switched.classes if c.startswith("-")))
    assert first == later
    assert f"-theme-{name}" in first[-1]


def test_sections_open_their_own_screens():
    for section in SECTIONS:
        assert section_screen_class(section.mode).MODE == section.mode
    assert isinstance(QBConsoleApp.MODES["overview"](), section_screen_class("overview"))


# ---- the parser's cached tables ------------------------------------------------------------
EXPRS = ['sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / ignoring(code) group_left 2 > 0.1',
         'histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m]))) unless absent(up)']


def test_the_parser_tables_are_cached_and_rebuilt_when_unreadable(tmp_path):
    cache = tmp_path / "grammar.lark"
    fresh = promql_parser.build_lark()
    written = promql_parser.build_lark(cache)
    assert cache.stat().st_size > 0
    stamp = cache.stat().st_mtime_ns
    loaded = promql_parser.build_lark(cache)
    assert cache.stat().st_mtime_ns == stamp  # read, not rewritten
    for expr in EXPRS:
        assert loaded.parse(expr) == written.parse(expr) == fresh.parse(expr)
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # a torn write
    rebuilt = promql_parser.build_lark(cache)
    assert [rebuilt.parse(e) for e in EXPRS] == [fresh.parse(e) for e in EXPRS]
    assert promql_parser.build_lark(cache).parse(EXPRS[0]) == fresh.parse(EXPRS[0])  # rewritten whole


def test_the_parser_cache_lives_where_bytecode_does(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    path = promql_parser.lark_cache_path()
    assert path is not None and path.is_relative_to(tmp_path) and path.suffix == ".lark"
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert promql_parser.lark_cache_path() is None
