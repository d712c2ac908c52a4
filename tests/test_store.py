"""Tests of the SQLite metric store (qbconsole.store) on real files in tmp_path."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbconsole.model import STALE_NAN, Sample, is_stale
from qbconsole.store import LeaseInfo, SourceStatus, Store, StoreClosed
from qbconsole.store import schema

MIN = 60_000


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "m.db")
    yield s
    s.close()


def prom_quantile(values: list[float], q: float) -> float:
    """Reference: Prometheus quantile_over_time, written out independently of the store."""
    v = sorted(values)
    rank = q * (len(v) - 1)
    lo = int(math.floor(rank))
    hi = min(len(v) - 1, lo + 1)
    frac = rank - lo
    return v[lo] + (v[hi] - v[lo]) * frac if frac else v[lo]


# ---- file, WAL, migrations

def test_file_created_0600_even_with_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        s = Store.open(tmp_path / "m.db")
        s.write([Sample("m", {}, 1, 1.0)])
    finally:
        os.umask(old)
    try:
        for f in tmp_path.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
        assert (tmp_path / "m.db-wal").exists()
    finally:
        s.close()


def test_wal_mode_and_user_version(store):
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS) >= 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"series", "samples", "rollups", "lease", "source_status", "meta"} <= tables
    finally:
        conn.close()


def test_reopen_keeps_data_and_appended_migration_applies_once(tmp_path):
    path = tmp_path / "m.db"
    with Store.open(path) as s:
        s.write([Sample("m", {"a": "1"}, 10, 2.5)])
    extra = schema.MIGRATIONS + ["CREATE TABLE extra (k TEXT PRIMARY KEY);"
                                 " CREATE TRIGGER extra_no_delete BEFORE DELETE ON extra"
                                 " BEGIN SELECT RAISE(ABORT, 'append-only; really'); END;"]
    conn = schema.connect(path)
    try:
        assert schema.migrate(conn, extra) == len(extra)
        assert schema.migrate(conn, extra) == len(extra)  # second run: nothing to do
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(extra)
        conn.execute("INSERT INTO extra VALUES ('x')")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM extra")
        # this code knows fewer migrations than the file has: refuse, don't corrupt
        with pytest.raises(schema.SchemaTooNew):
            schema.migrate(conn)
    finally:
        conn.close()
    with pytest.raises(schema.SchemaTooNew):
        Store.open(path)


# ---- writes and reads

def test_write_and_read_back(store):
    n = store.write([Sample("cpu", {"core": "0"}, 1000, 1.5), Sample("cpu", {"core": "1"}, 1000, 2.5),
                     Sample("mem", {}, 1000, 42)])
    assert n == 3
    assert store.names() == ["cpu", "mem"]
    cpu = store.series("cpu")
    assert [s.labels for s in cpu] == [{"core": "0"}, {"core": "1"}]
    assert store.range(cpu[1].id, 0, 10_000) == [(1000, 2.5)]
    (mem,) = store.series("mem")
    assert mem.labels == {} and store.range(mem.id, 0, 2000) == [(1000, 42.0)]


def test_label_order_does_not_split_series(store):
    store.write([Sample("x", {"a": "1", "b": "2"}, 1, 1.0)])
    store.write([Sample("x", {"b": "2", "a": "1"}, 2, 2.0)])
    (s,) = store.series("x")
    assert store.range(s.id, 0, 10) == [(1, 1.0), (2, 2.0)]


def test_latest_is_newest_per_series(store):
    store.write([Sample("up", {"t": "a"}, ts, float(ts)) for ts in (100, 300, 200)])
    store.write([Sample("up", {"t": "b"}, 50, 7.0), Sample("other", {"t": "a"}, 999, 1.0)])
    got = {p.series.labels["t"]: (p.ts, p.value) for p in store.latest("up")}
    assert got == {"a": (300, 300.0), "b": (50, 7.0)}
    assert {p.series.name for p in store.latest()} == {"up", "other"}
    assert [p.ts for p in store.latest("up", {"t": "b"})] == [50]
    assert store.latest("missing") == []


def test_range_bounds_inclusive_and_ascending(store):
    store.write([Sample("m", {}, ts, ts / 10) for ts in range(0, 100, 10)])
    (s,) = store.series("m")
    assert [t for t, _ in store.range(s.id, 20, 50)] == [20, 30, 40, 50]
    assert store.range(s.id, 21, 29) == []
    assert store.range(s.id, 90, 90) == [(90, 9.0)]


def test_label_subset_filtering(store):
    store.write([Sample("req", {"code": "200", "path": "/a"}, 1, 1.0),
                 Sample("req", {"code": "500", "path": "/a"}, 1, 2.0),
                 Sample("req", {"code": "200", "path": "/b"}, 1, 3.0)])
    assert len(store.series("req")) == 3
    assert [s.labels["path"] for s in store.series("req", {"code": "200"})] == ["/a", "/b"]
    assert [s.labels for s in store.series("req", {"code": "500", "path": "/a"})] == [
        {"code": "500", "path": "/a"}]
    assert store.series("req", {"code": "404"}) == []
    assert store.series(labels={"path": "/b"})[0].labels["code"] == "200"
    sel = store.select("req", 0, 10, {"path": "/a"})
    assert [(s.labels["code"], pts) for s, pts in sel] == [("200", [(1, 1.0)]), ("500", [(1, 2.0)])]


def test_duplicate_timestamp_last_write_wins(store):
    store.write([Sample("m", {}, 5, 1.0), Sample("m", {}, 5, 2.0)])
    store.write([Sample("m", {}, 5, 3.0)])
    (s,) = store.series("m")
    assert store.range(s.id, 0, 10) == [(5, 3.0)]


def test_stale_marker_and_nan_round_trip(store):
    store.write([Sample("m", {}, 1, 1.0), Sample("m", {}, 2, math.nan), Sample("m", {}, 3, STALE_NAN),
                 Sample("m", {}, 4, math.inf), Sample("m", {}, 5, -math.inf)])
    (s,) = store.series("m")
    pts = store.range(s.id, 0, 10)
    assert pts[0] == (1, 1.0)
    assert math.isnan(pts[1][1]) and not is_stale(pts[1][1])
    assert is_stale(pts[2][1])
    assert pts[3][1] == math.inf and pts[4][1] == -math.inf
    (p,) = store.latest("m")
    assert p.ts == 5
    store.write([Sample("m", {}, 6, STALE_NAN)])
    assert is_stale(store.latest("m")[0].value)


def test_write_nowait_returns_future(store):
    fut = store.write_nowait(Sample("m", {}, ts, 1.0) for ts in range(10))
    assert fut.result(timeout=5) == 10
    assert len(store.range(store.series("m")[0].id, 0, 100)) == 10


def test_failed_write_rolls_back_new_series_and_cache(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.write([Sample("new", {"k": "v"}, 1, 1.0), Sample("new", {"k": "v"}, None, 2.0)])
    assert store.series("new") == []
    store.write([Sample("new", {"k": "v"}, 3, 3.0)])
    (s,) = store.series("new")
    assert store.latest("new")[0].value == 3.0 and store.range(s.id, 0, 10) == [(3, 3.0)]


def test_write_after_close_raises(tmp_path):
    s = Store.open(tmp_path / "m.db")
    s.close()
    with pytest.raises(StoreClosed):
        s.write([Sample("m", {}, 1, 1.0)])
    s.close()  # idempotent


# ---- quantiles

def test_quantile_hand_computed(store):
    store.write([Sample("lat", {}, ts, v) for ts, v in zip(range(1000, 1005), [40, 10, 30, 20, 50])])
    (s,) = store.series("lat")
    assert store.quantile(s.id, 0, 10_000, 0.5) == 30.0
    # sorted 10 20 30 40 50; rank 0.95*4 = 3.8 -> 40 + 0.8 * 10
    assert store.quantile(s.id, 0, 10_000, 0.95) == pytest.approx(48.0)
    assert store.quantile(s.id, 0, 10_000, 0.0) == 10.0
    assert store.quantile(s.id, 0, 10_000, 1.0) == 50.0
    # only ts 1001..1003 -> 10 30 20; rank 0.25*2 = 0.5 -> 10 + 0.5 * 10
    assert store.quantile(s.id, 1001, 1003, 0.25) == pytest.approx(15.0)
    assert store.quantile(s.id, 0, 10_000, 1.5) == math.inf
    assert store.quantile(s.id, 0, 10_000, -0.1) == -math.inf


def test_quantile_empty_and_all_stale_is_none(store):
    store.write([Sample("m", {}, 10, STALE_NAN), Sample("m", {}, 20, math.nan), Sample("m", {}, 30, 5.0)])
    (s,) = store.series("m")
    assert store.quantile(s.id, 0, 9, 0.9) is None
    assert store.quantile(s.id, 10, 20, 0.9) is None
    assert store.quantile(s.id, 0, 100, 0.9) == 5.0
    assert store.quantile(9999, 0, 100, 0.9) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
       q=st.floats(0, 1))
def test_quantile_matches_prometheus_definition(store, values, q):
    name = f"h{time.perf_counter_ns()}"
    store.write([Sample(name, {}, i, v) for i, v in enumerate(values)])
    (s,) = store.series(name)
    assert store.quantile(s.id, 0, len(values), q) == pytest.approx(prom_quantile(values, q), rel=1e-9, abs=1e-9)


# ---- rollups and retention

def test_rollup_counts_sums_min_max(store):
    base = 100 * MIN
    data = [(base + 0, 1.0), (base + 10_000, 5.0), (base + 59_999, 3.0),   # minute 100
            (base + MIN, -2.0), (base + MIN + 1, STALE_NAN), (base + MIN + 2, math.nan),  # 101
            (base + 2 * MIN + 5, 9.0)]                                       # 102, incomplete at now
    store.write([Sample("m", {}, ts, v) for ts, v in data])
    (s,) = store.series("m")
    now = base + 2 * MIN + 30_000
    assert store.rollup(now) == 2
    expected = [(base, 3, 9.0, 1.0, 5.0), (base + MIN, 1, -2.0, -2.0, -2.0)]
    assert store.rollups(s.id, 0, now) == expected
    # idempotent: running again (same now) leaves the same rows
    store.rollup(now)
    assert store.rollups(s.id, 0, now) == expected
    # a late sample for an already rolled minute is counted on the next run
    store.write([Sample("m", {}, base + 30_000, 11.0)])
    store.rollup(base + 3 * MIN)
    assert store.rollups(s.id, 0, base + 3 * MIN) == [
        (base, 4, 20.0, 1.0, 11.0), (base + MIN, 1, -2.0, -2.0, -2.0), (base + 2 * MIN, 1, 9.0, 9.0, 9.0)]
    assert store.rollups(s.id, base + MIN, base + MIN) == [(base + MIN, 1, -2.0, -2.0, -2.0)]


def test_rollup_on_empty_store_does_nothing(store):
    assert store.rollup(10 * MIN) == 0


def test_purge_honours_both_retentions(tmp_path):
    day = 86_400_000
    now = 100 * day
    with Store.open(tmp_path / "m.db", raw_retention_s=2 * 86400, rollup_retention_s=10 * 86400) as s:
        stamps = [now - 20 * day, now - 5 * day, now - 2 * day - 1, now - 2 * day, now - day]
        s.write([Sample("m", {"k": str(i)}, ts, 1.0) for ts in stamps for i in range(2)])
        s.rollup(now)
        (a, _) = s.series("m")
        assert len(s.rollups(a.id, 0, now)) == 5
        raw_deleted, rolled_deleted = s.purge(now)
        assert raw_deleted == 3 * 2        # the three samples older than 2 days, both series
        assert rolled_deleted == 1 * 2     # only the 20-day-old minute is past 10 days
        assert [t for t, _ in s.range(a.id, 0, now)] == [now - 2 * day, now - day]
        assert [r[0] for r in s.rollups(a.id, 0, now)] == [
            (ts // MIN) * MIN for ts in stamps[1:]]
        assert s.purge(now) == (0, 0)


# ---- concurrency

def test_concurrent_writes_from_threads_all_land(store):
    threads, per_thread, batch = 6, 20, 50
    errors = []

    def work(t):
        try:
            for b in range(per_thread):
                store.write([Sample("c", {"thread": str(t), "i": str(i % 5)}, b * batch + i, float(i))
                             for i in range(batch)])
                store.latest("c", {"thread": str(t)})  # reads interleaved, own connection
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ths = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert errors == []
    assert len(store.series("c")) == threads * 5
    total = store.read().execute("SELECT count(*) FROM samples").fetchone()[0]
    assert total == threads * per_thread * batch


def test_each_thread_gets_its_own_read_connection(store):
    mine = store.read()
    assert store.read() is mine
    other = []
    th = threading.Thread(target=lambda: other.append(store.read()))
    th.start()
    th.join()
    assert other[0] is not mine
    with pytest.raises(sqlite3.OperationalError):
        mine.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")  # readers are query-only


READER = r"""
import sys, time
from qbconsole.store import Store
s = Store.open(sys.argv[1])
print("ready", flush=True)
seen, deadline = [], time.monotonic() + 20
while time.monotonic() < deadline:
    pts = s.latest("progress")
    if pts and (not seen or pts[0].ts != seen[-1]):
        seen.append(pts[0].ts)
        print(pts[0].ts, flush=True)
        if pts[0].ts == int(sys.argv[2]):
            break
    time.sleep(0.005)
