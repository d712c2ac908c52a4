"""Benchmark: one rules-engine tick of 500 alert rules over 1,000 series.

    python bench/rules.py [--json] [--ticks N] [--no-1s]

The store holds 10 metrics x 100 instances (1,000 series; half gauges, half
counters) with 15-second samples over the last 15 minutes. One group of 500
alert rules (instant comparisons, rate(), avg_over_time(), max_over_time() and
aggregations by job, spread over the 10 metrics) is evaluated as the agent
does: expressions evaluated, alert states stepped and persisted, ALERTS written.
It prints the median tick time with thresholds where about 2 % of rule/series
pairs fire (eval_ms) and in an alert storm where about a quarter do
(eval_ms_storm), and, as a baseline from the same run, the time of reading
every series' window straight from SQLite once (the least work any tick over
these series must do). Target (issue 3): eval_ms <= 50 on 2 cores.

The engine keeps the windows it has read (CachedStoreQuerier); ``*_uncached`` is the
same run with a StoreQuerier that re-reads every window each tick. ``eval_ms_1s`` and
``eval_ms_1s_uncached`` repeat the typical case at the demo's shape: 1-second samples,
evaluated every 5 s, where most of a window was already read at the previous tick.
``read_ms*`` is the part of a tick spent in the querier's selects (reading windows).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qbconsole.model import Sample  # noqa: E402
from qbconsole.rules.alerts import AlertRule  # noqa: E402
from qbconsole.rules.engine import RulesEngine  # noqa: E402
from qbconsole.rules.promql import StoreQuerier  # noqa: E402
from qbconsole.rules.promql.queriers import CachedStoreQuerier  # noqa: E402
from qbconsole.rules.ruleset import RuleGroup  # noqa: E402
from qbconsole.store import Store  # noqa: E402

METRICS, INSTANCES, STEP_MS, SPAN_MS = 10, 100, 15_000, 15 * 60_000


def seed(store: Store, now: int, ticks: int, step_ms: int = STEP_MS, span_ms: int = SPAN_MS,
         tick_ms: int = STEP_MS) -> None:
    """``span_ms`` of history, and samples for every tick to come (values move each tick)."""
    rng = random.Random(7)
    batch = []
    for m in range(METRICS):
        counter = m % 2 == 1
        name = f"bench_metric_{m}_total" if counter else f"bench_metric_{m}"
        for i in range(INSTANCES):
            labels = {"instance": f"host-{i:03d}", "job": f"job-{i % 5}"}
            # Gauges wander around their own level (a mean-reverting walk), as real
            # metrics do from one scrape to the next; counters grow by a per-series
            # rate with noise.
            level = rng.uniform(20, 85)
            value = 0.0 if counter else level
            speed = rng.uniform(0, 20)
            for ts in range(now - span_ms, now + (ticks + 1) * tick_ms, step_ms):
                if counter:
                    value += max(0.0, speed + rng.gauss(0, 3))
                else:
                    value = min(100.0, max(0.0, value + 0.1 * (level - value) + rng.gauss(0, 3)))
                batch.append(Sample(name, labels, ts, value))
            if len(batch) >= 100_000:
                store.write(batch)
                batch = []
    store.write(batch)


def rules(storm: bool = False) -> RuleGroup:
    """500 rules; thresholds make ~2 % of rule/series pairs fire, or ~25 % in a storm."""
    shapes = [
        "bench_metric_{g} > {t}",
        "rate(bench_metric_{c}_total[5m]) > {r}",
        "avg_over_time(bench_metric_{g}[5m]) > {t}",
        "max by (job) (bench_metric_{g}) > {t}",
        "sum by (job) (rate(bench_metric_{c}_total[1m])) > {r}",
    ]
    out = []
    for k in range(500):
        g, c = 2 * (k % 5), 2 * (k % 5) + 1
        if storm:
            t, r = 50 + k % 50, 0.5 + (k % 10) / 10
        else:
            t, r = 97 + k % 3, 1.25 + (k % 10) / 100
        expr = shapes[k % len(shapes)].format(g=g, c=c, t=t, r=r)
        out.append(AlertRule(f"Bench{k}", expr, for_ms=60_000, labels={"severity": "warning"},
                             annotations={"summary": "{{ $labels.instance }} at {{ $value }}"}))
    return RuleGroup("bench", 15_000, tuple(out))


class TimedQuerier:
    """Wraps a querier and adds up the time its selects take (``read_ms``)."""

    def __init__(self, querier) -> None:
        self.querier = querier
        self.read_ms = 0.0

    def select(self, *args):
        started = time.perf_counter()
        try:
            return self.querier.select(*args)
        finally:
            self.read_ms += (time.perf_counter() - started) * 1000

    def new_tick(self) -> None:
        getattr(self.querier, "new_tick", lambda: None)()


def run_ticks(store: Store, group: RuleGroup, now: int, ticks: int, *, tick_ms: int = STEP_MS,
              cached: bool = True) -> tuple[list[float], int, list[float]]:
    """Tick times (ms) of a fresh engine over ``ticks`` evaluations, ``tick_ms`` apart, new data
    each time, its active alerts, and the part of each tick spent in the querier's selects;
    ``cached=False`` evaluates through a StoreQuerier (every window re-read)."""
    querier = TimedQuerier(CachedStoreQuerier(store) if cached else StoreQuerier(store))
    engine = RulesEngine(store, [group], querier=querier)
    engine.evaluate_group(group, now)  # warm-up: parse caches, first alert rows, first windows
    times, reads = [], []
    for k in range(1, ticks + 1):
        querier.read_ms = 0.0
        started = time.perf_counter()
        result = engine.evaluate_group(group, now + k * tick_ms)
        times.append((time.perf_counter() - started) * 1000)
        reads.append(querier.read_ms)
        assert not result.errors, result.errors
    return times, len([a for a in engine.alerts() if a.is_active]), reads


def raw_read_ms(store: Store, now: int) -> float:
    """Baseline: read every series' last 5 minutes once, straight from SQLite."""
    conn = store.read()
    started = time.perf_counter()
    for (sid,) in conn.execute("SELECT id FROM series WHERE name LIKE 'bench_metric_%'").fetchall():
        conn.execute("SELECT ts, value FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ?",
                     (sid, now - 300_000, now)).fetchall()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--no-1s", action="store_true", help="skip the 1-second-samples figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        now = (int(time.time() * 1000) // STEP_MS) * STEP_MS
        seed(store, now, args.ticks)
        typical, typical_alerts, reads = run_ticks(store, rules(), now, args.ticks)
        uncached, uncached_alerts, reads_uncached = run_ticks(store, rules(), now, args.ticks, cached=False)
        assert uncached_alerts == typical_alerts
        storm, storm_alerts, _ = run_ticks(store, rules(storm=True), now, args.ticks)
        storm_uncached, _, _ = run_ticks(store, rules(storm=True), now, args.ticks, cached=False)
        baseline = statistics.median(raw_read_ms(store, now) for _ in range(5))
        store.close()
        if not args.no_1s:
            store = Store.open(Path(tmp) / "bench1s.db")
            seed(store, now, args.ticks, step_ms=1000, span_ms=6 * 60_000, tick_ms=5000)
            fast, _, fast_reads = run_ticks(store, rules(), now, args.ticks, tick_ms=5000)
            fast_uncached, _, fast_reads_uncached = run_ticks(store, rules(), now, args.ticks, tick_ms=5000,
                                                              cached=False)
            store.close()
    figures = {
        "eval_ms": round(statistics.median(typical), 2),
        "eval_ms_uncached": round(statistics.median(uncached), 2),
        "eval_ms_max": round(max(typical), 2),
        "read_ms": round(statistics.median(reads), 2),
        "read_ms_uncached": round(statistics.median(reads_uncached), 2),
        "active_alerts": typical_alerts,
        "eval_ms_storm": round(statistics.median(storm), 2),
        "eval_ms_storm_uncached": round(statistics.median(storm_uncached), 2),
        "active_alerts_storm": storm_alerts,
        "raw_read_all_series_ms": round(baseline, 2),
        "ratio_to_raw_read": round(statistics.median(typical) / baseline, 2),
        "rules": 500, "series": METRICS * INSTANCES,
    }
    if not args.no_1s:
        figures["eval_ms_1s"] = round(statistics.median(fast), 2)
        figures["eval_ms_1s_uncached"] = round(statistics.median(fast_uncached), 2)
        figures["read_ms_1s"] = round(statistics.median(fast_reads), 2)
        figures["read_ms_1s_uncached"] = round(statistics.median(fast_reads_uncached), 2)
    if args.json:
        print(json.dumps(figures))
    else:
        print("rules engine tick: 500 alert rules over 1,000 series (target eval_ms <= 50)")
        for key, value in figures.items():
            print(f"  {key:<24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
