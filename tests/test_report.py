"""Performance report: every figure equals what is computed directly from the seeded samples.

The store holds two hours of known data (a sample every 10 s); the report covers the
second hour, (T0 + 1 h, T0 + 2 h], the previous period the first. Each figure is checked
against a direct computation over the raw samples written here — with the store's
rollups complete, partial (the window's tail read raw) and absent, which must all agree.
"""

from __future__ import annotations

import math
import statistics

import pytest

from qbconsole.config import parse_config
from qbconsole.model import Sample
from qbconsole.report import SECTIONS, build_report
from qbconsole.store import Store
from qbconsole.store import alerts as alert_rows

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
H = 3_600_000
STEP = 10_000
START, END = T0 + H, T0 + 2 * H
NOW = END + 10 * 60_000
KS = range(0, 721)  # samples at T0 + k * 10 s, k = 0..720 (the last one exactly at END)
RESET_K = 500  # http_requests_total{status="200"} restarts 20 s into a minute
NET_RESET_K = 650
PROBE_FAIL = range(400, 406)  # six failed probes
PROBE_GAP = range(600, 612)  # twelve probes missing
PAGE_LOADS = {"home": [(j + 1) * 0.25 for j in range(20)], "auction": [0.4, 0.9, 1.3, 2.2, 3.1]}
NPS_SCORES = [10, 9, 9, 8, 7, 6, 3, 0, 10, 9]
BUCKETS = {"0.1": 60, "0.5": 90, "1": 99, "+Inf": 100}  # observations per scrape at or below le
DB_BUCKETS = {"slow_q": {"0.01": 0, "0.1": 0, "1": 2, "+Inf": 2},
              "fast_q": {"0.01": 10, "0.1": 10, "1": 10, "+Inf": 10}}

RULES = """
optimizations:
  - name: more_workers
    alert: [HighCPU]
    action: {kind: scale, workers: "quickbid_workers + 2"}
slos:
  - name: cpu
    expr: avg_over_time(system_cpu_percent[W])
    op: "<"
    target: 70
    unit: percent
  - name: memory
    expr: avg_over_time(system_memory_percent[W])
    op: "<"
    target: 80
    unit: percent
  - name: db_query_time
    expr: sum(increase(db_query_duration_seconds_sum[W])) / sum(increase(db_query_duration_seconds_count[W]))
    op: "<"
    target: 0.1
    unit: seconds
  - name: api_p95
    expr: histogram_quantile(0.95, sum by (le) (increase(http_request_duration_seconds_bucket[W])))
    op: "<"
    target: 0.5
    unit: seconds
  - name: cache_hit_rate
    expr: >-
      sum(increase(cache_hits_total[W]))
      / (sum(increase(cache_hits_total[W])) + sum(increase(cache_misses_total[W])))
    op: ">"
    target: 0.9
    unit: ratio
  - name: availability
    expr: avg_over_time(probe_success[W])
    op: ">"
    target: 0.999
    unit: ratio
  - name: page_load
    expr: quantile_over_time(0.75, rum_page_load_seconds[W])
    op: "<"
    target: 2
    unit: seconds
  - name: error_rate
    expr: sum(increase(http_requests_total{status=~"5.."}[W])) / sum(increase(http_requests_total[W]))
    op: "<"
    target: 0.01
    unit: ratio
  - name: concurrent_users
    kind: capacity
    expr: max_over_time(quickbid_active_users[W])
    op: ">="
    target: 110
    unit: count
    requires: [cache_hit_rate]
"""


# ---- the data ------------------------------------------------------------------------------
def ts(k: int) -> int:
    return T0 + k * STEP


def requests_200(k: int) -> float:
    return 5.0 * k if k < RESET_K else 5.0 * (k - RESET_K) + 2


def net_sent(k: int) -> float:
    return 500.0 * k if k < NET_RESET_K else 500.0 * (k - NET_RESET_K) + 7


