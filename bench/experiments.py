"""Benchmark the analysis of one experiment with 1M events.

    python bench/experiments.py [--json] [--events N] [--users N] [--repeats N]

Builds a temporary store with one running two-variant experiment, ``--users``
exposed users (default 200k), ``--events`` experiment events (default 1M: 60 %
``purchase`` with a value, 40 % ``view``; some before their user's exposure, some
from users never exposed), then times:

(a) analyze_s: ``analyze()`` of the experiment (its metrics: conversion=purchase,
    revenue=purchase.value, views=view.count) plus its verdict; target <= 1 s;
(b) baseline_s: one ``SELECT count(*) FROM experiment_events``, the cost of merely
    touching every event once;
(c) ratio = a / b.
Each is the best of ``--repeats`` runs (least disturbed by a shared machine). The
temporary store is removed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qbconsole.experiments import lifecycle  # noqa: E402
from qbconsole.experiments.analyze import analyze  # noqa: E402
from qbconsole.experiments.assign import assign  # noqa: E402
from qbconsole.experiments.model import Spec, parse_metric_arg  # noqa: E402
from qbconsole.experiments.verdict import decide  # noqa: E402
from qbconsole.store import Store  # noqa: E402

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000


def build(store: Store, users: int, events: int, seed: int = 7) -> int:
    """Fill the store; return the experiment id."""
    rng = random.Random(seed)
    spec = Spec("bench", ("control", "treatment"), (50.0, 50.0),
                tuple(parse_metric_arg(m) for m in ("conversion=purchase", "revenue=purchase.value",
                                                    "views=view.count")),
                duration_s=14 * 86400, seed="bench-seed")
    exp = store.transaction(lambda c: lifecycle.create(c, spec, "bench", T0, start=True))
    exposures = []
    for i in range(users):
        uid = f"user-{i}"
        exposures.append((exp.id, uid, assign(exp, uid), T0 + rng.randrange(7 * DAY_MS)))
    store.transaction(lambda c: c.executemany(
        "INSERT INTO exposures(experiment_id, user_id, variant, ts) VALUES (?, ?, ?, ?)", exposures))
    rows = []
    for _ in range(events):
        i = rng.randrange(int(users * 1.05))  # ~5 % of the events are from users never exposed
        kind = "purchase" if rng.random() < 0.6 else "view"
        value = round(rng.uniform(1, 200), 2) if kind == "purchase" else None
        rows.append((exp.id, f"user-{i}", kind, value, T0 + rng.randrange(14 * DAY_MS)))
    for start in range(0, len(rows), 100_000):
        chunk = rows[start:start + 100_000]
        store.transaction(lambda c, ch=chunk: c.executemany(
            "INSERT INTO experiment_events(experiment_id, user_id, event, value, ts) VALUES (?, ?, ?, ?, ?)", ch))
    store.transaction(lambda c: c.execute("ANALYZE"))
    return exp.id


def best(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qbconsole-bench-") as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        try:
            t_build = time.perf_counter()
            build(store, args.users, args.events)
            build_s = time.perf_counter() - t_build
            conn = store.read()
            exp = lifecycle.get(conn, "bench")
            now = T0 + 15 * DAY_MS

            def run():
                analysis = analyze(conn, exp, now)
                return analysis, decide(analysis)

            analyze_s, (analysis, verdict) = best(run, args.repeats)
            baseline_s, count = best(lambda: conn.execute("SELECT count(*) FROM experiment_events").fetchone()[0],
                                     args.repeats)
        finally:
            store.close()
    result = {
        "events": count, "users": args.users, "analyze_s": round(analyze_s, 4),
        "baseline_s": round(baseline_s, 4), "ratio": round(analyze_s / baseline_s, 2) if baseline_s else None,
        "target_s": 1.0, "build_s": round(build_s, 1), "verdict": verdict.headline,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"analyze {result['events']:,} events, {args.users:,} exposed users: {analyze_s:.3f} s "
              f"(target <= 1 s)")
        print(f"baseline SELECT count(*) over the events: {baseline_s:.3f} s; ratio {result['ratio']}")
        print(f"verdict: {verdict.headline} ({verdict.reason}); store built in {build_s:.1f} s")
        for a in analysis.arms:
            print(f"  {a.variant:<10} users {a.users:>7}  conversion {a.value('conversion'):.4f}  "
                  f"revenue/user {a.value('revenue'):.2f}")
    return 0 if analyze_s <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
