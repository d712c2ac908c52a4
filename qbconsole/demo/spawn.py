"""Start the demo platform as a child process and wait until it listens (for tests and the demo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Mapping, Sequence


class PlatformProcess:
    """A running ``python -m qbconsole.demo.platform``; ``url`` is where it listens."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, pid: int) -> None:
        self.proc = proc
        self.url = url
        self.pid = pid

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, wait, SIGKILL if it does not go; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return int(self.proc.returncode)

    def __enter__(self) -> "PlatformProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_platform(db: str, args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                   stderr: IO[Any] | int | None = None, timeout: float = 30.0) -> PlatformProcess:
    """Run the platform on a free loopback port with ``db``; raise RuntimeError if it is not ready."""
    with tempfile.TemporaryDirectory(prefix="quickbid-") as tmp:
        ready = os.path.join(tmp, "ready.json")
        argv = [sys.executable, "-m", "qbconsole.demo.platform", "--port", "0", "--db", db,
                "--ready-file", ready, *args]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr,
                                env=dict(os.environ if env is None else env))
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if proc.poll() is not None:
                raise RuntimeError(f"platform exited with status {proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"platform not ready within {timeout:g} s")
            time.sleep(0.05)
        with open(ready, encoding="utf-8") as fh:
            info = json.loads(fh.read())
    return PlatformProcess(proc, info["url"], int(info["pid"]))
