"""Debian's real Prometheus, promtool and Alertmanager for the tests: free loopback ports,
temporary directories, and every process stopped by the test that started it (by its handle)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import httpx
import pytest

from helpers import free_port, wait_for

BINARIES = {name: shutil.which(name) for name in ("prometheus", "promtool", "prometheus-alertmanager")}
PROMETHEUS, PROMTOOL, ALERTMANAGER = BINARIES.values()


def require_binaries(*names: str) -> None:
    """Skip unless these binaries are installed; under CI (``CI`` set), fail instead."""
    if all(BINARIES[name] for name in names):
        return
    message = f"{' and '.join(names)} are not installed (make system-deps)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Server:
    """A server process we started; ``stop()`` ends it (and only it)."""

    def __init__(self, name: str, argv: list[str], url: str, log: Path) -> None:
        self.name, self.url, self.log = name, url, log
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
        if not wait_for(self._ready, 30, 0.2):
            self.stop()
            raise RuntimeError(f"{name} did not get ready:\n{log.read_text()[-2000:]}")

    def _ready(self) -> bool:
        try:
            return self.proc.poll() is None and httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_prometheus(tmp: Path, scrape: Mapping[str, str] | None = None, data: str = "data") -> Server:
    """Prometheus scraping ``scrape`` (job -> host:port) every second, its TSDB in ``tmp / data``
    (kept for 100 years, so backfilled blocks of any age stay)."""
    jobs = "".join(f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"
                   for job, target in (scrape or {}).items())
    config = tmp / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                      + (jobs or "  []\n"))
    port = free_port()
    return Server("prometheus", [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / data}",
                                 "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
                  f"http://127.0.0.1:{port}", tmp / "prometheus.log")


def openmetrics(samples) -> str:
    """The samples as an OpenMetrics text file, one untyped family per metric name, ts in seconds."""
    by_name = defaultdict(list)
    for s in samples:
        by_name[s.name].append(s)
    lines = []
    for name in sorted(by_name):
        lines.append(f"# TYPE {name} unknown")
        for s in sorted(by_name[name], key=lambda s: (sorted(s.labels.items()), s.ts)):
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            lines.append(f"{name}{{{labels}}} {s.value!r} {s.ts // 1000}.{s.ts % 1000:03d}")
    return "\n".join(lines) + "\n# EOF\n"


def backfill(samples, tmp: Path, data: str = "data") -> None:
    """Write ``samples`` as TSDB blocks into ``tmp / data`` (promtool), for a Prometheus started on it."""
    (tmp / data).mkdir(exist_ok=True)
    (tmp / "backfill.om").write_text(openmetrics(samples))
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", str(tmp / "backfill.om"),
                    str(tmp / data)], check=True, capture_output=True, timeout=120)