def samples() -> list[Sample]:
    out = []
    for k in KS:
        t = ts(k)
        out += [Sample("system_cpu_percent", {}, t, 40.0 + (k % 7) * 7),
                Sample("system_memory_percent", {}, t, 70.0 + (k % 5) * 3),
                Sample("system_disk_percent", {"mount": "/"}, t, 50.0),
                Sample("system_disk_percent", {"mount": "/data"}, t, 60.0 + k % 3),
                Sample("system_network_received_bytes_total", {"nic": "eth0"}, t, 1000.0 * k),
                Sample("system_network_sent_bytes_total", {"nic": "eth0"}, t, net_sent(k)),
                Sample("http_requests_total", {"route": "/a", "method": "GET", "status": "200"}, t, requests_200(k)),
                Sample("http_requests_total", {"route": "/a", "method": "GET", "status": "500"}, t, float(k // 10)),
                Sample("http_requests_total", {"route": "/a", "method": "GET", "status": "404"}, t, float(k // 5)),
                Sample("http_request_duration_seconds_sum", {"route": "/a"}, t, 20.0 * k),
                Sample("http_request_duration_seconds_count", {"route": "/a"}, t, 100.0 * k),
                Sample("cache_hits_total", {}, t, 9.0 * k), Sample("cache_misses_total", {}, t, 1.0 * k),
                Sample("quickbid_signups_total", {}, t, float(k // 6)),
                Sample("quickbid_sessions_total", {}, t, 2.0 * k), Sample("quickbid_bids_total", {}, t, 3.0 * k),
                Sample("quickbid_orders_total", {}, t, float(k // 4)),
                Sample("quickbid_revenue_total", {}, t, 12.5 * (k // 4)),
                Sample("quickbid_active_users", {}, t, 100.0 + k % 11),
                Sample("db_connections", {}, t, 4.0 + k % 2)]
        out += [Sample("http_request_duration_seconds_bucket", {"route": "/a", "le": le}, t, float(n * k))
                for le, n in BUCKETS.items()]
        for query, buckets in DB_BUCKETS.items():
            out += [Sample("db_query_duration_seconds_bucket", {"query": query, "le": le}, t, float(n * k))
                    for le, n in buckets.items()]
        out += [Sample("db_query_duration_seconds_sum", {"query": "slow_q"}, t, 0.5 * k),
                Sample("db_query_duration_seconds_count", {"query": "slow_q"}, t, 2.0 * k),
                Sample("db_query_duration_seconds_sum", {"query": "fast_q"}, t, 0.01 * k),
                Sample("db_query_duration_seconds_count", {"query": "fast_q"}, t, 10.0 * k)]
        for backend, rate in (("a", 10), ("b", 10), ("c", 40)):
            out.append(Sample("quickbid_backend_requests_total", {"backend": backend}, t, float(rate * k)))
        if k >= 400:  # a series that appears inside the window: its first sample is not an increase
            out.append(Sample("http_requests_total", {"route": "/b", "method": "GET", "status": "503"}, t,
                              float(1 + (k - 400) // 20)))
        if k not in PROBE_GAP:
            out.append(Sample("probe_success", {"target": "api"}, t, 0.0 if k in PROBE_FAIL else 1.0))
    for page, values in PAGE_LOADS.items():
        out += [Sample("rum_page_load_seconds", {"page": page}, START + 500 + j * 7_000, v)
                for j, v in enumerate(values)]
        out += [Sample("rum_page_load_seconds", {"page": page}, T0 + 500 + j * 7_000, 10 * v)  # previous hour
                for j, v in enumerate(values)]
    out += [Sample("rum_nps_score", {}, START + 1_000 + j * 60_000, float(v)) for j, v in enumerate(NPS_SCORES)]
    out += [Sample("rum_bounce", {}, START + 1_000 + j * 60_000, float(v)) for j, v in enumerate([1, 0, 0, 1])]
    out += [Sample("rum_session_duration_seconds", {}, START + 1_000 + j * 60_000, v)
            for j, v in enumerate([30.0, 90.0])]
    out += [Sample("rum_satisfaction_score", {}, START + 1_000 + j * 60_000, v) for j, v in enumerate([5.0, 4.0, 3.0])]
    out += [Sample("rum_interaction_seconds", {"page": "auction"}, START + 2_000 + j * 1_000, 0.1 * (j + 1))
            for j in range(9)]
    return out


def seed_alerts(store: Store) -> None:
    """A: fired, acked after 2 min, resolved after 20 min. B: critical, ongoing, never acked.
    C: fired before the window, resolved inside it. D: resolved before the window."""
    m = 60_000

    def txn(conn):
        def alert(rule, severity, fired, resolved=None, ack=None):
            aid = alert_rows.insert_alert(conn, rule, rule, {"alertname": rule, "instance": "web-1"}, {}, severity,
                                          "firing", 1.0, fired - m, fired, fired)
            alert_rows.add_event(conn, aid, fired, "firing", "engine")
            if ack is not None:
                alert_rows.acknowledge(conn, aid, "ana", ack)
            if resolved is not None:
                alert_rows.update_alert(conn, aid, state="resolved", value=0.0, annotations={}, fired_at=fired,
                                        resolved_at=resolved, keep_firing_since=None, t=resolved)
                alert_rows.add_event(conn, aid, resolved, "resolved", "engine")
        alert("HighCPU", "warning", START + 10 * m, resolved=START + 30 * m, ack=START + 12 * m)
        alert("EndpointDown", "critical", START + 40 * m)
        alert("HighMemory", "warning", START - 5 * m, resolved=START + 5 * m, ack=START - 4 * m)
        alert("SlowDatabaseQueries", "warning", T0 + 10 * m, resolved=T0 + 20 * m)
    store.transaction(txn)


def make_store(path, rollup_at: int | None) -> Store:
    store = Store.open(path, raw_retention_s=30 * 86400)
    store.write(samples())
    if rollup_at is not None:
        store.rollup(rollup_at)
    seed_alerts(store)
    return store


@pytest.fixture(scope="module")
def config():
    return parse_config(RULES)


@pytest.fixture(scope="module", params=["rolled", "partly", "raw"])
def store(request, tmp_path_factory):
    rollup_at = {"rolled": NOW, "partly": START + 30 * 60_000, "raw": None}[request.param]
    s = make_store(tmp_path_factory.mktemp(request.param) / "qb.db", rollup_at)
    yield s
    s.close()


@pytest.fixture(scope="module")
def report(store, config):
    return build_report(store, config, START, END, now_ms=NOW)


# ---- direct computations (independent of the report code) -----------------------------------------
def raw(store: Store, name: str, labels=None, start=START, end=END) -> list[tuple[int, float]]:
    return [p for _, pts in store.select(name, start + 1, end, labels) for p in pts]


def pooled_values(store, name, start=START, end=END) -> list[float]:
    return [v for _, v in raw(store, name, start=start, end=end)]


def increase(store: Store, name: str, labels=None, start=START, end=END) -> float:
    """Sum over consecutive samples of v - prev (v after a reset), from the last sample <= start."""
    total = 0.0
    for info, pts in store.select(name, start - 300_000, end, labels):
        prev = None
        for t, v in pts:
            if t <= start:
                prev = v
                continue
            if prev is not None:
                total += v - prev if v >= prev else v
            prev = v
    return total


def quantile(values: list[float], q: float) -> float:
    """Prometheus quantile_over_time: rank q * (n - 1), linear interpolation."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """Prometheus histogram_quantile: linear interpolation inside the bucket holding rank q * total."""
    bounds = sorted(buckets)
    total = buckets[math.inf]
    rank = q * total
    below, lower = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == math.inf:
                return bounds[-2]
            return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
        below, lower = buckets[bound], bound
    raise AssertionError("unreachable")


def close(a, b) -> bool:
    return a == pytest.approx(b, rel=1e-9, abs=1e-12)


# ---- the tests -------------------------------------------------------------------------------
def test_json_has_exactly_the_sections(report):
    assert list(report.to_dict()) == list(SECTIONS)
    assert SECTIONS == ("range", "system", "application", "business", "user_experience", "slo", "incidents",
                        "recommendations", "previous_period")


def test_every_figure_has_a_unit_and_missing_ones_a_reason(report):
    figures = list(report.figures())
    assert len(figures) > 100
    for fig in figures:
        assert fig.unit, fig
        assert fig.value is not None or fig.reason, fig

    def walk(node):
        if isinstance(node, dict):
            if "value" in node:
                assert node.get("unit"), node
                if node["value"] is None:
                    assert node.get("reason"), node
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(report.to_dict())


def test_range(report):
    r = report.range
    assert (r["from"].value, r["to"].value, r["duration"].value) == (START, END, 3600.0)
    assert (r["previous_from"].value, r["previous_to"].value) == (T0, START)
    assert r["from"].to_dict()["iso"] == "2026-01-01T01:00:00Z"


def test_cpu_and_memory(report, store):
    cpu = pooled_values(store, "system_cpu_percent")
    assert len(cpu) == 360  # the sample exactly at START is outside (START, END]
    fig = report.system["cpu"]
    assert close(fig["average"].value, statistics.fmean(cpu))
    assert fig["peak"].value == max(cpu) == 82.0
    assert close(fig["utilization"].value, sum(v > 70 for v in cpu) / len(cpu))
    assert fig["utilization"].unit == "ratio" and fig["target"].value == 70
    mem = pooled_values(store, "system_memory_percent")
    assert close(report.system["memory"]["average"].value, statistics.fmean(mem))
    assert close(report.system["memory"]["utilization"].value, sum(v > 80 for v in mem) / len(mem))


def test_disk_and_network(report, store):
    disk = report.system["disk"]
    data = pooled_values(store, "system_disk_percent") and [v for _, v in raw(store, "system_disk_percent",
                                                                                {"mount": "/data"})]
    assert disk["mount"] == "/data"
    assert close(disk["average"].value, statistics.fmean(data)) and disk["peak"].value == 62.0
    net = report.system["network"]
    received = increase(store, "system_network_received_bytes_total")
    assert received == 360 * 1000.0
    assert close(net["received_total"].value, received)
    assert close(net["received"].value, received / 3600)
    sent = increase(store, "system_network_sent_bytes_total")  # resets at k = 650
    assert sent == 500.0 * (NET_RESET_K - 1 - 360) + 7 + 500.0 * (720 - NET_RESET_K)
    assert close(net["sent_total"].value, sent)
    assert close(net["received_peak"].value, 6 * 1000.0 / 60)  # six scrapes a minute
    assert net["received"].unit == "bytes/s"


def test_database_and_cache(report, store):
    db = report.system["database"]
    total = increase(store, "db_query_duration_seconds_sum")
    count = increase(store, "db_query_duration_seconds_count")
    assert close(db["query_time_average"].value, total / count)
    buckets = {math.inf if le == "+Inf" else float(le): 360.0 * sum(b[le] for b in DB_BUCKETS.values())
               for le in ("0.01", "0.1", "1", "+Inf")}
    assert close(db["query_time_p95"].value, histogram_quantile(buckets, 0.95))
    assert "histogram_quantile" in db["query_time_p95"].method
    assert close(db["throughput"].value, count / 3600) and db["throughput"].unit == "queries/s"
    assert close(db["connections_average"].value, statistics.fmean(pooled_values(store, "db_connections")))
    slowest = db["slowest_queries"]
    assert [q["query"] for q in slowest] == ["slow_q", "fast_q"]
    assert close(slowest[0]["average"].value, 0.25)
    cache = report.system["cache"]
    assert close(cache["hit_rate"].value, 0.9) and cache["lookups"].value == 3600.0


def test_response_time_from_histogram(report, store):
    rt = report.application["response_time"]
    buckets = {math.inf if le == "+Inf" else float(le): 360.0 * n for le, n in BUCKETS.items()}
    assert close(rt["p95"].value, histogram_quantile(buckets, 0.95))
    assert close(rt["p95"].value, 0.5 + 0.5 * (0.95 * 36000 - 32400) / (35640 - 32400))  # by hand: 0.7777...
    assert close(rt["p99"].value, histogram_quantile(buckets, 0.99))
    assert rt["p95"].method.startswith("histogram_quantile over bucket increases (Prometheus method)")
    assert close(rt["average"].value, 0.2)


def test_response_time_exact_when_raw_per_request_samples_exist(tmp_path):
    store = Store.open(tmp_path / "raw.db")
    try:
        values = [0.01 * (i % 97) for i in range(500)]
        store.write([Sample("http_request_duration_seconds", {"route": "/a"}, START + 1 + i * 7, v)
                     for i, v in enumerate(values)])
        rt = build_report(store, None, START, END, now_ms=NOW).application["response_time"]
    finally:
        store.close()
    assert close(rt["p95"].value, quantile(values, 0.95)) and close(rt["p99"].value, quantile(values, 0.99))
    assert close(rt["average"].value, statistics.fmean(values))
    assert rt["p95"].method == "exact from 500 raw samples of http_request_duration_seconds"


def test_requests_errors_and_top_errors(report, store):
    req = report.application["requests"]
    total = increase(store, "http_requests_total")
    ok = increase(store, "http_requests_total", {"status": "200"})
    # by hand: 5 per scrape, the restart at k=500 counts its 2, the new /b series its growth only
    assert ok == 5.0 * (RESET_K - 1 - 360) + 2 + 5.0 * (720 - RESET_K)
    assert increase(store, "http_requests_total", {"status": "503"}) == (720 - 400) // 20
    assert close(req["total"].value, total)
    assert close(req["per_second_average"].value, total / 3600)
    errors = increase(store, "http_requests_total", {"status": "500"}) + \
        increase(store, "http_requests_total", {"status": "503"})
    err = report.application["errors"]
    assert close(err["total"].value, errors) and close(err["rate"].value, errors / total)
    assert close(err["client_errors"].value, increase(store, "http_requests_total", {"status": "404"}))
    top = err["top"]
    assert [(t["route"], t["status"]) for t in top] == [("/a", "500"), ("/b", "503")]
    assert close(top[0]["share"].value, 36 / errors)


def test_peak_rate_is_the_highest_per_minute_rate(report, store):
    pts = {}
    for _, series in store.select("http_requests_total", START - 300_000, END):
        prev = None
        for t, v in series:
            if prev is not None and t > START:
                minute = t // 60_000 * 60_000
                pts[minute] = pts.get(minute, 0.0) + (v - prev if v >= prev else v)
            prev = v
    whole = {m: v for m, v in pts.items() if m > START and m + 59_999 <= END}
    assert close(report.application["requests"]["per_second_peak"].value, max(whole.values()) / 60)


def test_availability_from_probe_gaps(report):
    av = report.application["availability"]
    probes = 360 - len(PROBE_GAP)
    assert av["probes"].value == probes and av["failed_probes"].value == len(PROBE_FAIL)
    assert av["downtime"].value == 60.0  # six failed probes x 10 s
    assert av["uptime"].value == (probes - 6) * 10.0
    assert av["unmonitored"].value == 120.0  # twelve missing probes
    assert close(av["availability"].value, (probes - 6) / probes)
    assert "stands for one probe interval" in av["assumption"]
    [outage] = av["outages"]
    assert outage["start"].value == ts(400) and outage["end"].value == ts(405) + STEP
    assert outage["duration"].value == 60.0


def test_backends_spread(report):
    b = report.application["backends"]
    counts = [3600.0, 3600.0, 14400.0]
    assert close(b["spread"].value, 100 * statistics.pstdev(counts) / statistics.fmean(counts))
    assert [r["backend"] for r in b["backends"]] == ["a", "b", "c"]


def test_business(report, store):
    biz = report.business
    sessions = increase(store, "quickbid_sessions_total")
    orders = increase(store, "quickbid_orders_total")
    revenue = increase(store, "quickbid_revenue_total")
    assert (sessions, orders, revenue) == (720.0, 90.0, 1125.0)
    assert biz["new_users"].value == increase(store, "quickbid_signups_total") == 60.0
    assert close(biz["conversion_rate"].value, orders / sessions)
    assert close(biz["average_order_value"].value, 12.5)
    active = pooled_values(store, "quickbid_active_users")
    assert close(biz["active_users"]["average"].value, statistics.fmean(active))
    assert biz["active_users"]["peak"].value == 110.0
    assert close(biz["revenue_per_user"].value, revenue / statistics.fmean(active))
    steps = biz["funnel"]["steps"]
    assert [s["step"] for s in steps] == ["browse", "bid", "checkout"]
    assert close(steps[1]["from_previous"].value, 1080 / 720) and close(steps[2]["from_previous"].value, 90 / 1080)
    assert biz["revenue"].unit == "currency"


def test_user_experience(report):
    ux = report.user_experience
    loads = [v for values in PAGE_LOADS.values() for v in values]
    assert close(ux["page_load"]["p75"].value, quantile(loads, 0.75))
    assert close(ux["page_load"]["p95"].value, quantile(loads, 0.95))
    assert ux["page_load"]["p75"].method == "exact from 25 raw samples of rum_page_load_seconds"
    home = next(p for p in ux["page_load"]["pages"] if p["page"] == "home")
    assert close(home["p75"].value, quantile(PAGE_LOADS["home"], 0.75)) and home["views"].value == 20
    assert close(ux["interaction"]["p75"].value, quantile([0.1 * (j + 1) for j in range(9)], 0.75))
    assert ux["bounce_rate"].value == 0.5 and ux["session_duration"].value == 60.0
    assert ux["satisfaction"].value == 4.0
    assert ux["nps"].value == pytest.approx(100 * (5 - 3) / 10) and ux["nps_responses"].value == 10


def test_incidents(report):
    inc = report.incidents
    names = [i["alert"] for i in inc["items"]]
    assert sorted(names) == ["EndpointDown", "HighCPU", "HighMemory"]  # D ended before the window
    assert names[0] == "EndpointDown"  # critical first
    cpu = next(i for i in inc["items"] if i["alert"] == "HighCPU")
    assert cpu["time_to_acknowledge"].value == 120.0 and cpu["time_to_resolve"].value == 1200.0
    assert cpu["duration"].value == 1200.0 and cpu["end"].value == START + 30 * 60_000
    down = next(i for i in inc["items"] if i["alert"] == "EndpointDown")
    assert down["end"] == "ongoing" and down["time_to_acknowledge"].value is None
    assert down["duration"].value == (NOW - (START + 40 * 60_000)) / 1000
    memory = next(i for i in inc["items"] if i["alert"] == "HighMemory")
    assert memory["began_before_window"] is True
    assert inc["count"].value == 2 and inc["ongoing_from_before"].value == 1
    assert inc["mtta"].value == 120.0 and inc["mttr"].value == 1200.0  # only incidents that began inside
    assert inc["unacknowledged"].value == 1
    assert inc["by_severity"]["critical"].value == 1


def test_slo_actuals_equal_the_direct_figures(report, store):
    rows = {r["name"]: r for r in report.slo["objectives"]}
    cpu = pooled_values(store, "system_cpu_percent")
    assert close(rows["cpu"]["actual"].value, statistics.fmean(cpu)) and rows["cpu"]["status"] == "met"
    assert rows["memory"]["status"] == "met"
    assert close(rows["db_query_time"]["actual"].value, report.system["database"]["query_time_average"].value)
    assert close(rows["api_p95"]["actual"].value, report.application["response_time"]["p95"].value)
    assert rows["api_p95"]["status"] == "missed"
    assert close(rows["cache_hit_rate"]["actual"].value, 0.9) and rows["cache_hit_rate"]["status"] == "missed"
    assert close(rows["availability"]["actual"].value, report.application["availability"]["availability"].value)
    assert close(rows["error_rate"]["actual"].value, report.application["errors"]["rate"].value)
    # page_load gives one series per page: the worst one is the actual
    assert close(rows["page_load"]["actual"].value, quantile(PAGE_LOADS["home"], 0.75))
    assert rows["page_load"]["status"] == "missed" and len(rows["page_load"]["series"]) == 2
    assert report.slo["summary"]["met"].value + report.slo["summary"]["missed"].value == len(rows)


def test_error_budgets(report, store):
    rows = {r["name"]: r for r in report.slo["objectives"]}
    av = rows["availability"]
    assert close(av["error_budget_used"].value, (1 - av["actual"].value) / (1 - 0.999))
    er = rows["error_rate"]
    assert close(er["error_budget_used"].value, er["actual"].value / 0.01)
    # threshold objective: 5-minute spans of the window whose average CPU broke 70 % (none do: the
    # 7-value cycle averages 61 % in every span) and of memory above 80 % (none: 76 % on average)
    assert rows["cpu"]["error_budget_used"].value == 0.0
    assert "5-minute spans" in rows["cpu"]["budget_definition"]
    # api_p95 breaks its target in every span: 100 % of the time in broken spans / 1 % allowed
    assert close(rows["api_p95"]["error_budget_used"].value, 100.0)


def test_capacity_slo_needs_its_requirements_in_the_same_span(report):
    row = next(r for r in report.slo["objectives"] if r["name"] == "concurrent_users")
    # the peak (110 users) reached the target, but cache_hit_rate (0.9, needs > 0.9) never held
    assert row["actual"].value == 110.0
    assert row["status"] == "missed" and "cache_hit_rate" in row["why"]
    assert row["error_budget_used"].value is None


def test_recommendations_ranked_with_evidence(report, config):
    recs = report.recommendations
    ids = [r["id"] for r in recs]
    assert {"high_p95", "error_rate", "availability", "low_cache_hit_rate", "backend_imbalance",
            "page_load"} <= set(ids)
    ranks = [{"high": 0, "medium": 1, "low": 2}[r["priority"]] for r in recs]
    assert ranks == sorted(ranks)
    p95 = next(r for r in recs if r["id"] == "high_p95")
    assert p95["priority"] == "high" and p95["evidence"][0] is report.application["response_time"]["p95"]
    assert "/a" in p95["next_step"]
    for rec in recs:
        assert rec["next_step"] and rec["evidence"] and all(e.unit for e in rec["evidence"])


def test_slow_query_and_cpu_recommendations_name_queries_and_optimizations(tmp_path):
    store = Store.open(tmp_path / "busy.db")
    try:
        batch = []
        for k in range(1, 361):
            t = START + k * STEP
            batch += [Sample("system_cpu_percent", {}, t, 85.0),
                      Sample("db_query_duration_seconds_sum", {"query": "auction_by_seller"}, t, 0.4 * k),
                      Sample("db_query_duration_seconds_count", {"query": "auction_by_seller"}, t, 1.0 * k)]
        store.write(batch)
        recs = build_report(store, parse_config(RULES), START, END, now_ms=NOW).recommendations
    finally:
        store.close()
    cpu = next(r for r in recs if r["id"] == "sustained_cpu")
    assert cpu["priority"] == "high" and cpu["optimization"] == "more_workers"
    queries = next(r for r in recs if r["id"] == "slow_queries")
    assert "auction_by_seller" in queries["next_step"] and queries["optimization"] is None


def test_previous_period(report, store):
    prev = {h["key"]: h for h in report.previous_period["headlines"]}
    cpu_prev = statistics.fmean(pooled_values(store, "system_cpu_percent", T0, START))
    assert close(prev["cpu_average"]["previous"].value, cpu_prev)
    assert close(prev["cpu_average"]["change"].value, report.system["cpu"]["average"].value - cpu_prev)
    req_prev = increase(store, "http_requests_total", start=T0, end=START)
    assert close(prev["requests"]["previous"].value, req_prev)
    cur = report.application["requests"]["total"].value
    assert close(prev["requests"]["change_relative"].value, (cur - req_prev) / req_prev)
    assert prev["requests"]["verdict"] == ("better" if cur > req_prev else "worse")
    loads_prev = [10 * v for values in PAGE_LOADS.values() for v in values]
    assert close(prev["page_load_p75"]["previous"].value, quantile(loads_prev, 0.75))
    assert prev["page_load_p75"]["verdict"] == "better"  # ten times faster now
    assert prev["incidents"]["previous"].value == 2  # C and D began in the previous hour
    assert report.previous_period["range"]["from"].value == T0


def test_empty_store_gives_null_figures_with_reasons(tmp_path, config):
    store = Store.open(tmp_path / "empty.db")
    try:
        report = build_report(store, config, START, END, now_ms=NOW)
    finally:
        store.close()
    cpu = report.system["cpu"]["average"]
    assert cpu.value is None and cpu.reason == "no samples of system_cpu_percent in the window"
    assert all(r["status"] == "no data" for r in report.slo["objectives"])
    assert report.recommendations == []
    data = report.to_dict()
    assert data["application"]["response_time"]["p95"]["value"] is None


CAPACITY_RULES = """
slos:
  - name: cache_hit_rate
    expr: >-
      sum(increase(cache_hits_total[W]))
      / (sum(increase(cache_hits_total[W])) + sum(increase(cache_misses_total[W])))
    op: ">"
    target: 0.9
    unit: ratio
  - name: concurrent_users
    kind: capacity
    expr: max_over_time(quickbid_active_users[W])
    op: ">="
    target: 115
    unit: count
    requires: [cache_hit_rate]
"""


@pytest.mark.parametrize("peak_minute, good_minute, peak, status", [
    (20, 20, 120.0, "met"),  # the peak came while the cache held its target
    (20, 40, 120.0, "missed"),  # the peak came while it did not
    (20, 20, 110.0, "missed"),  # the peak never reached the target
])
def test_capacity_slo_logic(tmp_path, peak_minute, good_minute, peak, status):
    store = Store.open(tmp_path / "cap.db")
    try:
        batch, hits, misses = [], 0.0, 0.0
        for k in range(0, 361):
            t = START + k * STEP
            minute = k // 6
            in_good_span = good_minute <= minute < good_minute + 5  # one aligned 5-minute span
            hits, misses = hits + (19 if in_good_span else 5), misses + (1 if in_good_span else 5)
            users = peak if peak_minute <= minute < peak_minute + 5 else 100.0
            batch += [Sample("quickbid_active_users", {}, t, users), Sample("cache_hits_total", {}, t, hits),
                      Sample("cache_misses_total", {}, t, misses)]
        store.write(batch)
        store.rollup(NOW)
        report = build_report(store, parse_config(CAPACITY_RULES), START, END, now_ms=NOW)
    finally:
        store.close()
    row = next(r for r in report.slo["objectives"] if r["name"] == "concurrent_users")
    assert row["actual"].value == peak and row["status"] == status
    cache = next(r for r in report.slo["objectives"] if r["name"] == "cache_hit_rate")
    assert cache["status"] == "missed"  # over the whole hour the cache missed its target
    if status == "met":
        assert row["peak_within_requirements"].value == peak
    elif peak < 115:
        assert row["why"] == "the peak stayed below the target"
    else:
        assert row["why"] == "the target was reached only while cache_hit_rate did not hold"
        assert row["peak_within_requirements"].value == 100.0


def test_windows_older_than_the_raw_retention_come_from_rollups(tmp_path):
    """Raw samples of the first hour are purged: figures start at its first whole minute and
    end before its last sample (both raw-only); counters restart-marked approximate."""
    store = Store.open(tmp_path / "old.db", raw_retention_s=3600)
    try:
        batch = []
        for k in range(0, 3 * 360 + 1):
            t = T0 + k * STEP
            batch += [Sample("system_cpu_percent", {}, t, float(k % 13)),
                      Sample("quickbid_orders_total", {}, t, float(3 * k)),
                      Sample("quickbid_sessions_total", {}, t, float(7 * (k % 200)))]  # restarts every 2000 s
        store.write(batch)
        now = T0 + 3 * H
        store.rollup(now)
        store.purge(now)
        report = build_report(store, None, T0, T0 + H, now_ms=now)
    finally:
        store.close()
    kept = [k for k in range(0, 361) if T0 + 60_000 <= T0 + k * STEP < T0 + H]
    assert close(report.system["cpu"]["average"].value, statistics.fmean(k % 13 for k in kept))
    assert report.business["orders"].value == 3.0 * (kept[-1] - (kept[0] - 1))  # from the last sample before
    assert "approximated" in report.business["sessions"].method
    assert any("purged" in note for note in report.range["notes"])
    assert "raw retention" in report.user_experience["page_load"]["p75"].reason


def test_availability_of_several_targets(tmp_path):
    store = Store.open(tmp_path / "probes.db")
    try:
        batch = []
        for k in range(361, 721):
            batch.append(Sample("probe_success", {"target": "api"}, ts(k), 0.0 if k < 391 else 1.0))  # 300 s down
            if k % 2:
                batch.append(Sample("probe_success", {"target": "web"}, ts(k), 1.0))  # every 20 s, all good
        store.write(batch)
        av = build_report(store, None, START, END, now_ms=NOW).application["availability"]
    finally:
        store.close()
    by_target = {t["target"]: t for t in av["targets"]}
    assert by_target["api"]["downtime"].value == 300.0 and by_target["web"]["probe_interval"].value == 20.0
    assert by_target["web"]["uptime"].value == 180 * 20.0
    assert av["downtime"].value == 150.0 and av["uptime"].value == (330 * 10.0 + 3600.0) / 2  # means
    assert close(av["availability"].value, (3300 + 3600) / (3300 + 300 + 3600))  # time up / time probed


def test_an_absent_labelled_counter_counts_as_zero_in_slos(tmp_path):
    """No 5xx series at all (client libraries create it on the first error) is an error
    rate of 0, not "no data"; without any request it stays "no data"."""
    store = Store.open(tmp_path / "ok.db")
    try:
        store.write([Sample("http_requests_total", {"route": "/a", "status": "200"}, ts(k), 5.0 * k)
                     for k in range(360, 721)])
        report = build_report(store, parse_config(RULES), START, END, now_ms=NOW)
        quiet = build_report(store, parse_config(RULES), T0 - H, T0, now_ms=NOW)
    finally:
        store.close()
    row = next(r for r in report.slo["objectives"] if r["name"] == "error_rate")
    assert row["actual"].value == 0.0 and row["status"] == "met"
    assert 'no http_requests_total{status=~"5.."} series: counted as 0' in row["actual"].method
    assert report.application["errors"]["rate"].value == 0.0
    assert next(r for r in quiet.slo["objectives"] if r["name"] == "error_rate")["status"] == "no data"


def test_late_real_user_events_count(tmp_path):
    """An event that arrives after its minute was rolled up (ingest takes them up to 24 h
    late) is in the figures: event series are read raw."""
    store = Store.open(tmp_path / "late.db")
    try:
        store.write([Sample("rum_bounce", {}, START + 60_000 * j + 5, float(j % 2)) for j in range(40)])
        store.rollup(NOW)
        store.write([Sample("rum_bounce", {}, START + 90_000, 1.0)])  # late, into a final minute
        ux = build_report(store, None, START, END, now_ms=NOW).user_experience
    finally:
        store.close()
    assert ux["bounce_rate"].value == 21 / 41
