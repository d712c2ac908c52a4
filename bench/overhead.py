"""What the console costs next to glances, watching the QuickBid demo under load.

    python bench/overhead.py [--json] [--seconds 60] [--scenario steady] [--no-glances]

The demo platform and its load generator run outside the measured processes
(``start_platform`` and ``python -m qbconsole.demo.load``). The console with
its embedded agent, ``qbconsole --db X --rules R`` where R is the demo's rules
with every source at a 1 s interval and ``settings.refresh: 1s`` (and the
ingest endpoint the simulated users' beacons go to), runs in a 100x30 tmux pane;
in the same run ``glances -t 1`` runs in another 100x30 pane (installed into
/tmp/glances-venv when missing). For each, every second: the CPU time and the
RSS of its process tree (psutil).

- ``qbconsole_cpu_percent`` / ``glances_cpu_percent``: CPU time over wall time
  in percent of one core, from launch to the end of the run;
- ``qbconsole_rss_mb``: the peak RSS of the console's process tree;
- ``ratio``: qbconsole CPU / glances CPU;
- ``qbconsole_steady_cpu_percent`` / ``glances_steady_cpu_percent`` / ``steady_ratio``: the
  same from ``STEADY_AFTER_S`` after each launch to the end (start-up left out: imports, the
  agent's activation, the first frame), and ``qbconsole_start_cpu_s`` / ``glances_start_cpu_s``,
  the CPU seconds each had used by then;
- ``floor_cpu_percent`` / ``floor_ratio``: the same CPU share for ``bench/floor_app.py``, the
  smallest Textual app that redraws a dozen figures every second and does nothing else, in a
  third pane of the same run, and its ratio to glances: what the stack alone costs, the part of
  ``ratio`` no work in the console can remove;
- ``first_frame_s``: from launch to the first ``tmux capture-pane`` that shows
  the header (the section bar), with Python's bytecode cache warm as after
  ``pip install`` (a first launch, left running until its agent is active, compiles
  and caches every module a run imports: the CPU figures are warm too);
  ``first_frame_cold_s`` is that first launch, which compiles every module (what a
  checkout with PYTHONDONTWRITEBYTECODE sees every time). Panes
  get exactly the environment given here (``env -i``), bytecode cached under
  the run's temporary directory.

Targets on 2 cores: ratio <= 0.5, RSS <= 150 MB, first frame <= 1 s. Nothing
is asserted: the figures are printed. tmux runs on a private socket that is
killed at the end, with everything started here.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qbconsole.demo.run import INGEST_TOKEN_ENV, demo_rules, free_port  # noqa: E402
from qbconsole.demo.spawn import start_platform  # noqa: E402

GLANCES_VENV = Path("/tmp/glances-venv")
TARGETS = {"ratio": 0.5, "qbconsole_rss_mb": 150.0, "first_frame_s": 1.0}
STEADY_AFTER_S = 10.0


def glances_binary() -> Path:
    """glances from PATH, else from a throw-away venv under /tmp (created on first use)."""
    found = shutil.which("glances")
    if found:
        return Path(found)
    binary = GLANCES_VENV / "bin" / "glances"
    if not binary.exists():
        print("installing glances into /tmp/glances-venv ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(GLANCES_VENV)], check=True)
        subprocess.run([str(GLANCES_VENV / "bin" / "pip"), "install", "-q", "glances"], check=True)
    return binary


class Tmux:
    """A private tmux server: sessions of 100x30 panes, each running one argv."""

    def __init__(self) -> None:
        self.socket = f"qbbench-{os.getpid()}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, "-f", os.devnull, *args], capture_output=True,
                              text=True, timeout=30, check=check)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        """Start ``argv`` in a new session with exactly ``env`` (``env -i``: nothing inherited)."""
        pairs = [f"{k}={v}" for k, v in env.items()]
        self.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", "--", "env", "-i", *pairs, *argv)
        return int(self.run("display-message", "-p", "-t", name, "#{pane_pid}").stdout.strip())

    def screen(self, name: str) -> str:
        done = self.run("capture-pane", "-p", "-t", name, check=False)
        return done.stdout if done.returncode == 0 else ""

    def kill_session(self, name: str) -> None:
        self.run("kill-session", "-t", name, check=False)

    def kill(self) -> None:
        self.run("kill-server", check=False)


class TreeMeter:
    """CPU time and RSS of a process and its descendants, sampled on demand."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.started = time.monotonic()
        self.cpu_s: dict[int, float] = {}  # pid -> last seen CPU seconds (kept after a child exits)
        self.peak_rss = 0
        self.samples: list[tuple[float, float, int]] = []  # (elapsed s, total CPU s, RSS bytes)

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    self.cpu_s[p.pid] = t.user + t.system + t.children_user + t.children_system
                    rss += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        self.peak_rss = max(self.peak_rss, rss)
        self.samples.append((time.monotonic() - self.started, sum(self.cpu_s.values()), rss))

    def cpu_percent(self) -> float:
        elapsed, cpu, _ = self.samples[-1]
        return 100.0 * cpu / elapsed

    def cpu_at(self, after_s: float) -> tuple[float, float]:
        """(elapsed s, CPU s) of the first sample at or after ``after_s`` seconds from launch."""
        return next(((t, c) for t, c, _ in self.samples if t >= after_s), self.samples[-1][:2])

    def steady_cpu_percent(self, after_s: float) -> float | None:
        """CPU over wall time from ``after_s`` seconds after launch to the last sample."""
        (t0, c0), (t1, c1) = self.cpu_at(after_s), self.samples[-1][:2]
        return 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None