s.close()
"""


def test_reader_in_another_process_sees_writes_while_writing(store):
    final = 60
    store.write([Sample("progress", {}, 0, 0.0)])
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", READER, str(store.path), str(final)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        for ts in range(1, final + 1):
            store.write([Sample("progress", {}, ts, float(ts))])
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen = [int(line) for line in out.split()]
    assert proc.returncode == 0
    assert seen[-1] == final
    # it saw intermediate values, i.e. commits while the writer was still writing
    assert len([t for t in seen if 0 < t < final]) >= 5
    assert seen == sorted(seen)


# ---- lease

def test_lease_acquire_renew_expire_release(store):
    assert store.lease_info() is None
    assert store.lease_acquire("A", 500, now=1000)
    assert store.lease_info() == LeaseInfo("A", 1000, 1000, 1500)
    assert not store.lease_acquire("B", 500, now=1200)
    assert store.lease_renew("A", 500, now=1300)
    assert store.lease_info() == LeaseInfo("A", 1000, 1300, 1800)
    assert store.lease_acquire("A", 500, now=1400)        # ours: renews, keeps acquired
    assert store.lease_info() == LeaseInfo("A", 1000, 1400, 1900)
    assert not store.lease_renew("B", 500, now=1500)
    assert not store.lease_acquire("B", 500, now=1899)
    assert store.lease_acquire("B", 700, now=1900)        # expired: B takes over
    assert store.lease_info() == LeaseInfo("B", 1900, 1900, 2600)
    assert not store.lease_renew("A", 500, now=2000)      # A lost it
    store.lease_release("A")                               # not A's to release
    assert store.lease_info().holder == "B"
    store.lease_release("B")
    assert store.lease_info() is None
    assert not store.lease_renew("B", 500, now=2100)      # released means not held
    assert store.lease_acquire("A", 500)                  # default now = wall clock
    info = store.lease_info()
    assert info.holder == "A" and abs(info.acquired - time.time() * 1000) < 10_000


def test_lease_is_shared_between_store_instances(tmp_path):
    with Store.open(tmp_path / "m.db") as one, Store.open(tmp_path / "m.db") as two:
        assert one.lease_acquire("one", 10_000, now=0)
        assert not two.lease_acquire("two", 10_000, now=5_000)
        assert two.lease_info().holder == "one"
        assert two.lease_acquire("two", 10_000, now=10_000)
        assert not one.lease_renew("one", 10_000, now=10_001)


# ---- source status, transactions

def test_source_status_round_trip(store):
    store.set_source_status(SourceStatus("system", True, 1234, 0.05, None))
    store.set_source_status(SourceStatus("api", False, None, None, "timeout after 2.0 s"))
    assert store.source_statuses() == [SourceStatus("api", False, None, None, "timeout after 2.0 s"),
                                       SourceStatus("system", True, 1234, 0.05, None)]
    store.set_source_status(SourceStatus("api", True, 2000, 0.2, None))
    assert store.source_statuses()[0] == SourceStatus("api", True, 2000, 0.2, None)


class Boom(Exception):
    pass


def test_transaction_returns_and_rolls_back_on_error(store):
    def put(conn):
        conn.execute("INSERT INTO meta(key, value) VALUES ('a', '1')")
        return conn.execute("SELECT count(*) FROM meta WHERE key = 'a'").fetchone()[0]

    assert store.transaction(put) == 1

    def fail(conn):
        conn.execute("INSERT INTO meta(key, value) VALUES ('b', '2')")
        raise Boom("nope")

    with pytest.raises(Boom, match="nope"):
        store.transaction(fail)
    rows = store.read().execute("SELECT key FROM meta WHERE key IN ('a', 'b')").fetchall()
    assert rows == [("a",)]
    # the writer survives the failure
    assert store.write([Sample("m", {}, 1, 1.0)]) == 1


def test_nested_transaction_is_refused_not_deadlocked(store):
    def nested(conn):
        return store.transaction(lambda c: 1)

    with pytest.raises(RuntimeError, match="deadlock"):
        store.transaction(nested)


def test_writes_go_on_without_the_watch_log_and_a_watcher_brings_it_back(store):
    from qbconsole.store import queries

    store.transaction(lambda conn: conn.execute("DROP TABLE temp.qb_window_watch"))
    assert store.write([Sample("m", {}, 1_000, 1.0)]) == 1  # nothing to log, nothing fails
    known, changes, _ = store.transaction(lambda conn: queries.watch_windows(conn, 7, 0, 5_000, 0, 60_000))
    assert (known, changes) == (False, [])
    store.write([Sample("m", {}, 2_000, 2.0), Sample("m", {}, 9_000, 3.0)])  # one late, one beyond the edge
    known, changes, _ = store.transaction(lambda conn: queries.watch_windows(conn, 7, 0, 5_000, 0, 60_000))
    sid = store.series("m")[0].id
    assert known and changes == [(sid, 2_000)]
