"""Reports on a Prometheus datasource agree with reports on the local store (real Prometheus 2.42).

Exact: the same samples are written to a local store and backfilled into Prometheus
(``promtool tsdb create-blocks-from openmetrics``), so the report built from Prometheus
(:func:`qbconsole.report.remote.build_remote_report`) must equal the local one figure for
figure (floats to 1e-9: the two stores cut rollups at different minutes, so sums are added
in another order). Live: Prometheus and a local collector scrape the same exporter; figures
agree within what the two scrapers' timing explains (see that test).

Without the binaries the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import ROOT, free_port, now_ms, serve_http, stop_http, wait_for
from prometheus_servers import backfill, require_binaries, start_prometheus
from qbconsole.cli import main
from qbconsole.config import load_config
from qbconsole.datasource.prometheus import PrometheusBackend
from qbconsole.datasource.reader import PrometheusReader
from qbconsole.model import Sample
from qbconsole.report import build_report
from qbconsole.report import scratch as scratch_module
from qbconsole.report.remote import ScratchStore, build_remote_report, fetch_range, final_until
from qbconsole.report.window import MINUTE
from qbconsole.store import Store
from qbconsole.tui import reports_data
from qbconsole.tui.reports_data import ReportRange

STEP_MS = 10_000
UNREAD = "launch_party_balloons_total"  # in Prometheus, never read by a report


# ---- the data set ---------------------------------------------------------------------------------
def dataset(lo: int, hi: int, seed: int = 8) -> list[Sample]:
    """Every 10 s from lo to hi (series offset from the minute): gauges, counters with a reset,
    a histogram, probes with failures, and a name no report reads."""
    rng = random.Random(seed)
    out: list[Sample] = []

    def times(k: int) -> range:
        first = lo + 1_234 + 377 * k
        return range(first, hi, STEP_MS)

    k = 0
    for host in ("a", "b"):
        for name, low, high in (("system_cpu_percent", 20, 95), ("system_memory_percent", 40, 85)):
            k += 1
            out += [Sample(name, {"host": host}, t, round(rng.uniform(low, high), 3)) for t in times(k)]
    reset_at = lo + (hi - lo) * 3 // 4 + 29_000  # inside the report window, mid-minute
    counters = [("http_requests_total", {"route": r, "status": s}, rate) for r, s, rate in
                (("/api/auctions", "200", 40), ("/api/auctions", "500", 1), ("/api/bids", "200", 15),
                 ("/api/bids", "404", 2))]
    counters += [("quickbid_backend_requests_total", {"backend": b}, rate) for b, rate in (("b1", 20), ("b2", 26))]
    counters += [("quickbid_orders_total", {}, 1), ("quickbid_revenue_total", {}, 30), (UNREAD, {}, 5)]
    for name, labels, rate in counters:
        k += 1
        value = 0.0
        for t in times(k):
            value = 0.0 if name == "http_requests_total" and labels["status"] == "200" and \
                t - STEP_MS < reset_at <= t else value + rng.randint(0, 2 * rate)
            out.append(Sample(name, labels, t, value))
    k += 1
    buckets = {"0.1": 0.0, "0.5": 0.0, "1": 0.0, "+Inf": 0.0}
    total = 0.0
    for t in times(k):
        for _ in range(rng.randint(0, 30)):
            d = rng.expovariate(6)
            total += d
            for le in buckets:
                if le == "+Inf" or d <= float(le):
                    buckets[le] += 1
        out += [Sample("http_request_duration_seconds_bucket", {"le": le}, t, v) for le, v in buckets.items()]
        out += [Sample("http_request_duration_seconds_sum", {}, t, round(total, 6)),
                Sample("http_request_duration_seconds_count", {}, t, buckets["+Inf"])]
    k += 1
    out += [Sample("probe_success", {"target": "api"}, t, 0.0 if rng.random() < 0.05 else 1.0) for t in times(k)]
    k += 1
    out += [Sample("http_connections", {}, t, float(rng.randint(5, 60))) for t in times(k)]
    return out


# ---- Prometheus -----------------------------------------------------------------------------------
class Backfilled:
    """The same samples in a local store and (as TSDB blocks) in a Prometheus."""

    def __init__(self, tmp: Path, minutes: int = 130) -> None:
        self.now = now_ms()
        self.data_lo, self.data_hi = self.now - minutes * MINUTE, self.now - 2 * MINUTE
        self.samples = dataset(self.data_lo, self.data_hi)
        backfill(self.samples, tmp)
        self.prometheus = start_prometheus(tmp)
        self.local = Store.open(tmp / "local.db")
        self.local.write(self.samples)
        self.local.rollup(self.now)
        self._alerts()
        self.backend = PrometheusBackend(self.prometheus.url)
        self.reader = PrometheusReader(self.backend)

    def _alerts(self) -> None:
        """Two incidents in the window (one acknowledged and resolved) and one long before it."""
        rows = [("HighCPU", "critical", self.now - 50 * MINUTE, self.now - 40 * MINUTE, self.now - 49 * MINUTE),
                ("ErrorsUp", "warning", self.now - 20 * MINUTE, None, None),
                ("Old", "info", self.now - 300 * MINUTE, self.now - 290 * MINUTE, None)]

        def insert(conn):
            for rule, severity, fired, resolved, acked in rows:
                alert_id = conn.execute(
                    "INSERT INTO alerts(rule, fingerprint, labels, severity, state, active_at, fired_at,"
                    " resolved_at, last_eval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rule, rule, '{"alertname":"%s"}' % rule, severity, "resolved" if resolved else "firing",
                     fired, fired, resolved, self.now)).lastrowid
                if acked:
                    conn.execute("INSERT INTO alert_events(alert_id, ts, kind, actor) VALUES (?, ?, ?, ?)",
                                 (alert_id, acked, "acknowledged", "ops"))
        self.local.transaction(insert)

    def stop(self) -> None:
        self.backend.close()
        self.local.close()
        self.prometheus.stop()


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    require_binaries("prometheus", "promtool")
    stack = Backfilled(tmp_path_factory.mktemp("prometheus-reports"))
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "rules.yaml")


def assert_same(local, remote, path: str = "") -> None:
    """Equal trees; floats to a relative 1e-9 (sums added in another order)."""
    if isinstance(local, dict):
        assert isinstance(remote, dict) and local.keys() == remote.keys(), f"{path}: {local.keys() ^ remote.keys()}"
        for key in local:
            assert_same(local[key], remote[key], f"{path}.{key}")
    elif isinstance(local, list):
        assert isinstance(remote, list) and len(local) == len(remote), path
        for i, (a, b) in enumerate(zip(local, remote)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(local, float) and isinstance(remote, (int, float)):
        assert math.isclose(local, remote, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {local} != {remote}"
    else:
        assert local == remote, f"{path}: {local!r} != {remote!r}"


# ---- exact: backfilled data -------------------------------------------------------------------------
def test_report_from_prometheus_equals_the_local_report(backfilled, config):
    b = backfilled
    start, end = b.now - 62 * MINUTE + 789, b.now - 3 * MINUTE + 321  # not on minutes
    local = build_report(b.local, config, start, end, now_ms=b.now).to_dict()
    remote = build_remote_report(b.reader, b.local, config, start, end, now_ms=b.now).to_dict()
    assert_same(local, remote)
    # The comparison is not vacuous: the data set reaches every kind of figure.
    app = remote["application"]
    assert app["requests"]["total"]["value"] > 0 and app["errors"]["total"]["value"] > 0
    assert app["response_time"]["p95"]["value"] > 0 and app["availability"]["availability"]["value"] < 1
    assert remote["system"]["cpu"]["utilization"]["value"] > 0
    assert remote["incidents"]["count"]["value"] == 2 and remote["incidents"]["mtta"]["value"] == 60
    assert any(o["status"] != "no data" for o in remote["slo"]["objectives"])
    previous = build_remote_report(b.reader, b.local, config, 2 * start - end, start, now_ms=b.now)
    assert previous.application["requests"]["total"].value > 0  # the comparison had a previous period


def test_a_counter_reset_inside_a_rolled_up_minute_counts_as_on_the_local_store(backfilled, config):
    b = backfilled
    start, end = b.now - 62 * MINUTE, b.now - 3 * MINUTE
    with ScratchStore(b.reader, *fetch_range(start, end), b.now) as scratch:
        report = build_report(scratch, config, start, end, now_ms=b.now)
        local = build_report(b.local, config, start, end, now_ms=b.now)
        assert scratch.final_until > start + 30 * MINUTE  # the reset minute is read from rollups first
    assert report.application["requests"]["total"].value == pytest.approx(
        local.application["requests"]["total"].value, rel=1e-12)


def test_only_the_names_the_report_reads_are_fetched(backfilled, config):
    b = backfilled
    start, end = b.now - 30 * MINUTE, b.now - 3 * MINUTE
    with ScratchStore(b.reader, *fetch_range(start, end), b.now) as scratch:
        assert UNREAD in scratch.names()
        build_report(scratch, config, start, end, now_ms=b.now)
        fetched = scratch.fetched
        assert UNREAD not in fetched
        assert {"http_requests_total", "system_cpu_percent", "probe_success"} <= set(fetched)
        assert not set(fetched) - set(scratch.names())


def test_scratch_store_rolls_up_whole_final_minutes_and_reads_raw_samples_when_asked(backfilled):
    b = backfilled
    name = "system_cpu_percent"
    lo, hi = b.now - 70 * MINUTE + 17, b.now - 4 * MINUTE - 5  # over a chunk boundary, off the minute
    want = sorted((s.labels["host"], s.ts, s.value) for s in b.samples if s.name == name and lo <= s.ts <= hi)
    with ScratchStore(b.reader, lo, hi, b.now) as scratch:
        first = -(-lo // MINUTE) * MINUTE  # the minute cut by lo is not rolled up
        assert scratch.final_until == final_until(hi, b.now) == (hi + 1) // MINUTE * MINUTE
        written = scratch.fetch(name)
        assert scratch.fetch(name) == 0  # once per name
        edges = [w for w in want if w[1] < first or w[1] >= scratch.final_until]
        assert scratch.samples_fetched == len(edges) > 0  # raw: only the partial minutes at both ends
        assert written == len(edges) + scratch.rollup_rows_fetched
        for info in scratch.store.series(name):
            [local] = b.local.series(name, info.labels)
            rolled = scratch.store.rollups(info.id, 0, 1 << 62)
            assert [r[0] for r in rolled] == list(range(first, scratch.final_until, MINUTE))
            expected = b.local.rollups(local.id, first, scratch.final_until - 1)
            assert [r[:2] + r[3:] for r in rolled] == [r[:2] + r[3:] for r in expected]
            assert [r[2] for r in rolled] == pytest.approx([r[2] for r in expected], rel=1e-12)
        # A query of raw samples fetches them first: the span it reads, of the name its series id has.
        sid = scratch.store.series(name)[0].id
        a, c = first + 10 * MINUTE, first + 20 * MINUTE - 1
        count = scratch.read().execute("SELECT count(*) FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ?",
                                       (sid, a, c)).fetchone()[0]
        host = scratch.store.series(name)[0].labels["host"]
        assert count == sum(1 for w in want if w[0] == host and a <= w[1] <= c) > 0
        assert scratch.samples_fetched == len(edges) + sum(1 for w in want if a <= w[1] <= c)
        got = sorted((info.labels["host"], ts, v) for info, pts in scratch.select(name, lo, hi) for ts, v in pts)
        assert got == want and scratch.samples_fetched == len(want)  # the rest, each sample once


def test_a_raw_read_without_both_time_bounds_fetches_the_whole_range_of_its_series_name(backfilled):
    b = backfilled
    lo, hi = b.now - 50 * MINUTE + 17, b.now - 4 * MINUTE - 5
    with ScratchStore(b.reader, lo, hi, b.now) as scratch:
        [info] = scratch.series("system_memory_percent", {"host": "b"})
        scratch.series("system_cpu_percent")
        before = scratch.samples_fetched
        conn = scratch.read()
        count = conn.execute("SELECT count(*) FROM samples WHERE series_id = :sid AND ts <= :hi",
                             {"sid": info.id, "hi": hi}).fetchone()[0]
        want = [s for s in b.samples if s.name == "system_memory_percent" and lo <= s.ts <= hi]
        assert count == sum(1 for s in want if s.labels["host"] == "b") > 0
        assert scratch.samples_fetched - before < len(want)  # of that name only, edges not again
        cpu = [s for s in b.samples if s.name == "system_cpu_percent" and lo <= s.ts <= hi]
        assert scratch.samples_fetched < len(want) + len(cpu)  # cpu's middle minutes were not fetched


def test_spans_say_what_is_missing_and_merge():
    spans = scratch_module.Spans()
    spans.add(10, 19)
    spans.add(30, 39)
    assert spans.missing(0, 50) == [(0, 9), (20, 29), (40, 50)]
    assert spans.missing(12, 35) == [(20, 29)]
    spans.add(20, 29)
    assert spans.spans == [(10, 39)] and spans.missing(10, 39) == []


def test_the_scratch_store_is_deleted_afterwards(backfilled, config, tmp_path):
    b = backfilled
    build_remote_report(b.reader, None, config, b.now - 10 * MINUTE, b.now, now_ms=b.now, directory=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def backfilled_hours(tmp_path_factory):
    require_binaries("prometheus", "promtool")
    stack = Backfilled(tmp_path_factory.mktemp("prometheus-reports-hours"), minutes=7 * 60)
    yield stack
    stack.stop()


def test_a_multi_hour_report_equals_the_local_one_from_a_fraction_of_the_raw_samples(backfilled_hours, config):
    b = backfilled_hours
    start, end = b.now - 183 * MINUTE + 4_567, b.now - 3 * MINUTE - 89  # 3 hours, not on minutes
    fetched: dict = {}
    local = build_report(b.local, config, start, end, now_ms=b.now).to_dict()
    remote = build_remote_report(b.reader, b.local, config, start, end, now_ms=b.now, fetched=fetched).to_dict()
    assert_same(local, remote)
    assert remote["application"]["requests"]["total"]["value"] > 0  # the counter reset is in the window
    lo, hi = fetch_range(start, end)
    held = sum(1 for s in b.samples if s.name in fetched["names"] and lo <= s.ts <= hi)
    assert fetched["rollup_rows"] > 0 and held > 20_000
    assert fetched["samples"] < held / 4, (fetched, held)  # what the previous version fetched: all of them


def test_names_scraped_less_often_than_the_break_even_are_read_raw_and_rolled_up_here(
        backfilled_hours, config, monkeypatch):
    b = backfilled_hours
    monkeypatch.setattr(scratch_module, "RAW_BELOW", 60 / (STEP_MS / 1000) + 1)  # 6 samples a minute: below
    start, end = b.now - 123 * MINUTE + 4_567, b.now - 3 * MINUTE - 89
    fetched: dict = {}
    local = build_report(b.local, config, start, end, now_ms=b.now).to_dict()
    remote = build_remote_report(b.reader, b.local, config, start, end, now_ms=b.now, fetched=fetched).to_dict()
    assert_same(local, remote)
    lo, hi = fetch_range(start, end)
    series = {(s.name, tuple(sorted(s.labels.items()))) for s in b.samples if s.name in fetched["names"]}
    assert 0 < fetched["rollup_rows"] <= scratch_module.PROBE_MINUTES * len(series)  # the last minutes only
    assert fetched["samples"] == sum(1 for s in b.samples if s.name in fetched["names"] and lo <= s.ts <= hi)


# ---- wiring: the command line and the console ---------------------------------------------------------
METRIC_SECTIONS = ("system", "application", "business", "user_experience", "slo")


@pytest.mark.parametrize("how", ["--datasource", "rules file"])
def test_qbconsole_report_reads_prometheus(backfilled, config, tmp_path, capsys, how):
    b = backfilled
    start, end = (b.now - 40 * MINUTE) // 1000 * 1000, (b.now - 5 * MINUTE) // 1000 * 1000
    rules, flags = ROOT / "rules.yaml", ["--datasource", b.prometheus.url]
    if how == "rules file":
        rules, flags = tmp_path / "rules.yaml", []
        rules.write_text((ROOT / "rules.yaml").read_text() + f"\ndatasource: {{kind: prometheus, url: '{b.prometheus.url}'}}\n")
    code = main(["--db", str(b.local.path), "--rules", str(rules), *flags, "report", "--from", str(start // 1000),
                 "--to", str(end // 1000), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    remote = json.loads(out.out)
    local = build_report(b.local, config, start, end, now_ms=b.now).to_dict()
    for section in METRIC_SECTIONS:
        assert_same(local[section], remote[section], section)
    assert remote["incidents"]["count"]["value"] == local["incidents"]["count"]["value"] == 1
    assert remote["incidents"]["ongoing_from_before"]["value"] == 1  # HighCPU fired before --from


def test_qbconsole_report_on_prometheus_without_a_store_has_no_incidents(backfilled, tmp_path, capsys):
    b = backfilled
    code = main(["--db", str(tmp_path / "none.db"), "--rules", str(ROOT / "rules.yaml"), "--datasource",
                 b.prometheus.url, "report", "--last", "30m", "--format", "json"])
    out = capsys.readouterr()
    assert code == 0 and "has no incidents" in out.err
    assert json.loads(out.out)["application"]["requests"]["total"]["value"] > 0
    assert not (tmp_path / "none.db").exists()


def test_qbconsole_report_says_when_prometheus_cannot_answer(tmp_path, capsys):
    code = main(["--db", str(tmp_path / "none.db"), "--rules", str(ROOT / "rules.yaml"), "--datasource",
                 f"http://127.0.0.1:{free_port()}", "report", "--last", "1h"])
    assert code == 1
    assert "cannot read the report's metrics: prometheus at http://127.0.0.1" in capsys.readouterr().err


def test_the_console_builds_reports_from_its_metrics_reader(backfilled, config):
    b = backfilled
    start, end = b.now - 45 * MINUTE, b.now - 4 * MINUTE
    span = ReportRange(start, end)
    on_prometheus = reports_data.build(SimpleNamespace(store=b.local, metrics=b.reader), config, span, b.now)
    on_store = reports_data.build(SimpleNamespace(store=b.local, metrics=b.local), config, span, b.now)
    assert_same(on_store.to_dict(), on_prometheus.to_dict())
    empty = Store.open(b.local.path.with_name("empty.db"))
    try:  # the console's store holds no samples on Prometheus: the figures come from Prometheus
        console = SimpleNamespace(store=empty, metrics=b.reader)
        assert reports_data.build(console, config, span, b.now).application["requests"]["total"].value == \
            on_store.application["requests"]["total"].value
    finally:
        empty.close()


# ---- live: Prometheus and the local collector scrape the same exporter --------------------------------------
class Exporter:
    """A prometheus_client registry served on a free loopback port; the test moves its values."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

        self.registry = registry = CollectorRegistry()
        self.requests = Counter("http_requests", "requests", ["route", "status"], registry=registry)
        self.cpu = Gauge("system_cpu_percent", "cpu", registry=registry)
        self.duration = Histogram("http_request_duration_seconds", "duration", registry=registry,
                                  buckets=(0.1, 0.25, 0.5, 1.0))
        for status in ("200", "500"):
            self.requests.labels("/api/bids", status)  # both series exist (at 0) before the window

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = serve_http(Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        stop_http(self.server)


def _samples_after(store: Store, reader: PrometheusReader, t: int) -> bool:
    """Both scrapers have a sample of every exporter name taken after ``t``."""
    names = ("http_requests_total", "system_cpu_percent", "http_request_duration_seconds_bucket")
    end = now_ms()
    return all(any(pts and pts[-1][0] > t for _, pts in source.select(name, t - 60_000, end))
               for source in (store, reader) for name in names)


def test_live_scrapes_give_the_same_report_within_scrape_timing(tmp_path, config):
    """Within what scrape timing explains: each scraper samples the exporter at its own moments
    (1 s apart, with its own phase), so a gauge that moved in the window has a slightly different
    number of samples at each value on each side: its average may differ by about one sample's
    share, while its peak and every counter increase (the activity happens between scrapes, and
    each side has a sample before the window and after the last change) are the same."""
    require_binaries("prometheus", "promtool")
    from qbconsole.agent import Agent

    exporter = Exporter()
    prometheus = start_prometheus(tmp_path, {"exporter": exporter.target})
    rules = tmp_path / "local.yaml"
    rules.write_text("settings: {evaluation_interval: 1s}\nsources:\n"
                     f"  - {{name: exporter, kind: prometheus, url: 'http://{exporter.target}/metrics', interval: 1s}}\n")
    store = Store.open(tmp_path / "local.db")
    agent = Agent(store, rules, holder="live-test", heartbeat_s=0.5)
    backend = PrometheusBackend(prometheus.url)
    reader = PrometheusReader(backend)
    agent.start()
    try:
        exporter.cpu.set(20)
        begin = now_ms()
        assert wait_for(lambda: _samples_after(store, reader, begin), 30, 0.2), "both scrapers see the exporter"
        start = now_ms()
        time.sleep(1.5)  # quiet: both sides take a sample at the start's values
        exporter.requests.labels("/api/bids", "200").inc(120)
        exporter.requests.labels("/api/bids", "500").inc(3)
        for i in range(40):
            exporter.duration.observe(0.05 + i * 0.02)
        exporter.cpu.set(40)
        time.sleep(3)
        exporter.cpu.set(60)
        exporter.requests.labels("/api/bids", "200").inc(30)
        time.sleep(3)
        end = now_ms()
        assert wait_for(lambda: _samples_after(store, reader, end), 15, 0.2), "both scrapers caught up"
        now = now_ms()
        local = build_report(store, config, start, end, now_ms=now)
        remote = build_remote_report(reader, store, config, start, end, now_ms=now)
    finally:
        agent.stop()
        backend.close()
        store.close()
        prometheus.stop()
        exporter.stop()
    assert remote.to_dict().keys() == local.to_dict().keys()
    la, ra = local.application, remote.application
    assert ra["requests"]["total"].value == la["requests"]["total"].value == 153
    assert ra["errors"]["total"].value == la["errors"]["total"].value == 3
    for q in ("p95", "p99"):
        assert ra["response_time"][q].value == pytest.approx(la["response_time"][q].value, rel=1e-9)
    assert ra["response_time"]["average"].value == pytest.approx(la["response_time"]["average"].value, rel=1e-9)
    lc, rc = local.system["cpu"], remote.system["cpu"]
    assert rc["peak"].value == lc["peak"].value == 60
    n = min(int(lc["average"].method.split()[2].replace(",", "")), int(rc["average"].method.split()[2].replace(",", "")))
    assert abs(rc["average"].value - lc["average"].value) <= 2 * (60 - 20) / n  # a sample or two per change
    lo_slo = {o["name"]: o["status"] for o in local.slo["objectives"]}
    assert {o["name"]: o["status"] for o in remote.slo["objectives"]} == lo_slo
