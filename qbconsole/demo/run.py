"""``qbconsole demo``: the QuickBid platform, its load and qbconsole watching them.

Starts the demo platform and the load generator as child processes on free
loopback ports, writes a rules file that points every source at them (system,
an HTTP probe, a Prometheus scrape of the platform, a SQL query of its
database, and the ingest endpoint the simulated users' beacons go to), then
opens the console on it, whose embedded agent collects, evaluates and
notifies. ``--headless --duration S`` runs the agent without the console and
exits cleanly after S seconds.

Secrets (the platform's admin token, the ingest token) are made fresh for each
run and passed only through the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from qbconsole.config import DEFAULT_RULES
from qbconsole.demo import experiment as bid_button

log = logging.getLogger("qbconsole.demo")

ADMIN_TOKEN_ENV = "QUICKBID_ADMIN_TOKEN"
INGEST_TOKEN_ENV = "QBCONSOLE_INGEST_TOKEN"


def free_port() -> int:
    """A loopback port free right now (the ingest endpoint binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_rules(platform_url: str, platform_db: Path, ingest_port: int) -> dict[str, Any]:
    """The shipped default rules, with sources and settings for the demo platform."""
    rules = yaml.safe_load(Path(DEFAULT_RULES).read_text(encoding="utf-8")) or {}
    settings = dict(rules.get("settings") or {})
    settings.update({
        "evaluation_interval": "5s",
        "ingest_listen": f"127.0.0.1:{ingest_port}",
        "ingest_token_env": INGEST_TOKEN_ENV,
        # Every simulated user's beacons and assignments come from loopback addresses.
        "ingest_rate": 2000,
    })
    rules["settings"] = settings
    rules["sources"] = [
        {"name": "system", "kind": "system", "interval": "5s"},
        {"name": "quickbid", "kind": "prometheus", "url": f"{platform_url}/metrics", "interval": "5s",
         "labels": {"job": "quickbid"}},
        {"name": "quickbid-health", "kind": "http", "url": f"{platform_url}/healthz", "interval": "5s",
         "timeout": "2s", "target": "quickbid"},
        {"name": "quickbid-db", "kind": "sql", "dsn": f"sqlite:///{platform_db.resolve()}", "interval": "30s",
         "metric": "quickbid_db_auctions",
         "query": "SELECT status, count(*) AS auctions FROM auctions GROUP BY status"},
    ]
    rules["experiments"] = [*(rules.get("experiments") or []), dict(bid_button.CONFIG)]
    return rules


def write_rules(path: Path, rules: dict[str, Any]) -> None:
    header = ("# Written by `qbconsole demo` for this run: the default rules, pointed at the\n"
              "# demo platform. Check it with `qbconsole rules check` like any other.\n")
    path.write_text(header + yaml.safe_dump(rules, sort_keys=False, allow_unicode=True), encoding="utf-8")


class Demo:
    """The platform and load processes of one demo run; ``stop()`` ends both."""

    def __init__(self, store_path: Path, scenario: str, *, log_dir: Path | None = None) -> None:
        self.store_path = Path(store_path)
        self.scenario = scenario
        self.dir = log_dir or self.store_path.with_name(self.store_path.name + ".demo")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.platform_db = self.dir / "quickbid.db"
        self.rules_path = self.dir / "rules.yaml"
        self.env = dict(os.environ)
        self.env.setdefault(ADMIN_TOKEN_ENV, secrets.token_urlsafe(24))
        self.env.setdefault(INGEST_TOKEN_ENV, secrets.token_urlsafe(24))
        self.platform = None
        self.load: subprocess.Popen | None = None
        self.ingest_port = free_port()
        self._logs: list[Any] = []

    def _log(self, name: str):
        """A log file of this run, readable by its owner only, like the store."""
        fd = os.open(self.dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an earlier run may be wider
        fh = os.fdopen(fd, "ab")
        self._logs.append(fh)
        return fh

    def start(self) -> None:
        from qbconsole.demo.spawn import start_platform

        # The in-process agent reads these: the optimizer's built-ins reach the platform with them.
        os.environ[ADMIN_TOKEN_ENV] = self.env[ADMIN_TOKEN_ENV]
        os.environ[INGEST_TOKEN_ENV] = self.env[INGEST_TOKEN_ENV]
        self.platform = start_platform(str(self.platform_db), ["--admin-token-env", ADMIN_TOKEN_ENV],
                                       env=self.env, stderr=self._log("platform.log"))
        os.environ["QUICKBID_URL"] = self.platform.url
        os.environ["QUICKBID_DB"] = str(self.platform_db.resolve())
        write_rules(self.rules_path, demo_rules(self.platform.url, self.platform_db, self.ingest_port))
        log.info("demo platform on %s (logs in %s)", self.platform.url, self.dir)

    def start_load(self) -> None:
        """Start the simulated users (after the agent, so the ingest endpoint is there for beacons)."""
        argv = [sys.executable, "-m", "qbconsole.demo.load", "--target", self.platform.url,
                "--ingest", f"http://127.0.0.1:{self.ingest_port}", "--ingest-token-env", INGEST_TOKEN_ENV,
                "--admin-token-env", ADMIN_TOKEN_ENV, "--scenario", self.scenario]
        self.load = subprocess.Popen(argv, stdout=self._log("load.out"), stderr=self._log("load.log"),
                                     stdin=subprocess.DEVNULL, env=self.env)

    def stop(self) -> None:
        if self.load is not None and self.load.poll() is None:
            self.load.send_signal(signal.SIGTERM)
            try:
                self.load.wait(5)
            except subprocess.TimeoutExpired:
                self.load.kill()
                self.load.wait(5)
        if self.platform is not None:
            self.platform.stop()
        for fh in self._logs:
            fh.close()
        self._logs.clear()


def wait_for_ingest(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run_headless(demo: Demo, agent, duration: float, stop: threading.Event) -> None:
    agent.start()
    if not wait_for_ingest(demo.ingest_port, 20):
        log.warning("the ingest endpoint did not come up: beacons will be lost")
    demo.start_load()
    stop.wait(duration)
