"""Benchmark: the Overview poll's ``read_windows`` with and without the poll's WindowMemo.

    python bench/poll.py [--json] [--polls N] [--fills 1,10,20]

A store (temp file) gets 1-second samples of every Overview metric (tui/groups.py): one
series per gauge, three per worst-of figure, two per counter, four kinds of security events,
and five NICs (one loopback) for each network byte counter, NICs sampled a few ms apart. For
each fill (minutes of history already in the store when the console polls; 20 covers the
counters' whole 15 + 5 minute read) the console's poll is replayed: every poll writes one
more second, then reads the figures, the window sliding by 1 s, as ``QBConsoleApp._poll``
does: through ``RecentSamples`` (whose full re-read comes once a minute, so polls > 60 see it).

Per fill it prints the median time of a ``read_windows`` call (ms) without the memo
(``plain``) and with it (``memo``), measured in the same run on alternate calls over the
same store, their ratio (memo / plain), and the same two figures for the reduction alone
(``*_reduce``: the selects answered from what the first read of that poll got, so the store
reads are left out), then the 95th percentiles of the calls (the polls with RecentSamples'
full re-read, and garbage collections, land there). The results with and without the memo
are checked equal at every poll. At one poll a second, a call's ms / 10 is the share of a
core in %.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qbconsole.model import Sample  # noqa: E402
from qbconsole.store import Store  # noqa: E402
from qbconsole.tui.groups import BY_LABEL, BYTES_RATE, GROUPS, RATE, WORST  # noqa: E402
from qbconsole.tui.metricdata import read_windows  # noqa: E402
from qbconsole.tui.windowmemo import WindowMemo  # noqa: E402
from qbconsole.tui.recent import RecentSamples  # noqa: E402

S = 1000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NICS = ("lo", "eth0", "eth1", "docker0", "wlan0")
KINDS = ("blocked_ip", "bad_token", "csrf", "brute_force")
WORST_VALUES = ("a", "b", "c")


class Writer:
    """One collection round a second of every Overview metric, as the demo's collectors give them."""

    def __init__(self, seed: int = 1) -> None:
        self.rnd = random.Random(seed)
        self.counters: dict[tuple[str, str], float] = {}

    def count(self, name: str, label: str, step: float) -> float:
        key = (name, label)
        self.counters[key] = self.counters.get(key, 0.0) + step
        return self.counters[key]

    def round(self, t: int) -> list[Sample]:
        rnd, out = self.rnd, []
        for spec in (m for g in GROUPS for m in g.metrics):
            if spec.how == BYTES_RATE:
                for name in (spec.name, spec.pair):
                    for i, nic in enumerate(NICS):
                        value = self.count(name, nic, float(rnd.randrange(0, 5_000_000)))
                        out.append(Sample(name, {"nic": nic}, t + 3 * i, value))
            elif spec.how == BY_LABEL:
                for kind in KINDS:
                    value = self.count(spec.name, kind, rnd.choice((0, 0, 1)))
                    out.append(Sample(spec.name, {spec.label: kind}, t, value))
            elif spec.how == RATE:
                for route in ("/a", "/b"):
                    value = self.count(spec.name, route, rnd.choice((0, 1, 2)))
                    out.append(Sample(spec.name, {"route": route}, t, value))
            elif spec.how == WORST:
                for value in WORST_VALUES:
                    out.append(Sample(spec.name, {spec.label: f"/{value}"}, t, rnd.uniform(0, 10)))
            else:
                out.append(Sample(spec.name, {}, t, rnd.uniform(0, 100)))
        return out