def bench_rules(platform_url: str, platform_db: Path, ingest_port: int) -> dict:
    """The demo's rules, every source at 1 s and the console refreshing every second."""
    rules = demo_rules(platform_url, platform_db, ingest_port)
    rules["settings"]["refresh"] = "1s"
    for source in rules["sources"]:
        source["interval"] = "1s"
        source.pop("timeout", None)
    return rules


def wait_for_frame(tmux: Tmux, name: str, started: float, timeout: float = 30.0) -> float | None:
    """Seconds from ``started`` to the first capture showing the section bar."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        lines = tmux.screen(name).splitlines()
        if lines and "Overview" in lines[0] and "Sources" in lines[0]:
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def wait_for_text(tmux: Tmux, name: str, text: str, timeout: float) -> bool:
    """Whether ``text`` shows in the pane within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in tmux.screen(name):
            return True
        time.sleep(0.1)
    return False


def run(seconds: float, scenario: str, with_glances: bool, with_floor: bool = True) -> dict:
    work = Path(tempfile.mkdtemp(prefix="qb-overhead-"))
    tmux = Tmux()
    env = {**os.environ, INGEST_TOKEN_ENV: secrets.token_urlsafe(16)}
    platform = load = None
    try:
        platform = start_platform(str(work / "quickbid.db"), env=env, stderr=subprocess.DEVNULL)
        ingest_port = free_port()
        rules = work / "rules.yaml"
        rules.write_text(yaml.safe_dump(bench_rules(platform.url, work / "quickbid.db", ingest_port),
                                        sort_keys=False))
        load = subprocess.Popen([sys.executable, "-m", "qbconsole.demo.load", "--target", platform.url,
                                 "--ingest", f"http://127.0.0.1:{ingest_port}", "--scenario", scenario,
                                 "--duration", str(seconds + 60)],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(2)  # the crowd is there before anyone watches
        pane_env = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "HOME": str(work),
                    "XDG_CONFIG_HOME": str(work / "config"), "PATH": os.environ.get("PATH", ""),
                    "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(work / "pycache"),
                    INGEST_TOKEN_ENV: env[INGEST_TOKEN_ENV]}
        console = [sys.executable, "-m", "qbconsole", "--rules", str(rules)]
        # Cold: no bytecode cached yet (every module compiled from source, as in a checkout run with
        # PYTHONDONTWRITEBYTECODE). That launch writes the cache; the measured one starts warm, as an
        # installed package (pip compiles its .pyc files) does.
        launched = time.monotonic()
        cold_pid = tmux.start("cold", [*console, "--db", str(work / "cold.db")], pane_env)
        first_frame_cold = wait_for_frame(tmux, "cold", launched)
        # Let it run until its agent is active, so what the agent imports after the first frame
        # (collectors, httpx, prometheus_client, the rules engine) is compiled and cached too, as
        # after pip install: under PYTHONPYCACHEPREFIX every module, the stdlib's too, looks for
        # its bytecode there, and whatever the cold run did not import would be compiled again.
        wait_for_text(tmux, "cold", "(this console)", 30.0)
        time.sleep(3)
        tmux.kill_session("cold")
        psutil.wait_procs([psutil.Process(cold_pid)] if psutil.pid_exists(cold_pid) else [], timeout=15)
        launched = time.monotonic()
        qb_pid = tmux.start("qbconsole", [*console, "--db", str(work / "qb.db")], pane_env)
        meters = {"qbconsole": TreeMeter(qb_pid)}
        first_frame = wait_for_frame(tmux, "qbconsole", launched)
        if with_glances:
            glances_env = {k: v for k, v in pane_env.items() if not k.startswith("PYTHON")}  # its own .pyc files
            meters["glances"] = TreeMeter(tmux.start("glances", [str(glances_binary()), "-t", "1"], glances_env))
        if with_floor:
            meters["floor"] = TreeMeter(tmux.start("floor", [sys.executable, str(ROOT / "bench" / "floor_app.py")],
                                                   pane_env))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for meter in meters.values():
                meter.sample()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - launched) % 1.0))
        for meter in meters.values():
            meter.sample()
        qb_screen = tmux.screen("qbconsole")
        result = {
            "seconds": seconds,
            "qbconsole_cpu_percent": round(meters["qbconsole"].cpu_percent(), 2),
            "qbconsole_rss_mb": round(meters["qbconsole"].peak_rss / 2**20, 1),
            "first_frame_s": round(first_frame, 3) if first_frame is not None else None,
            "first_frame_cold_s": round(first_frame_cold, 3) if first_frame_cold is not None else None,
            "qbconsole_agent_held_lease": "(this console)" in qb_screen,
            "cores": psutil.cpu_count(),
        }
        qb = meters["qbconsole"]
        result["qbconsole_steady_cpu_percent"] = _round(qb.steady_cpu_percent(STEADY_AFTER_S), 2)
        result["qbconsole_start_cpu_s"] = round(qb.cpu_at(STEADY_AFTER_S)[1], 2)
        if with_glances:
            glances = meters["glances"]
            result["glances_cpu_percent"] = round(glances.cpu_percent(), 2)
            result["glances_rss_mb"] = round(glances.peak_rss / 2**20, 1)
            result["ratio"] = round(result["qbconsole_cpu_percent"] / max(result["glances_cpu_percent"], 1e-9), 3)
            result["glances_steady_cpu_percent"] = _round(glances.steady_cpu_percent(STEADY_AFTER_S), 2)
            result["glances_start_cpu_s"] = round(glances.cpu_at(STEADY_AFTER_S)[1], 2)
            if result["qbconsole_steady_cpu_percent"] and result["glances_steady_cpu_percent"]:
                result["steady_ratio"] = round(result["qbconsole_steady_cpu_percent"]
                                               / result["glances_steady_cpu_percent"], 3)
        if with_floor:
            result["floor_cpu_percent"] = round(meters["floor"].cpu_percent(), 2)
            if with_glances:
                result["floor_ratio"] = round(result["floor_cpu_percent"] / max(result["glances_cpu_percent"], 1e-9), 3)
        return result
    finally:
        tmux.kill()
        if load is not None and load.poll() is None:
            load.terminate()
            try:
                load.wait(10)
            except subprocess.TimeoutExpired:
                load.kill()
        if platform is not None:
            platform.stop()
        shutil.rmtree(work, ignore_errors=True)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--seconds", type=float, default=60.0, help="how long both run (default 60)")
    p.add_argument("--scenario", default="steady", help="the load's scenario (default steady)")
    p.add_argument("--no-glances", action="store_true", help="measure the console alone")
    p.add_argument("--no-floor", action="store_true", help="leave out bench/floor_app.py")
    args = p.parse_args(argv)
    if shutil.which("tmux") is None:
        print("overhead: tmux is needed", file=sys.stderr)
        return 2
    result = run(args.seconds, args.scenario, not args.no_glances, not args.no_floor)
    result["targets"] = {k: v for k, v in TARGETS.items() if k in result}
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        if key != "targets":
            target = TARGETS.get(key)
            verdict = "" if target is None or value is None else ("  ok" if value <= target else f"  MISSED (target <= {target})")
            print(f"{key:28} {value}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
