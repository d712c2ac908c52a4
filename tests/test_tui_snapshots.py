"""Snapshot tests of the Overview and Sources sections with frozen data and a frozen clock.

Regenerate after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and read the SVGs' text before committing them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from qbconsole.model import Sample
from qbconsole.store import SourceStatus, Store
from qbconsole.tui.app import QBConsoleApp

NOW_MS = 1_767_268_800_000  # 2026-01-01 12:00:00 UTC
STEP_MS = 10_000
HOLDER = "oncall@qb-test:4242"
NET_ERROR = "ConnectError: [Errno 111] Connection refused while GET http://127.0.0.1:8080/metrics"


def seed_samples(now_ms: int = NOW_MS, minutes: int = 15) -> list[Sample]:
    """Deterministic system samples: 15 minutes at 10-second steps ending at ``now_ms``."""
    samples: list[Sample] = []
    rx = {"eth0": 1.0e9, "lo": 5.0e8}
    tx = {"eth0": 2.0e8, "lo": 5.0e8}
    steps = minutes * 60_000 // STEP_MS
    for i in range(steps + 1):
        ts = now_ms - (steps - i) * STEP_MS
        samples.append(Sample("system_cpu_percent", {}, ts, round(35 + 25 * math.sin(i / 9) + i % 7, 2)))
        samples.append(Sample("system_memory_percent", {}, ts, round(61 + i * 0.1, 2)))
        samples.append(Sample("system_disk_percent", {"mount": "/"}, ts, 72.5))
        samples.append(Sample("system_disk_percent", {"mount": "/boot"}, ts, 40.0))
        for nic in rx:  # counters, sampled a few ms after the gauges as a real tick would
            rx[nic] += STEP_MS / 1000 * (120_000 + 40_000 * math.sin(i / 5))
            tx[nic] += STEP_MS / 1000 * (30_000 + 10_000 * math.cos(i / 7))
            samples.append(Sample("system_network_received_bytes_total", {"nic": nic}, ts + 3, round(rx[nic])))
            samples.append(Sample("system_network_sent_bytes_total", {"nic": nic}, ts + 3, round(tx[nic])))
    return samples


def seed_store(path: Path, now_ms: int = NOW_MS, *, down: bool = True, lease: bool = True) -> Store:
    """A real store holding 15 minutes of system metrics, two sources (one down) and a live lease."""
    store = Store.open(path)
    store.write(seed_samples(now_ms))
    store.set_source_status(SourceStatus("system", True, now_ms - 3_000, 0.012, None))
    store.set_source_status(SourceStatus(
        "quickbid-api", not down, now_ms - 8_000, 2.0 if down else 0.05, NET_ERROR if down else None))
    if lease:
        assert store.lease_acquire(HOLDER, 6_000, now=now_ms - 60_000)
        assert store.lease_renew(HOLDER, 6_000, now=now_ms - 2_000)
    return store


@pytest.fixture
def utc(monkeypatch):
    """Clock times in the UI are local time: pin the zone so snapshots do not depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def frozen_app(tmp_path, utc):
    store = seed_store(tmp_path / "qb.db")
    app = QBConsoleApp(store, clock=lambda: NOW_MS / 1000, refresh=60.0,
                       settings_path=tmp_path / "config" / "settings.json", theme="dark")
    yield app
    store.close()


async def wait_for_data(pilot) -> None:
    """Until the first snapshot has reached the screen (the poll worker reads in a thread)."""
    for _ in range(500):
        if pilot.app.snapshot is not None:
            break
        await pilot.pause(0.01)
    assert pilot.app.snapshot is not None and pilot.app.snapshot.error is None
    await pilot.pause()


def test_overview_snapshot(snap_compare, frozen_app):
    assert snap_compare(frozen_app, terminal_size=(100, 30), run_before=wait_for_data)


def test_sources_snapshot(snap_compare, frozen_app):
    async def sources(pilot):
        await wait_for_data(pilot)
        await pilot.press("6")
        await pilot.pause()

    assert snap_compare(frozen_app, terminal_size=(100, 30), run_before=sources)


def test_overview_snapshot_80x24(snap_compare, frozen_app):
    assert snap_compare(frozen_app, terminal_size=(80, 24), run_before=wait_for_data)