class Clock:
    """RecentSamples' clock: the poll's second (its full re-read then comes once a minute, as live)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Replay:
    """Each select answered as its source answered it the first time (the store reads left out;
    ``read_windows`` does not change the lists it is given, so they are handed out as they are)."""

    def __init__(self, source) -> None:
        self.source = source
        self.answers: dict[tuple, list] = {}

    def select(self, name: str, start: int, end: int, labels=None):
        key = (name, start, end)
        if key not in self.answers:
            self.answers[key] = self.source.select(name, start, end)
        return self.answers[key]


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def run_fill(store: Store, writer: Writer, now: int, polls: int, warmup: int = 3) -> tuple[dict, int]:
    """Replay ``warmup + polls`` one-second polls from ``now``; the figures of the timed ones."""
    clocks = [Clock() for _ in range(3)]
    plain_src, memo_src, reduce_src = (RecentSamples(store, clock=c) for c in clocks)
    memo, memo_reduce = WindowMemo(), WindowMemo()
    times: dict[str, list[float]] = {"plain": [], "memo": [], "plain_reduce": [], "memo_reduce": []}
    for i in range(warmup + polls):
        now += S
        store.write(writer.round(now))
        for clock in clocks:
            clock.now = float(i)
        calls = [("plain", lambda: read_windows(plain_src, now)),
                 ("memo", lambda: read_windows(memo_src, now, memo=memo))]
        for name, fn in calls if i % 2 else calls[::-1]:  # alternate which goes first
            ms, result = timed(fn)
            if i >= warmup:
                times[name].append(ms)
            if name == "plain":
                plain = result
            else:
                with_memo = result
        assert with_memo == plain, f"the memo changed the figures at poll {i}"
        replay = Replay(reduce_src)
        read_windows(replay, now)  # reads this poll's points (not timed)
        calls = [("plain_reduce", lambda: read_windows(replay, now)),
                 ("memo_reduce", lambda: read_windows(replay, now, memo=memo_reduce))]
        for name, fn in calls if i % 2 else calls[::-1]:
            ms, result = timed(fn)
            if i >= warmup:
                times[name].append(ms)
        points = sum(len(w.points) for w in plain.values())
    figures = {f"{k}_ms": round(statistics.median(v), 3) for k, v in times.items()}
    figures["ratio"] = round(figures["memo_ms"] / figures["plain_ms"], 3)
    figures["ratio_reduce"] = round(figures["memo_reduce_ms"] / figures["plain_reduce_ms"], 3)
    figures["memo_ms_p95"] = round(p95(times["memo"]), 3)
    figures["plain_ms_p95"] = round(p95(times["plain"]), 3)
    figures["figure_points"] = points
    figures["series_derived_afresh"] = memo.fresh
    figures["series_extended"] = memo.advanced
    return figures, now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--polls", type=int, default=120, help="timed polls per fill (default 120)")
    parser.add_argument("--fills", default="1,10,20", help="minutes of history before the polls (default 1,10,20)")
    args = parser.parse_args()
    fills = sorted(int(f) for f in args.fills.split(","))
    writer = Writer()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "poll.db")
        try:
            now = T0
            series = len(writer.round(T0))
            written = 0
            for fill in fills:
                while written < fill * 60:  # history up to ``fill`` minutes (not timed)
                    now += S
                    store.write(writer.round(now))
                    written += 1
                results[f"fill_{fill}m"], now = run_fill(store, writer, now, args.polls)
                written += 3 + args.polls
        finally:
            store.close()
    figures = {"polls": args.polls, "series": series, "fills": results}
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"Overview poll: read_windows per call, median of {args.polls} polls (1 s samples, {series} series)")
    print(f"  {'fill':>5} {'plain ms':>9} {'memo ms':>8} {'ratio':>6}   {'reduce: plain':>13} {'memo':>6} "
          f"{'ratio':>6}   {'p95 plain':>9} {'p95 memo':>8}  afresh/extended")
    for fill, f in results.items():
        print(f"  {fill[5:]:>5} {f['plain_ms']:>9.2f} {f['memo_ms']:>8.2f} {f['ratio']:>6.2f}   "
              f"{f['plain_reduce_ms']:>13.2f} {f['memo_reduce_ms']:>6.2f} {f['ratio_reduce']:>6.2f}   "
              f"{f['plain_ms_p95']:>9.2f} {f['memo_ms_p95']:>8.2f}  "
              f"{f['series_derived_afresh']}/{f['series_extended']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
