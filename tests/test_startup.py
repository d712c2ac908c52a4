"""The console's start-up path: what it imports before the first frame, when the agent starts,
the theme applied before the app runs, and the PromQL parser's cached tables."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap

import pytest
from lark.exceptions import UnexpectedInput

from qbconsole.rules.promql import parser as promql_parser
from qbconsole.rules.promql.errors import PromQLSyntaxError
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
    assert path is not None and path.is_relative_to(tmp_path) and path.name.endswith(".lark.json")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert promql_parser.lark_cache_path() is None


def test_the_parser_cache_is_written_private_whole_and_as_json(tmp_path):
    cache = tmp_path / "grammar.lark.json"
    old = os.umask(0)
    try:
        promql_parser.build_lark(cache)
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.name]  # no temporary file left
    assert isinstance(json.loads(cache.read_text("utf-8")), dict)


class _Marker:
    """Unpickling this creates a file: the sign that a cache file was unpickled."""

    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        return (type(self.path).touch, (self.path,))


def test_a_pickle_at_the_cache_path_is_never_unpickled(tmp_path):
    cache, marker = tmp_path / "grammar.lark.json", tmp_path / "unpickled"
    sha = b"0" * 64  # the shape of lark's own cache file: a hash line, then pickles
    cache.write_bytes(sha + b"\n" + pickle.dumps(_Marker(marker)) + pickle.dumps(_Marker(marker)))
    cache.chmod(0o600)
    parser = promql_parser.build_lark(cache)
    assert not marker.exists()
    assert parser.parse(EXPRS[0]) == promql_parser.build_lark().parse(EXPRS[0])
    assert isinstance(json.loads(cache.read_text("utf-8")), dict)  # replaced by tables of ours


def _doctored_cache(path) -> None:
    """A well-formed cache whose tables read '~' as '+': a parser loaded from it says so."""
    promql_parser.build_lark(path)
    plus = '{"name":"PLUS","pattern":{"value":"+"'
    text = path.read_text("utf-8")
    assert text.count(plus) == 1
    path.write_text(text.replace(plus, plus.replace('"+"', '"~"')), "utf-8")
    path.chmod(0o600)


def _loaded_from_cache(cache) -> bool:
    try:
        promql_parser.build_lark(cache).parse("1 ~ 2")
    except UnexpectedInput:
        return False
    return True


def test_a_cache_only_its_user_could_have_written_is_loaded(tmp_path):
    cache = tmp_path / "grammar.lark.json"
    _doctored_cache(cache)
    stamp = cache.stat().st_mtime_ns
    assert _loaded_from_cache(cache)  # the doctored tables are what a loaded parser uses
    assert cache.stat().st_mtime_ns == stamp
    with pytest.raises(PromQLSyntaxError):
        promql_parser.parse("1 ~ 2")


def _other_owner(cache, monkeypatch) -> None:
    if os.geteuid() == 0:
        os.chown(cache, 65534, 65534)
    else:  # the file is ours: this process is made to see itself as someone else
        euid = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: euid + 1)


def _symlink(cache, monkeypatch) -> None:
    target = cache.with_name("elsewhere.json")
    cache.rename(target)
    cache.symlink_to(target)


def _stale(cache, monkeypatch) -> None:
    stored = json.loads(cache.read_text("utf-8"))
    stored["key"] = "0" * 64  # tables of another grammar, lark or Python
    cache.write_text(json.dumps(stored), "utf-8")


@pytest.mark.parametrize("spoil", [
    pytest.param(_other_owner, id="owned-by-someone-else"),
    pytest.param(lambda cache, mp: cache.chmod(0o620), id="group-writable"),
    pytest.param(lambda cache, mp: cache.chmod(0o602), id="other-writable"),
    pytest.param(_symlink, id="symlink"),
    pytest.param(_stale, id="stale"),
])
def test_a_refused_cache_is_not_loaded_but_replaced(tmp_path, monkeypatch, spoil):
    cache = tmp_path / "grammar.lark.json"
    _doctored_cache(cache)
    spoil(cache, monkeypatch)
    assert not _loaded_from_cache(cache)
    monkeypatch.undo()
    st = os.lstat(cache)  # rewritten by this user: a regular 0600 file the next start loads
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o600
    assert promql_parser.build_lark(cache).parse(EXPRS[1]) == promql_parser.build_lark().parse(EXPRS[1])
    assert cache.stat().st_mtime_ns == st.st_mtime_ns
    if _symlink is spoil:
        target = cache.with_name("elsewhere.json")
        assert '"value":"~"' in target.read_text("utf-8")  # the link was replaced, not followed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a directory owned by another user")
def test_a_cache_in_a_directory_others_can_write_is_neither_loaded_nor_written(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    cache = shared / "grammar.lark.json"
    _doctored_cache(cache)
    os.chown(shared, 65534, 65534)
    shared.chmod(0o777)
    before = cache.read_bytes()
    assert not _loaded_from_cache(cache)
    assert cache.read_bytes() == before and sorted(p.name for p in shared.iterdir()) == [cache.name]
