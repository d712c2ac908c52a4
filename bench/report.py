"""Benchmark the performance report: a 7-day report over 100 series.

    python bench/report.py [--json] [--days 7] [--step 15] [--repeats 3]
    python bench/report.py --datasource [--hours 1] [--step 15]   # the same data read from Prometheus
                                                                  # (--hours 24 or 168: long windows)

Seeds a temporary store the way a running agent leaves it: 100 series of the
platform, system, probe, business and real-user metrics, one sample every
``--step`` seconds, for the report window and the week before it (whose raw
samples are rolled up and then purged by the 7-day raw retention, as the agent's
housekeeping does). Platform counters reset twice in the window (restarts).

Prints:
  report_s       median time of ``build_report`` (all sections, SLOs with their
                 error-budget spans, recommendations, previous period); target <= 2 s
  baseline_s     one full raw scan of the window: every sample of the 100 series read
                 into Python (what any report computed from raw samples must do at least)
  ratio          report_s / baseline_s
The temporary files are removed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qbconsole.config import DEFAULT_RULES, load_config  # noqa: E402
from qbconsole.model import Sample  # noqa: E402
from qbconsole.report import build_report  # noqa: E402
from qbconsole.store import Store  # noqa: E402

DAY_MS = 86_400_000
T_END = 1_767_225_600_000 + 14 * DAY_MS  # 2026-01-15T00:00:00Z
HTTP_LE = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5", "7.5",
           "10", "+Inf")
DB_LE = ("0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
         "+Inf")
ROUTES = ("/auctions", "/auctions/{id}", "/bids", "/checkout")


def series_plan() -> list[tuple[str, dict[str, str], str]]:
    """The 100 series: (name, labels, kind) with kind gauge | counter | event."""
    plan = [("system_cpu_percent", {}, "gauge"), ("system_memory_percent", {}, "gauge"),
            ("system_load1", {}, "gauge"),
            ("system_disk_percent", {"mount": "/"}, "gauge"), ("system_disk_percent", {"mount": "/var"}, "gauge"),
            ("system_disk_read_bytes_total", {}, "counter"), ("system_disk_written_bytes_total", {}, "counter"),
            ("system_network_received_bytes_total", {"nic": "eth0"}, "counter"),
            ("system_network_sent_bytes_total", {"nic": "eth0"}, "counter")]
    for route in ROUTES:
        for status in ("200", "404", "500"):
            plan.append(("http_requests_total", {"route": route, "method": "GET", "status": status}, "counter"))
    for route in ROUTES[:2]:
        plan += [("http_request_duration_seconds_bucket", {"route": route, "le": le}, "counter") for le in HTTP_LE]
        plan += [("http_request_duration_seconds_sum", {"route": route}, "counter"),
                 ("http_request_duration_seconds_count", {"route": route}, "counter")]
    plan += [("db_query_duration_seconds_bucket", {"query": "auction_view", "le": le}, "counter") for le in DB_LE]
    for query in ("auction_view", "place_bid"):
        plan += [("db_query_duration_seconds_sum", {"query": query}, "counter"),
                 ("db_query_duration_seconds_count", {"query": query}, "counter")]
    plan += [("db_connections", {}, "gauge"), ("http_connections", {}, "gauge"), ("cache_size", {}, "gauge"),
             ("quickbid_workers", {}, "gauge"), ("cache_hits_total", {}, "counter"),
             ("cache_misses_total", {}, "counter"), ("quickbid_active_users", {}, "gauge"),
             ("quickbid:http_requests_ok:rate1m", {}, "gauge")]
    plan += [("probe_success", {"target": t}, "probe") for t in ("api", "web")]
    plan += [(f"quickbid_{n}_total", {}, "counter") for n in ("signups", "sessions", "bids", "orders", "revenue")]
    plan += [("quickbid_backend_requests_total", {"backend": b}, "counter") for b in ("a", "b", "c")]
    plan += [("rum_page_load_seconds", {"page": p}, "event") for p in ("home", "auction", "checkout")]
    plan += [("rum_interaction_seconds", {"page": p}, "event") for p in ("auction", "checkout")]
    plan += [(n, {}, "event") for n in ("rum_bounce", "rum_session_duration_seconds", "rum_satisfaction_score",
                                        "rum_nps_score", "rum_task_completed")]
    assert len(plan) == 100, len(plan)
    return plan


def _value(name: str, labels: dict, kind: str, k: int, rng: random.Random, state: dict) -> float:
    key = (name, tuple(sorted(labels.items())))
    if kind == "counter":
        if name.endswith("_bucket"):  # cumulative buckets of one set of observations per scrape
            bounds = HTTP_LE if "route" in labels else DB_LE
            group = (name, labels.get("route", labels.get("query")), k)
            observed = state.setdefault(group, 100.0 * rng.random())
            step = observed * (bounds.index(labels["le"]) + 1) / len(bounds)
        else:
            step = (1.0 + zlib.crc32(repr(key).encode()) % 50) * rng.random()
        total = state.get(key, 0.0) + step
        if k in state["restarts"] and not name.startswith("system_"):
            total = 0.0  # the platform restarted
        state[key] = total
        return total
    if kind == "probe":
        return 0.0 if rng.random() < 0.002 else 1.0
    if kind == "event":
        if name == "rum_nps_score":
            return float(rng.randint(0, 10))
        if name in ("rum_bounce", "rum_task_completed"):
            return float(rng.random() < 0.4)
        return rng.lognormvariate(0, 0.5)
    day = math.sin(2 * math.pi * (k % 5760) / 5760)
    return max(0.0, 50 + 25 * day + 10 * rng.random())


def seed(store: Store, window_ms: int, step_ms: int, *, purge: bool = True) -> int:
    plan = series_plan()
    rng = random.Random(6)
    start = T_END - 2 * window_ms
    n = 2 * window_ms // step_ms
    window_k = window_ms // step_ms
    state: dict = {"restarts": {window_k + window_k // 3, window_k + 2 * window_k // 3}}
    written = 0
    chunk = 2000
    for k0 in range(0, n, chunk):
        batch = [Sample(name, labels, start + k * step_ms + 1, _value(name, labels, kind, k, rng, state))
                 for k in range(k0, min(n, k0 + chunk)) for name, labels, kind in plan]
        written += store.write(batch)
        for k in range(k0, min(n, k0 + chunk)):  # forget the per-scrape histogram draws
            for route in ROUTES[:2]:
                state.pop(("http_request_duration_seconds_bucket", route, k), None)
            state.pop(("db_query_duration_seconds_bucket", "auction_view", k), None)
    store.rollup(T_END)
    if purge:
        store.purge(T_END)  # the week before the report keeps only its rollups
    return written


def raw_scan(store: Store, start: int, end: int) -> float:
    """Seconds to read every raw sample of every series in the window into Python."""
    t = time.perf_counter()
    for name in store.names():
        store.select(name, start + 1, end)
    return time.perf_counter() - t


def datasource_bench(args) -> int:
    """The report over ``--hours`` read from Prometheus: the seeded samples (window and previous
    period, all raw) are backfilled into a Prometheus (promtool blocks; a free loopback port and
    a temporary directory, stopped afterwards), and build_remote_report is timed against
    build_report on the local store holding the same samples."""
    import shutil
    import socket
    import subprocess

    import httpx

    from qbconsole.datasource.prometheus import PrometheusBackend
    from qbconsole.datasource.reader import PrometheusReader
    from qbconsole.report.remote import build_remote_report, fetch_range

    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        print("prometheus and promtool are needed (make system-deps)", file=sys.stderr)
        return 2
    window_ms, step_ms = int(args.hours * 3_600_000), int(args.step * 1000)
    config = load_config(DEFAULT_RULES)
    start, end = T_END - window_ms, T_END
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db", raw_retention_s=400 * 86400)
        proc = None
        try:
            samples = seed(store, window_ms, step_ms, purge=False)
            with open(Path(tmp) / "input.om", "w") as out:
                for name in store.names():
                    for info, points in store.select(name, 0, T_END):
                        labels = ",".join(f'{k}="{v}"' for k, v in sorted(info.labels.items()))
                        out.writelines(f"{name}{{{labels}}} {v!r} {ts / 1000:.3f}\n" for ts, v in points)
                out.write("# EOF\n")
            subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(Path(tmp) / "input.om"),
                            str(Path(tmp) / "data")], check=True, capture_output=True)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            (Path(tmp) / "prometheus.yml").write_text("scrape_configs: []\n")
            proc = subprocess.Popen([prometheus, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/data",
                                     "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            backend = PrometheusBackend(url, timeout_s=60)
            remote_times, local_times, fetched = [], [], {}
            for _ in range(args.repeats):
                t = time.perf_counter()
                report = build_remote_report(PrometheusReader(backend), store, config, start, end, now_ms=end + 60_000,
                                             fetched=fetched)
                remote_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                build_report(store, config, start, end, now_ms=end + 60_000)
                local_times.append(time.perf_counter() - t)
            backend.close()
            figures = sum(1 for f in report.figures() if f.value is not None)
            lo, hi = fetch_range(start, end)  # all raw samples of the names read: what reading them raw costs
            held = sum(len(points) for name in fetched["names"] for _, points in store.select(name, lo, hi))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
            store.close()
    result = {"prometheus_report_s": round(statistics.median(remote_times), 3),
              "prometheus_runs_s": [round(x, 3) for x in remote_times],
              "local_report_s": round(statistics.median(local_times), 3), "hours": args.hours, "step_s": args.step,
              "series": 100, "samples": samples, "figures_with_a_value": figures,
              "raw_samples_fetched": fetched["samples"], "rollup_rows_fetched": fetched["rollup_rows"],
              "raw_samples_of_the_names_read": held}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.hours:g}-hour report over 100 series, a sample every {args.step:g} s "
              f"({samples:,} samples: the window and the previous period)")
        print(f"prometheus  {result['prometheus_report_s']:.3f} s  (median of {args.repeats}: "
              f"{', '.join(f'{x:.3f}' for x in remote_times)}), {figures} figures with a value")
        print(f"fetched     {fetched['samples']:,} raw samples + {fetched['rollup_rows']:,} rollup rows "
              f"({len(fetched['names'])} names; they hold {held:,} raw samples in the range read)")
        print(f"local       {result['local_report_s']:.3f} s  (the same samples in the local store)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--step", type=float, default=15.0, help="seconds between samples (default 15)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasource", action="store_true",
                    help="time the report read from a real Prometheus instead (see datasource_bench)")
    ap.add_argument("--hours", type=float, default=1.0, help="the Prometheus report's window (default 1 h)")
    args = ap.parse_args()
    if args.datasource:
        return datasource_bench(args)
    step_ms = int(args.step * 1000)
    config = load_config(DEFAULT_RULES)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db", raw_retention_s=args.days * 86400)
        try:
            t = time.perf_counter()
            samples = seed(store, args.days * DAY_MS, step_ms)
            seed_s = time.perf_counter() - t
            start, end = T_END - args.days * DAY_MS, T_END
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                report = build_report(store, config, start, end, now_ms=end)
                times.append(time.perf_counter() - t)
            baseline = min(raw_scan(store, start, end) for _ in range(2))
            figures = sum(1 for _ in report.figures())
        finally:
            store.close()
    report_s = statistics.median(times)
    result = {"report_s": round(report_s, 3), "report_runs_s": [round(x, 3) for x in times],
              "baseline_raw_scan_s": round(baseline, 3), "ratio": round(report_s / baseline, 3),
              "series": 100, "days": args.days, "step_s": args.step, "samples_seeded": samples,
              "figures": figures, "seed_s": round(seed_s, 1), "target_s": 2.0}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.days}-day report over 100 series, a sample every {args.step:g} s "
              f"({samples:,} samples seeded in {seed_s:.0f} s, previous week as rollups only)")
        print(f"report_s    {report_s:.3f} s  (median of {args.repeats}: "
              f"{', '.join(f'{x:.3f}' for x in times)}; target <= 2 s), {figures} figures")
        print(f"baseline_s  {baseline:.3f} s  (one full raw scan of the window into Python)")
        print(f"ratio       {report_s / baseline:.2f}  (report / raw scan)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
