"""Pieces the test files share: polling, loopback ports and servers, qbconsole child processes.

Imported as ``from helpers import ...``: pytest puts ``tests/`` on ``sys.path`` (there is no
``tests/__init__.py``), the same way test files import from one another.

Everything that listens binds 127.0.0.1 and is stopped by the test or fixture that started it;
only processes a test started itself are ever killed, through its own handle.
"""

from __future__ import annotations

import ast
import functools
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qbconsole"


# ---- waiting ------------------------------------------------------------------------------------
def wait_for(predicate, timeout: float, step: float = 0.05):
    """Poll ``predicate`` every ``step`` seconds until it returns something truthy (returned), or
    ``timeout`` seconds pass; then one last try, whose value is returned either way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


async def until(pilot, predicate, timeout: float = 10.0, step: float = 0.02) -> None:
    """Let a Textual pilot run (``step`` seconds at a time) until ``predicate()`` holds; fail the
    test if it still does not after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(step)
    assert predicate(), "condition not met in time"


def now_ms() -> int:
    """The wall clock in integer milliseconds (the store's timestamps)."""
    return time.time_ns() // 1_000_000


# ---- loopback servers ---------------------------------------------------------------------------
def free_port() -> int:
    """A port nothing listens on right now on 127.0.0.1 (for servers that need it before binding)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_http(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """A threading HTTP server on 127.0.0.1 (``port`` 0: any free one), already serving from a
    daemon thread; its port is ``server.server_address[1]``. Stop it with :func:`stop_http`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop_http(server: ThreadingHTTPServer) -> None:
    """Stop serving and release the port."""
    server.shutdown()
    server.server_close()


def start_smtp(handler, port: int | None = None, **options):
    """An aiosmtpd server on 127.0.0.1 (a free port unless given), started; ``options`` go to its
    ``Controller`` (authenticator, TLS, ...). The caller stops it with ``.stop()``."""
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **options)
    controller.start()
    return controller


# ---- qbconsole processes ------------------------------------------------------------------------
def qbconsole_process(args: list[str], *, log: Path | None = None, **popen) -> subprocess.Popen:
    """``python -m qbconsole *args`` as a child process; with ``log``, its stdout and stderr go
    to that file (which the caller reads while it runs)."""
    argv = [sys.executable, "-m", "qbconsole", *args]
    if log is None:
        return subprocess.Popen(argv, **popen)
    with open(log, "wb") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, **popen)


def kill_if_running(proc: subprocess.Popen, timeout: float | None = None) -> None:
    """SIGKILL a child this test started, if it is still running, and reap it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout)


def holder_pid(store) -> int | None:
    """The pid of the process holding the store's lease, or None when no live lease is held."""
    info = store.lease_info()
    if info is None or info.expires < time.time() * 1000:
        return None
    return int(info.holder.rsplit(":", 1)[1])


# ---- the package's own source -------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def package_modules() -> list[tuple[Path, ast.Module]]:
    """Every module of the package, parsed (once per test session)."""
    return [(p, ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in sorted(PACKAGE.rglob("*.py"))]
