"""The console in real terminals: tmux panes with different TERM and locale settings, no TTY,
and the terminal hanging up.

Each run starts its own tmux server on a private socket (``tmux -L``) with a
100x30 session running ``qbconsole`` on a temporary store, rules file and
``XDG_CONFIG_HOME``, waits for the first screen (section bar and status line),
then kills the session as an SSH disconnect would: the console must exit and
give the lease up. tmux sets the pane's TERM from its own option, so the
command is started through ``env TERM=...``. Only the tmux servers and
processes these tests start are ever stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from qbconsole.store import Store

from helpers import ROOT, wait_for

TMUX = shutil.which("tmux")
RULES = "sources:\n  - {name: system, kind: system, interval: 1s}\nsettings: {refresh: 500ms}\n"

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Tmux:
    """One private tmux server (its own socket) with one session."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.socket = f"qbtest-{os.getpid()}-{name}"
        self.session = name
        self.tmp = tmp

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([TMUX, "-L", self.socket, "-f", os.devnull, *args], capture_output=True, text=True,
                              timeout=20, check=check)

    def start(self, argv: list[str], env: dict[str, str]) -> int:
        """Start ``argv`` in a new 100x30 session; returns the pane's process id."""
        pairs = [f"{k}={v}" for k, v in env.items()]
        flags = [x for pair in pairs for x in ("-e", pair)]
        self.run("new-session", "-d", "-s", self.session, "-x", "100", "-y", "30", *flags, "--",
                 "env", *pairs, *argv)
        return int(self.run("display-message", "-p", "-t", self.session, "#{pane_pid}").stdout.strip())

    def screen(self) -> str:
        done = self.run("capture-pane", "-p", "-t", self.session, check=False)
        return done.stdout if done.returncode == 0 else ""

    def kill_session(self) -> None:
        self.run("kill-session", "-t", self.session, check=False)

    def kill_server(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def console_env(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "config").mkdir()
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def holder(db: Path) -> str | None:
    with Store.open(db) as store:
        info = store.lease_info()
    return info.holder if info is not None and info.expires > time.time() * 1000 else None


@pytest.mark.parametrize("term, locale", [
    ("xterm-256color", "C.UTF-8"),
    ("screen", "C.UTF-8"),
    ("linux", "C.UTF-8"),
    ("xterm-256color", "C"),
])
def test_first_screen_then_exit_on_hangup(tmp_path, console_env, term, locale):
    db = tmp_path / "qb.db"
    tmux = Tmux(tmp_path, f"qb-{term}-{locale}".replace(".", "_"))
    env = {**console_env, "TERM": term, "LANG": locale, "LC_ALL": locale}
    started = time.monotonic()
    pid = tmux.start([sys.executable, "-m", "qbconsole", "--db", str(db), "--rules", str(tmp_path / "rules.yaml")],
                     env)
    try:
        first = wait_for(lambda: (s := tmux.screen()) and "Overview" in s and "Sources" in s and s, 30, 0.1)
        assert first, f"no first screen:\n{tmux.screen()}"
        drawn_after = time.monotonic() - started
        # the embedded agent holds the lease and says so on the status line
        assert wait_for(lambda: "(this console)" in tmux.screen(), 20, 0.1), tmux.screen()
        assert holder(db) is not None and holder(db).endswith(f":{pid}")
        screen = tmux.screen()
        assert "Traceback" not in screen and "Error" not in screen.split("\n", 1)[0]
        assert len(screen.splitlines()) <= 30 and max(map(len, screen.splitlines())) <= 100
        assert stat.S_IMODE((tmp_path / "qb.db.log").stat().st_mode) == 0o600  # the console's log file

        tmux.kill_session()  # the terminal hangs up (an SSH session dropping does the same)
        process = psutil.Process(pid) if psutil.pid_exists(pid) else None
        if process is not None:
            try:
                process.wait(15)
            except psutil.TimeoutExpired:
                pytest.fail("the console kept running after its terminal hung up")
        assert holder(db) is None, "the lease was not given up"
        print(f"\n{term} {locale}: first screen after {drawn_after:.2f}s")
    finally:
        tmux.kill_server()
        if psutil.pid_exists(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("args", [[], ["run"], ["demo"]], ids=["default", "run", "demo"])
def test_without_a_tty_a_clear_one_line_error(tmp_path, console_env, args):
    done = subprocess.run([sys.executable, "-m", "qbconsole", "--db", str(tmp_path / "qb.db"),
                           "--rules", str(tmp_path / "rules.yaml"), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **console_env}, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qbconsole: ") and "terminal" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "qb.db").exists() or args == ["demo"]  # nothing started


def test_the_console_starts_without_the_statistics_stack():
    """scipy.stats costs ~70 MB and over a second to import; the console and the agent load it only
    when an experiment is analysed (bench/overhead.py found it on the start-up path)."""
    probe = ("import sys, qbconsole.cli, qbconsole.agent, qbconsole.tui.app\n"
             "print(sorted(m for m in ('scipy', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
