"""End to end: `qbconsole demo --headless` runs the platform, its load and an agent; afterwards
the store holds every metric group of the source design with plausible values."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from qbconsole.model import is_stale
from qbconsole.store import Store

pytestmark = pytest.mark.slow


def latest(store: Store, name: str) -> list[float]:
    return [p.value for p in store.latest(name) if not is_stale(p.value)]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    db = tmp / "demo.db"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "qbconsole", "--db", str(db), "demo", "--headless", "--duration", "28",
         "--scenario", "launch"],
        capture_output=True, text=True, timeout=120, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 90
    assert "Traceback" not in proc.stderr
    store = Store.open(db)
    yield store, tmp
    store.close()


def test_system_group(demo_store):
    store, _ = demo_store
    assert all(0 <= v <= 100 for v in latest(store, "system_cpu_percent"))
    assert all(0 < v < 100 for v in latest(store, "system_memory_percent"))


def test_application_group(demo_store):
    store, _ = demo_store
    assert latest(store, "quickbid:http_requests:rate1m")[0] > 0.5
    assert 0 < latest(store, "quickbid:http_request_duration_seconds:p95_5m")[0] < 30
    assert latest(store, "quickbid_workers") == [2.0]
    assert latest(store, "http_connections")
    assert latest(store, "quickbid:db_query_duration_seconds:avg5m")[0] > 0
    assert 0 <= latest(store, "quickbid:cache_hit:ratio5m")[0] <= 1
    assert latest(store, "probe_success") == [1.0]


def test_business_group(demo_store):
    store, _ = demo_store
    assert latest(store, "quickbid_bids_total")[0] > 0
    assert latest(store, "quickbid_signups_total")[0] > 0
    assert latest(store, "quickbid_active_auctions")[0] > 0
    assert latest(store, "quickbid:bids:increase1h")[0] > 0
    assert latest(store, "quickbid_db_auctions"), "the sql source read the platform's database"


def test_user_experience_group(demo_store):
    store, _ = demo_store
    loads = [v for s, pts in store.select("rum_page_load_seconds", 0, 2**62) for _, v in pts]
    assert len(loads) > 10 and all(0 < v < 60 for v in loads)
    assert latest(store, "quickbid:rum_page_load_seconds:p75_5m")


def test_security_group(demo_store):
    store, _ = demo_store
    kinds = {p.series.labels.get("kind") for p in store.latest("security_events_total")}
    assert kinds, "no security events arrived through the ingest endpoint"
    assert latest(store, "quickbid_login_failures_total")


def test_every_source_up_and_nothing_left_running(demo_store):
    store, tmp = demo_store
    statuses = {s.name: s.up for s in store.source_statuses()}
    assert statuses == {"system": True, "quickbid": True, "quickbid-health": True, "quickbid-db": True}
    assert store.lease_info() is None or store.lease_info().expires < time.time() * 1000
    leftover = subprocess.run(["pgrep", "-f", str(tmp / "demo.db.demo")], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the platform or the load outlived the demo"
