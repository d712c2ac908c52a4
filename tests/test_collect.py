"""Collectors: the system source, build_sources and the scheduler (with fake sources)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import namedtuple
from types import SimpleNamespace

import psutil
import pytest

from qbconsole.catalog import CATALOG
from qbconsole.collect import (
    DURATION_METRIC, UP_METRIC, Scheduler, SourceStatus, SystemSource, build_sources,
)
from qbconsole.collect import system as system_module
from qbconsole.collect.scheduler import next_start
from qbconsole.model import Sample

from helpers import wait_for


def wait_until(predicate):
    """Up to 3 s, polling every 10 ms: the fake sources here run every few tens of ms."""
    return wait_for(predicate, 3.0, 0.01)


# ---- the system source ------------------------------------------------------------
def by_name(samples):
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.name, []).append(s)
    return out


def test_system_source_emits_catalogued_sane_samples():
    source = SystemSource(interval=1, timeout=1, jitter=0)
    sum(i * i for i in range(200_000))  # some CPU time between priming and the run
    now_ms = int(time.time() * 1000)
    first = source.collect(now_ms)
    second = source.collect(now_ms + 1000)
    names = by_name(first)
    for s in first:
        info = CATALOG.get(s.name)
        assert info is not None, f"{s.name} is not in the catalogue"
        assert set(s.labels) == set(info.labels), s
        assert s.ts == now_ms and isinstance(s.value, float) and math.isfinite(s.value)
        if info.unit == "percent":
            assert 0 <= s.value <= 100, s
        if info.kind == "counter" or info.unit in ("bytes", "count", "load"):
            assert s.value >= 0, s
    for required in ("system_cpu_percent", "system_memory_percent", "system_memory_used_bytes",
                     "system_memory_total_bytes", "system_processes", "system_disk_percent"):
        assert required in names, f"{required} missing"
    assert len(names["system_cpu_core_percent"]) == psutil.cpu_count()
    assert {s.labels["core"] for s in names["system_cpu_core_percent"]} == {str(i) for i in range(psutil.cpu_count())}
    assert names["system_memory_used_bytes"][0].value <= names["system_memory_total_bytes"][0].value
    assert names["system_processes"][0].value >= 1
    # counters never go backwards between runs
    later = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in second}
    for s in first:
        if CATALOG[s.name].kind == "counter":
            assert later[(s.name, tuple(sorted(s.labels.items())))] >= s.value
    errors = [s for s in first if s.name == "system_network_errors_total"]
    assert {s.labels["direction"] for s in errors} <= {"in", "out"}
    assert all(s.labels["nic"] != "lo" for s in errors)


def test_system_source_leaves_out_what_the_machine_lacks(monkeypatch):
    def no_loadavg():
        raise OSError("no /proc/loadavg")

    monkeypatch.setattr(system_module.psutil, "disk_io_counters", lambda perdisk=False: None)
    monkeypatch.setattr(system_module.psutil, "getloadavg", no_loadavg)
    monkeypatch.setattr(system_module.psutil, "net_io_counters", lambda pernic=True: {})
    names = by_name(SystemSource().collect(1000))
    for absent in ("system_disk_read_bytes_total", "system_load1", "system_network_sent_bytes_total"):
        assert absent not in names
    assert "system_cpu_percent" in names and "system_memory_percent" in names


Part = namedtuple("Part", "device mountpoint fstype opts")


def test_system_source_picks_real_mounts_once_per_device(monkeypatch):
    parts = [
        Part("/dev/sda1", "/", "ext4", "rw"),
        Part("/dev/sda1", "/var/lib/docker", "ext4", "rw"),  # same device: counted once
        Part("/dev/sdb1", "/data", "xfs", "rw"),
        Part("/dev/loop3", "/snap/core/123", "squashfs", "ro"),
        Part("/dev/loop4", "/mnt/image", "ext4", "ro"),
        Part("tmpfs", "/tmp", "tmpfs", "rw"),
        Part("/dev/sda2", "/boot/efi", "vfat", "rw"),
        Part("/dev/sda3", "/run/media", "ext4", "rw"),
        Part("/dev/sda4", "/running", "ext4", "rw"),  # not under /run
    ]
    monkeypatch.setattr(system_module.psutil, "disk_partitions", lambda all=False: parts)
    asked = []
    monkeypatch.setattr(system_module.psutil, "disk_usage",
                        lambda m: asked.append(m) or SimpleNamespace(percent=12.5))
    samples = by_name(SystemSource().collect(0))["system_disk_percent"]
    assert sorted(s.labels["mount"] for s in samples) == ["/", "/boot/efi", "/data", "/running"]
    assert all(s.value == 12.5 for s in samples)
    # nothing real (an overlay root in a container): fall back to /
    monkeypatch.setattr(system_module.psutil, "disk_partitions", lambda all=False: [Part("overlay", "/", "overlay", "")])
    assert [s.labels["mount"] for s in by_name(SystemSource().collect(0))["system_disk_percent"]] == ["/"]


def test_system_source_nic_options(monkeypatch):
    io = SimpleNamespace(bytes_recv=10, bytes_sent=20, errin=1, errout=2)
    monkeypatch.setattr(system_module.psutil, "net_io_counters", lambda pernic=True: {"lo": io, "eth0": io, "wg0": io})

    def nics(source):
        return sorted({s.labels["nic"] for s in by_name(source.collect(0))["system_network_sent_bytes_total"]})

    assert nics(SystemSource()) == ["eth0", "wg0"]
    assert nics(SystemSource(include_loopback=True)) == ["eth0", "lo", "wg0"]
    assert nics(SystemSource(nics=["wg0"])) == ["wg0"]
    errors = by_name(SystemSource(nics=["eth0"]).collect(0))["system_network_errors_total"]
    assert {(s.labels["direction"], s.value) for s in errors} == {("in", 1.0), ("out", 2.0)}


# ---- build_sources -------------------------------------------------------------------
def cfg(name="system", kind="system", interval=None, timeout=None, jitter=None, options=None):
    return SimpleNamespace(name=name, kind=kind, interval=interval, timeout=timeout, jitter=jitter, options=options or {})


def test_build_sources_from_config():
    default, custom = build_sources([cfg(), cfg("box", interval=2, timeout=1.5, jitter=0.2, options={"nics": ["eth0"]})])
    assert (default.name, default.interval, default.timeout, default.jitter) == ("system", 5, 5, 0.1)
    assert isinstance(custom, SystemSource) and (custom.name, custom.interval, custom.timeout, custom.jitter) == (
        "box", 2, 1.5, 0.2)
    assert custom.nics == ["eth0"]


@pytest.mark.parametrize(
    "configs, message",
    [
        ([cfg(kind="snmp")], "unknown kind 'snmp'"),
        ([cfg(options={"colour": "red"})], "no option 'colour'"),
        ([cfg(options={"interval": 3})], "interval belong outside options"),
        ([cfg(), cfg()], "'system' is used twice"),
        ([cfg(interval=0)], "interval must be positive"),
        ([cfg(timeout=-1)], "timeout must be positive"),
        ([cfg(jitter=1.5)], "jitter must be between 0 and 1"),
        ([cfg(options={"mounts": "/"})], "must be a list of strings"),
    ],
)
def test_build_sources_rejects(configs, message):
    with pytest.raises(ValueError, match=message):
        build_sources(configs)


# ---- the scheduler ----------------------------------------------------------------
class FakeSource:
    """Counts its runs; ``behave(n)`` is called in the worker for run n."""

    def __init__(self, name, interval=0.05, timeout=1.0, jitter=0.0, behave=None):
        self.name, self.interval, self.timeout, self.jitter = name, interval, timeout, jitter
        self.behave = behave
        self.starts: list[float] = []
        self.active = 0
        self.max_active = 0
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def collect(self, now_ms):
        with self._lock:
            self.starts.append(time.monotonic())
            n = len(self.starts)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.behave is not None:
                result = self.behave(n)
                if result is not None:
                    return result
            return [Sample(f"fake_{self.name}", {"run": str(n)}, now_ms, float(n))]
        finally:
            with self._lock:
                self.active -= 1

    def close(self):
        self.closed.set()

    @property
    def runs(self):
        return len(self.starts)


class Recorder:
    def __init__(self, fail=False):
        self.batches: list[list[Sample]] = []
        self.statuses: list[SourceStatus] = []
        self.fail = fail
        self.lock = threading.Lock()

    def sink(self, batch):
        with self.lock:
            self.batches.append(list(batch))
        if self.fail:
            raise RuntimeError("disk full")

    def on_status(self, status):
        with self.lock:
            self.statuses.append(status)

    def batches_of(self, name):
        with self.lock:
            return [b for b in self.batches if any(s.labels.get("source") == name for s in b)]


@pytest.fixture
def make_scheduler():
    made = []

    def make(sources, recorder=None, **kw):
        recorder = recorder or Recorder()
        sched = Scheduler(recorder.sink, sources, on_status=recorder.on_status, **kw)
        made.append(sched)
        sched.start()
        return sched, recorder

    yield make
    for sched in made:
        sched.stop(timeout=1)


def test_failing_source_is_down_and_others_keep_producing(make_scheduler):
    def boom(n):
        raise ValueError("boom\n  at line 2")

    good, bad = FakeSource("good"), FakeSource("bad", behave=boom)
    sched, rec = make_scheduler([good, bad])
    assert wait_until(lambda: good.runs >= 6 and bad.runs >= 3)
    status = sched.status()
    assert status["bad"].up is False and status["bad"].last_error == "ValueError: boom at line 2"
    assert status["good"].up is True and status["good"].last_error is None and status["good"].last_ts is not None
    for batch in rec.batches_of("bad"):
        assert [s.name for s in batch] == [UP_METRIC, DURATION_METRIC] and batch[0].value == 0.0
    assert any(s.name == "fake_good" for b in rec.batches_of("good") for s in b)
    assert {s.name for s in rec.statuses} == {"good", "bad"}


def test_every_sink_call_is_one_run_with_up_and_duration(make_scheduler):
    sched, rec = make_scheduler([FakeSource("a"), FakeSource("b", interval=0.07)])
    assert wait_until(lambda: len(rec.batches) >= 8)
    for batch in rec.batches:
        meta = [s for s in batch if s.name in (UP_METRIC, DURATION_METRIC)]
        assert sorted(s.name for s in meta) == sorted([UP_METRIC, DURATION_METRIC])
        source = meta[0].labels["source"]
        assert all(s.labels == {"source": source} for s in meta)
        assert len({s.ts for s in batch}) == 1  # the whole run shares its timestamp
        up = next(s for s in meta if s.name == UP_METRIC)
        duration = next(s for s in meta if s.name == DURATION_METRIC)
        assert up.value == 1.0 and 0 <= duration.value < 1
        assert [s.name for s in batch if s not in meta] == [f"fake_{source}"]


def test_hanging_source_times_out_without_piling_up(make_scheduler):
    release = threading.Event()

    def hang(n):
        if n == 1:
            release.wait(10)

    stuck, good = FakeSource("stuck", interval=0.05, timeout=0.2, behave=hang), FakeSource("good", interval=0.05)
    sched, rec = make_scheduler([stuck, good], max_workers=2)
    try:
        t0 = time.monotonic()
        assert wait_until(lambda: sched.status()["stuck"].last_error is not None)
        status = sched.status()["stuck"]
        assert status.up is False and status.last_error == "timed out after 0.2s"
        assert 0.15 <= time.monotonic() - t0 < 1.0
        good_before = good.runs
        time.sleep(0.6)
        assert stuck.runs == 1, "a second run started while the first hangs"
        assert good.runs - good_before >= 6, "the hanging source slowed the others down"
        down = rec.batches_of("stuck")
        assert len(down) == 1 and [(s.name, s.value) for s in down[0]][0] == (UP_METRIC, 0.0)
    finally:
        release.set()
    # once the hung run returns, the source runs again and comes back up
    assert wait_until(lambda: stuck.runs >= 2 and sched.status()["stuck"].up)
    assert stuck.max_active == 1
    assert not any(s.name == "fake_stuck" and s.labels["run"] == "1" for b in rec.batches for s in b)


def test_next_start_jitter_bounds():
    low, high = random.Random(), random.Random()
    low.random = lambda: 0.0
    high.random = lambda: 0.999999
    assert next_start(10.0, 5.0, 0.2, 11.0, low) == (15.0, 15.0)
    tick, start = next_start(10.0, 5.0, 0.2, 11.0, high)
    assert tick == 15.0 and 15.0 < start < 16.0
    # a run that ended past grid points starts again at once, on the latest grid point
    assert next_start(10.0, 5.0, 0.2, 21.0, high) == (20.0, 21.0)
    rng = random.Random(7)
    offsets = [next_start(0.0, 1.0, 0.3, 0.5, rng)[1] - 1.0 for _ in range(500)]
    assert all(0 <= o < 0.3 for o in offsets) and max(offsets) - min(offsets) > 0.25


def test_observed_starts_stay_within_jitter(make_scheduler):
    interval, jitter = 0.1, 0.5
    jittered, steady = FakeSource("jittered", interval, jitter=jitter), FakeSource("steady", interval)
    origin = time.monotonic()
    make_scheduler([jittered, steady], rng=random.Random(3))
    assert wait_until(lambda: jittered.runs >= 8 and steady.runs >= 8)
    tolerance = 0.04  # thread hand-off on a busy 2-core machine
    offsets = [t - origin - k * interval for k, t in enumerate(jittered.starts[:8])]
    assert all(-0.005 <= o < jitter * interval + tolerance for o in offsets), offsets
    assert max(offsets) - min(offsets) > 0.01, "no jitter applied"
    gaps = [b - a for a, b in zip(steady.starts, steady.starts[1:8])]
    assert all(interval - tolerance < g < interval + tolerance for g in gaps), gaps


def test_stop_is_prompt_even_with_a_hung_run(make_scheduler):
    release = threading.Event()
    slow = FakeSource("slow", interval=60)
    hung = FakeSource("hung", interval=0.01, timeout=30, behave=lambda n: release.wait(10) and None)
    sched, _ = make_scheduler([slow, hung])
    assert wait_until(lambda: hung.runs == 1 and slow.runs == 1)
    t0 = time.monotonic()
    sched.stop(timeout=2)
    assert time.monotonic() - t0 < 0.5
    assert slow.closed.is_set() and not hung.closed.is_set()  # closed once its run returns
    release.set()
    assert hung.closed.wait(2)
    runs = slow.runs, hung.runs
    time.sleep(0.1)
    assert (slow.runs, hung.runs) == runs


def test_replace_sources_keeps_state_of_kept_names(make_scheduler):
    a, b = FakeSource("a"), FakeSource("b")
    sched, rec = make_scheduler([a, b])
    assert wait_until(lambda: a.runs >= 2 and b.runs >= 2)
    kept = sched.status()["a"]
    a2, c = FakeSource("a"), FakeSource("c")
    sched.replace_sources([a2, c])
    status = sched.status()
    assert set(status) == {"a", "c"}
    assert status["a"].last_ts is not None and status["a"].last_ts >= kept.last_ts
    assert status["c"] == SourceStatus("c", False, None, None, None)
    assert a.closed.wait(1) and b.closed.wait(1)
    assert wait_until(lambda: a2.runs >= 2 and c.runs >= 2)
    b_runs, a_runs = b.runs, a.runs
    time.sleep(0.15)
    assert (b.runs, a.runs) == (b_runs, a_runs), "a replaced source still runs"
    assert not a2.closed.is_set()
    with pytest.raises(ValueError, match="unique"):
        sched.replace_sources([FakeSource("x"), FakeSource("x")])


def test_sink_failure_does_not_stop_the_scheduler(make_scheduler, caplog):
    source = FakeSource("a")
    sched, rec = make_scheduler([source], recorder=Recorder(fail=True))
    assert wait_until(lambda: source.runs >= 4 and len(rec.statuses) >= 4)
    assert sched.status()["a"].up is True
    assert "disk full" in caplog.text


def test_bad_return_value_and_clock(make_scheduler):
    liar = FakeSource("liar", behave=lambda n: [("not", "a", "sample")])
    honest = FakeSource("honest")
    sched, rec = make_scheduler([liar, honest], clock=lambda: 1234.5)
    assert wait_until(lambda: liar.runs >= 1 and honest.runs >= 1 and len(rec.statuses) >= 2)
    assert sched.status()["liar"].last_error == "TypeError: collect() returned a tuple, not a Sample"
    assert all(s.ts == 1_234_500 for b in rec.batches for s in b)


def test_one_pool_not_a_thread_per_tick(make_scheduler):
    sources = [FakeSource(f"s{i}", interval=0.02) for i in range(6)]
    make_scheduler(sources, max_workers=3)
    assert wait_until(lambda: all(s.runs >= 10 for s in sources))
    workers = [t for t in threading.enumerate() if t.name.startswith("qbconsole-source")]
    schedulers = [t for t in threading.enumerate() if t.name == "qbconsole-scheduler"]
    assert 1 <= len(workers) <= 3 and len(schedulers) == 1


def test_duplicate_names_and_restart_are_refused():
    with pytest.raises(ValueError, match="repeated: x"):
        Scheduler(lambda batch: None, [FakeSource("x"), FakeSource("x")])
    sched = Scheduler(lambda batch: None, [FakeSource("x", interval=60)])
    assert sched.status() == {"x": SourceStatus("x", False, None, None, None)}
    sched.start()
    sched.stop()
    with pytest.raises(RuntimeError):
        sched.start()


def test_cpu_percent_is_measured_whatever_thread_runs_the_source():
    """psutil keeps cpu_percent(None) state per thread; the source must not depend on it."""
    import threading
    import time as _time

    source = SystemSource()
    stop = _time.monotonic() + 0.6
    while _time.monotonic() < stop:  # keep one core busy so the share cannot be 0
        sum(range(1000))
    values = []
    t = threading.Thread(target=lambda: values.extend(
        s.value for s in source.collect(0) if s.name == "system_cpu_percent"))
    t.start()
    t.join()
    assert values and values[0] > 5.0


def test_a_failure_can_carry_samples_of_its_own(make_scheduler):
    """A failed scrape still records what failing means (up=0, staleness markers)."""
    class Failed(Exception):
        def __init__(self, samples):
            super().__init__("connection refused")
            self.samples = samples

    def fail(n):
        raise Failed([Sample("up", {"job": "x"}, 0, 0.0), ("not", "a", "sample")])

    bad = FakeSource("bad", behave=fail)
    sched, rec = make_scheduler([bad])
    assert wait_until(lambda: rec.batches_of("bad"))
    batch = rec.batches_of("bad")[0]
    assert [s.name for s in batch] == ["up", UP_METRIC, DURATION_METRIC]
    assert sched.status()["bad"].last_error.endswith("connection refused")


# ---- one transaction a run --------------------------------------------------------------------
def test_a_run_is_recorded_with_its_status_in_one_transaction(store):
    commits = []
    store.transaction(lambda conn: conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None))
    recorder = Recorder()
    source = FakeSource("a")
    sched = Scheduler(recorder.sink, [source], on_status=recorder.on_status, record=store.write_run)
    sched.start()
    try:
        assert wait_until(lambda: source.runs >= 3 and len(store.source_statuses()) == 1)
    finally:
        sched.stop(timeout=1)
    assert recorder.batches == [] and recorder.statuses == []  # record took both
    status = store.source_statuses()[0]
    assert status.name == "a" and status.up and status.last_error is None
    recorded = len(store.series("fake_a"))  # each run writes its own series (label run=n)
    assert recorded >= 3
    assert len(commits) == recorded + 1  # one commit a run, plus the job that set the trace hook


def test_a_failed_record_still_shows_the_status(caplog):
    recorder = Recorder()
    source = FakeSource("a")

    def record(batch, status):
        raise RuntimeError("disk full")

    sched = Scheduler(recorder.sink, [source], on_status=recorder.on_status, record=record)
    sched.start()
    try:
        assert wait_until(lambda: len(recorder.statuses) >= 2)
    finally:
        sched.stop(timeout=1)
    assert recorder.batches == []  # the samples went with the failed transaction
    assert "could not record" in caplog.text and "disk full" in caplog.text
