"""Charts on the Prometheus backend: :class:`PrometheusReader` against Debian's real Prometheus.

The same deterministic samples (six hours of system figures, 15 minutes of the
others, as the Overview tests seed them) are written into a store and, through
``promtool tsdb create-blocks-from openmetrics``, into the TSDB of a Prometheus
started on a free loopback port with its own temporary directory. The reader
must then give exactly the store's figures: the Overview's windows, the charts'
raw and rolled-up histories, at several instants. A second Prometheus scrapes a
small prometheus_client exporter every second while a local agent collects the
same exporter into a store: live scrapes give the same series and gauge values.
The console with ``metrics=reader`` shows the Overview from Prometheus, and a
Prometheus that does not answer is the snapshot's read error. Without the
binaries the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from textual.widgets import Static
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from helpers import free_port, wait_for
from prometheus_servers import backfill, require_binaries, start_prometheus
from qbconsole.agent import Agent
from qbconsole.cli import UserError, chart_source
from qbconsole.config.model import DatasourceConfig
from qbconsole.datasource import PrometheusReader, metrics_reader
from qbconsole.datasource.prometheus import PrometheusBackend
from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.store import SourceStatus, Store
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.data import read_snapshot
from qbconsole.tui.groups import GROUPS, SPECS
from qbconsole.tui.history import WINDOWS, read_history
from qbconsole.tui.metricdata import MINUTE_MS, read_windows
from qbconsole.tui.targets import Status
from qbconsole.tui.widgets.chrome import StatusLine
from qbconsole.tui.widgets.tile import Tile
from test_tui_overview import rows, seed_groups, show_group, until
from test_tui_snapshots import NOW_MS, seed_samples

HOUR = 60 * MINUTE_MS
NAMES = sorted({name for g in GROUPS for m in g.metrics for name in (m.name, m.pair) if name})


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """(store, Prometheus) holding the same samples."""
    require_binaries("prometheus", "promtool")
    tmp = tmp_path_factory.mktemp("prom-charts")
    samples = seed_samples(NOW_MS, minutes=6 * 60)
    store = Store.open(tmp / "qb.db")
    store.write(samples)
    seed_groups(store)
    # everything the store holds, read back, is what Prometheus gets
    samples = [s for name in store.names() for info, pts in store.select(name, 0, NOW_MS)
               for s in (type(samples[0])(name, info.labels, ts, v) for ts, v in pts)]
    assert store.rollup(NOW_MS) > 0  # as an agent would have by NOW_MS
    backfill(samples, tmp)
    prom = start_prometheus(tmp)
    try:
        yield store, prom
    finally:
        prom.stop()
        store.close()


@pytest.fixture
def reader(seeded):
    reader = PrometheusReader(PrometheusBackend(seeded[1].url), refresh_ms=0)
    yield reader
    reader.close()


def by_labels(selected):
    return {frozenset(info.labels.items()): points for info, points in selected if points}


def figures(windows):
    """The windows, without per-label parts that have no points: the store lists every series
    it ever recorded (a BY_LABEL row then says "no data"), Prometheus only those with samples."""
    return {key: w for key, w in windows.items() if w.points or "/" not in key}


def same_history(mine, theirs) -> bool:
    """Equal but for float rounding: Prometheus sums per-minute rollups more exactly than SQLite."""
    a, b = (tuple(line for line in h.lines if line.points) for h in (mine, theirs))
    if replace(mine, lines=()) != replace(theirs, lines=()) or [x.label for x in a] != [y.label for y in b]:
        return False
    return all([t for t, _ in x.points] == [t for t, _ in y.points]
               and [v for _, v in x.points] == pytest.approx([v for _, v in y.points], rel=1e-12)
               for x, y in zip(a, b))


# ---- the store's read API ------------------------------------------------------------------------
def test_reader_answers_the_stores_read_api_with_the_same_samples(seeded, reader):
    store, _ = seeded
    assert set(NAMES) - {"quickbid:conversion:ratio1h", "quickbid:rum_satisfaction_score:avg1h"} <= set(reader.names())
    for name in store.names():
        assert {frozenset(s.labels.items()) for s in reader.series(name)} == \
            {frozenset(s.labels.items()) for s in store.series(name)}, name
        for start, end in ((NOW_MS - 20 * MINUTE_MS, NOW_MS), (NOW_MS - 3 * HOUR - 1, NOW_MS - 5_001)):
            assert by_labels(reader.select(name, start, end)) == by_labels(store.select(name, start, end)), name
    mine = {frozenset(s.labels.items()): s for s in store.series("system_disk_percent")}
    for info in reader.series("system_disk_percent", {"mount": "/"}):  # a label filter, and range by id
        assert info.labels == {"mount": "/"}
        theirs = mine[frozenset(info.labels.items())].id
        span = (NOW_MS - 2 * HOUR, NOW_MS)
        assert reader.range(info.id, *span) == store.range(theirs, *span) != []
        rolled = store.rollups(theirs, *span)
        assert rolled and reader.rollups(info.id, *span) == [(m, n, pytest.approx(total, rel=1e-12), lo, hi)
                                                             for m, n, total, lo, hi in rolled]
        assert reader.quantile(info.id, *span, 0.5) == store.quantile(theirs, *span, 0.5)
    with pytest.raises(KeyError):
        reader.range(10_000, 0, NOW_MS)


def test_overview_windows_are_the_stores_at_every_instant(seeded, reader):
    store, _ = seeded
    for now in (NOW_MS, NOW_MS - 37_500, NOW_MS - 2 * HOUR + 1):
        assert figures(read_windows(reader, now)) == figures(read_windows(store, now)), now
    windows = read_windows(reader, NOW_MS)
    assert windows["page-load"].label == "/auction" and windows["login-failures"].latest == (NOW_MS, 3.0)


def test_the_tail_cache_gives_the_same_windows_as_fresh_reads(seeded, reader):
    store, _ = seeded
    requests = []
    get = reader.client.get
    reader.client.get = lambda path, params: requests.append(params.get("query", path)) or get(path, params)
    start = NOW_MS - 90_000
    for now in range(start, NOW_MS + 1, 7_500):  # the poll moves on: only the tail is fetched
        assert figures(read_windows(reader, now)) == figures(read_windows(store, now)), now
    tails = requests[len(NAMES):]
    assert tails and all(q.endswith(f"[{reader.overlap_ms + 7_500}ms]") for q in tails)
    # a one-hour chart reaches further back: fetched once, then the Overview reads from it too
    assert same_history(read_history(reader, SPECS["cpu"], HOUR, NOW_MS), read_history(store, SPECS["cpu"], HOUR, NOW_MS))
    assert figures(read_windows(reader, NOW_MS)) == figures(read_windows(store, NOW_MS))


def test_polls_within_the_refresh_interval_ask_prometheus_nothing(seeded):
    reader = PrometheusReader(PrometheusBackend(seeded[1].url), refresh_ms=5_000)
    try:
        requests = []
        get = reader.client.get
        reader.client.get = lambda path, params: requests.append(path) or get(path, params)
        first = read_windows(reader, NOW_MS - 10_000)
        asked = len(requests)
        assert asked == len(NAMES)  # one request per metric name
        for now in range(NOW_MS - 9_000, NOW_MS - 5_000, 1_000):
            assert read_windows(reader, now).keys() == first.keys()
        assert len(requests) == asked
        read_windows(reader, NOW_MS - 5_000)
        assert len(requests) == 2 * asked
    finally:
        reader.close()


@pytest.mark.parametrize("window", [label for label, _ in WINDOWS[:4]])
def test_chart_histories_raw_and_rollups_are_the_stores(seeded, reader, window):
    store, _ = seeded
    window_ms = dict(WINDOWS)[window]
    for spec in SPECS.values():
        mine, theirs = read_history(reader, spec, window_ms, NOW_MS), read_history(store, spec, window_ms, NOW_MS)
        assert same_history(mine, theirs), spec.key
    assert not read_history(reader, SPECS["cpu"], window_ms, NOW_MS).empty


def test_a_prometheus_that_does_not_answer_is_a_read_error(seeded):
    store, _ = seeded
    reader = metrics_reader(store, PrometheusBackend(f"http://127.0.0.1:{free_port()}", timeout_s=2))
    try:
        with pytest.raises(PromQLEvalError, match="unreachable"):
            read_snapshot(store, NOW_MS, metrics=reader)
    finally:
        reader.close()
    assert metrics_reader(store, None) is store


def test_the_cli_gives_the_console_a_reader_only_with_a_prometheus_datasource(tmp_path):
    with Store.open(tmp_path / "qb.db") as store:
        assert chart_source(store, DatasourceConfig(), None) == (store, None)
        reader, backend = chart_source(store, DatasourceConfig(), "http://127.0.0.1:9090")
        assert isinstance(reader, PrometheusReader) and reader.backend is backend and backend.url == "http://127.0.0.1:9090"
        backend.close()
        reader, backend = chart_source(store, DatasourceConfig(kind="prometheus", url="http://prom.test:9090"), None)
        assert isinstance(reader, PrometheusReader) and backend.url == "http://prom.test:9090"
        backend.close()
        with pytest.raises(UserError, match="http"):
            chart_source(store, DatasourceConfig(), "prom.test:9090")


# ---- the console on the Prometheus backend -----------------------------------------------------
async def test_console_overview_reads_prometheus(seeded, tmp_path):
    store, prom = seeded
    empty = Store.open(tmp_path / "state.db")  # the console's own state: no samples at all
    reader = PrometheusReader(PrometheusBackend(prom.url))
    app = QBConsoleApp(empty, clock=lambda: NOW_MS / 1000, settings_path=tmp_path / "settings.json",
                       theme="dark", metrics=reader)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            cpu = app.screen.query_one("#tile-cpu", Tile)
            await until(pilot, lambda: cpu.status is not Status.NO_DATA)
            assert app.snapshot.error is None and figures(app.snapshot.metrics) == figures(read_windows(store, NOW_MS))
            detail = str(cpu.query_one(".tile-detail", Static).render())
            assert "no samples" not in detail and str(cpu.query_one(".tile-value", Static).render()) != "—"
            await show_group(pilot, "application")
            p95 = rows(app)["response-p95"].view
            assert (p95.status, p95.value) == (Status.OK, "323 ms")  # as on the store (test_tui_overview)
    finally:
        reader.close()
        empty.close()


async def test_console_shows_prometheus_down_in_the_status_line(tmp_path):
    require_binaries("prometheus", "promtool")
    empty = Store.open(tmp_path / "state.db")
    reader = PrometheusReader(PrometheusBackend(f"http://127.0.0.1:{free_port()}", timeout_s=2))
    app = QBConsoleApp(empty, clock=lambda: NOW_MS / 1000, settings_path=tmp_path / "settings.json",
                       theme="dark", metrics=reader)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.snapshot is not None and app.snapshot.metrics_error is not None)
            assert "unreachable" in app.snapshot.metrics_error and app.snapshot.error is None
            await pilot.pause()
            assert "metrics read failed" in str(app.screen.query_one(StatusLine).render())
            # The store's side keeps refreshing meanwhile (alerts, lease, sources).
            empty.set_source_status(SourceStatus("probe", True, NOW_MS, 0.01, None))
            await until(pilot, lambda: any(s.name == "probe" for s in app.snapshot.sources))
    finally:
        reader.close()
        empty.close()


# ---- live scrapes -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """An exporter scraped every second by Prometheus and by a local agent into a store."""
    require_binaries("prometheus", "promtool")
    tmp = tmp_path_factory.mktemp("prom-live")
    registry = CollectorRegistry()
    Gauge("system_cpu_percent", "cpu", registry=registry).set(41.5)
    disk = Gauge("system_disk_percent", "disk", ["mount"], registry=registry)
    disk.labels("/").set(72.5)
    disk.labels("/data").set(88.25)
    events = Counter("security_events", "events", ["kind"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def tick() -> None:  # a counter that moves: two blocked IPs a second
        while not stop.wait(0.5):
            events.labels("blocked_ip").inc()

    threading.Thread(target=tick, daemon=True).start()
    prom = start_prometheus(tmp, {"app": f"127.0.0.1:{port}"})
    rules = tmp / "rules.yaml"
    rules.write_text("settings: {evaluation_interval: 1s}\nsources:\n"
                     f"  - {{name: app, kind: prometheus, url: 'http://127.0.0.1:{port}/metrics', interval: 1s}}\n")
    store = Store.open(tmp / "live.db")
    agent = Agent(store, rules, holder="live-agent", heartbeat_s=0.5)
    agent.start()
    try:
        yield store, prom
    finally:
        agent.stop()
        prom.stop()
        stop.set()
        server.shutdown()
        store.close()


def test_live_scrapes_give_the_same_series_and_gauges(live):
    import time

    store, prom = live
    reader = PrometheusReader(PrometheusBackend(prom.url))
    try:
        def both_have(name: str) -> bool:
            now = int(time.time() * 1000)
            return all(len(pts) >= 3 for src in (reader, store) for _, pts in src.select(name, now - 60_000, now)) \
                and all(src.select(name, now - 60_000, now) for src in (reader, store))

        for name in ("system_cpu_percent", "system_disk_percent", "security_events_total"):
            assert wait_for(lambda: both_have(name), 30), name
            assert {frozenset(s.labels.items()) for s in reader.series(name)} == \
                {frozenset(s.labels.items()) for s in store.series(name)}
        now = int(time.time() * 1000)
        specs = [SPECS["cpu"], SPECS["disk"], SPECS["security-events"]]
        mine, theirs = read_windows(reader, now, specs=specs), read_windows(store, now, specs=specs)
        assert mine["cpu"].latest[1] == theirs["cpu"].latest[1] == 41.5
        assert (mine["disk"].label, mine["disk"].latest[1]) == (theirs["disk"].label, theirs["disk"].latest[1]) \
            == ("/data", 88.25)
        assert mine.keys() == theirs.keys()
        for src in (reader, store):  # two blocked IPs a second, as both saw it
            (_, points), = src.select("security_events_total", now - 20_000, now, {"kind": "blocked_ip"})
            (t0, v0), (t1, v1) = points[0], points[-1]
            assert (v1 - v0) * 1000 / (t1 - t0) == pytest.approx(2.0, abs=0.5)
    finally:
        reader.close()
