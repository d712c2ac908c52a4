"""The poll's memo (tui/windowmemo.WindowMemo): ``read_windows`` with it gives exactly what it gives
without it, poll after poll, whatever happens to the series between polls; and in the steady state
it derives only the new points."""

from __future__ import annotations

import math
import operator
import random
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbconsole.model import STALE_NAN, Sample
from qbconsole.store import SeriesInfo
from qbconsole.tui.groups import BY_LABEL, BYTES_RATE, GROUPS, RATE, WORST, MetricSpec
from qbconsole.tui.metricdata import (
    MINUTE_MS, MetricWindow, counter_rates, finite, increases, per_minute, read_windows,
)
from qbconsole.tui.windowmemo import WindowMemo
from qbconsole.tui.recent import RecentSamples

S = 1000
WINDOW = 4 * MINUTE_MS
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

SPECS = (
    MetricSpec("g", "Gauge", "t_gauge", "count"),
    MetricSpec("w", "Worst", "t_worst", "percent", WORST, "mount"),
    MetricSpec("r", "Rate", "t_events_total", "per_min", RATE),
    MetricSpec("b", "By kind", "t_kinds_total", "per_min", BY_LABEL, "kind"),
    MetricSpec("n", "Network", "t_rx_bytes_total", "bytes/s", BYTES_RATE, pair="t_tx_bytes_total"),
)
COUNTERS = {"t_events_total", "t_kinds_total", "t_rx_bytes_total", "t_tx_bytes_total"}
STARTING = {
    "t_gauge": [{}],
    "t_worst": [{"mount": "/"}, {"mount": "/data"}],
    "t_events_total": [{"route": "/a"}, {"route": "/b"}],
    "t_kinds_total": [{"kind": "blocked_ip"}, {"kind": "bad_token", "route": "/a"},
                      {"kind": "bad_token", "route": "/b"}],
    "t_rx_bytes_total": [{"nic": "lo"}, {"nic": "eth0"}, {"nic": "eth1"}],
    "t_tx_bytes_total": [{"nic": "lo"}, {"nic": "eth0"}, {"nic": "eth1"}],
}
APPEARING = {
    "t_gauge": {"instance": "b"}, "t_worst": {"mount": "/boot"}, "t_events_total": {"route": "/new"},
    "t_kinds_total": {"kind": "csrf"}, "t_rx_bytes_total": {"nic": "veth1"}, "t_tx_bytes_total": {"nic": "lo0"},
}


def bits(windows: dict[str, MetricWindow]) -> dict:
    """The windows with every float as its exact bits (``==`` takes -0.0 for 0.0)."""
    return {k: (w.name, w.label, tuple((type(t), t, v.hex()) for t, v in w.points)) for k, w in windows.items()}


def fresh_nan(value: float) -> float:
    """The same NaN (same bits) as another object, as a re-read from the store would give."""
    return struct.unpack("<d", struct.pack("<d", value))[0]


class Series:
    """One series of the fake world: its points by time, and how it grows."""

    def __init__(self, info: SeriesInfo, rnd: random.Random, counter: bool, start: int) -> None:
        self.info, self.rnd, self.counter = info, rnd, counter
        self.step = rnd.choice((1 * S, 1 * S, 2 * S, 5 * S, 15 * S))
        self.points: dict[int, tuple[int, float]] = {}
        self.last = start - rnd.randrange(self.step)
        self.value = float(rnd.randrange(0, 10**6)) if counter else 0.0
        self.reset_next = False
        self.paused = False

    def next_value(self) -> float:
        rnd = self.rnd
        if not self.counter:
            return rnd.choice((0.0, 1.5, 99.9, 1e-300, 1e300, -3.25, rnd.uniform(-1e6, 1e6), rnd.random()))
        if self.reset_next:
            self.reset_next = False
            self.value = float(rnd.randrange(0, 3))
        else:
            self.value += rnd.choice((0.0, 1.0, rnd.uniform(0, 1e4), rnd.expovariate(1e-3)))
        return self.value

    def grow(self, now: int) -> None:
        """Samples up to ``now``, at the series' step give or take a little."""
        while not self.paused and self.last + self.step <= now:
            self.last += self.step + self.rnd.choice((0, 0, 0, 1, -1, 7))
            if self.last <= now:
                self.points[self.last] = (self.last, self.next_value())
            else:
                self.last = now

    def inside(self, lo: int, hi: int) -> list[int]:
        return sorted(t for t in self.points if lo <= t <= hi)


class World:
    """Series that grow between polls, with what can happen to them; a SeriesSource over them."""

    def __init__(self, rnd: random.Random, now: int) -> None:
        self.rnd = rnd
        self.ids = 0
        self.series: dict[str, list[Series]] = {}
        for name, label_sets in STARTING.items():
            for labels in label_sets:
                self.add(name, labels, now - 12 * MINUTE_MS)
        self.grow(now)
        self.fresh_tuples = False
        self.as_tuples = False

    def add(self, name: str, labels: dict[str, str], start: int) -> None:
        self.ids += 1
        self.series.setdefault(name, []).append(Series(SeriesInfo(self.ids, name, labels), self.rnd,
                                                       name in COUNTERS, start))

    def grow(self, now: int) -> None:
        for series in self.all():
            series.grow(now)

    def all(self) -> list[Series]:
        return [s for group in self.series.values() for s in group]

    def disturb(self, what: str, now: int) -> None:
        """One thing that a real store or source may do between two polls."""
        rnd = self.rnd
        everyone = self.all()
        if not everyone:
            return
        series = rnd.choice(everyone)
        recent = series.inside(now - WINDOW - 6 * MINUTE_MS, now)
        if what == "late" and len(recent) >= 2:  # a sample written late, between two others
            i = rnd.randrange(len(recent) - 1)
            lo, hi = recent[i], recent[i + 1]
            if hi - lo > 1:
                t = rnd.randrange(lo + 1, hi)
                value = (series.points[lo][1] if series.counter else rnd.uniform(0, 100))
                series.points[t] = (t, value if value == value else 1.0)
        elif what == "replace" and recent:
            t = rnd.choice(recent[-40:] if rnd.random() < 0.7 else recent)
            series.points[t] = (t, series.points[t][1] + rnd.choice((1.0, -2.5, 1e6)))
        elif what == "delete" and recent:
            del series.points[rnd.choice(recent)]
        elif what in ("nan", "stale") and recent:
            t = rnd.choice(recent[-5:]) if rnd.random() < 0.7 else rnd.choice(recent)
            series.points[t] = (t, math.nan if what == "nan" else STALE_NAN)
        elif what == "stale_end":  # the series goes stale: a marker after its last sample, then nothing
            t = series.last + 1
            series.points[t] = (t, STALE_NAN)
            series.last, series.paused = t, True
        elif what == "resume":
            for s in everyone:
                s.paused = False
        elif what == "reset" and series.counter:  # the next sample (the first after this poll) resets
            series.reset_next = True
        elif what == "appear":
            name = rnd.choice(sorted(APPEARING))
            self.add(name, dict(APPEARING[name], n=str(self.ids)), now - rnd.randrange(0, 8 * MINUTE_MS))
            self.series[name][-1].grow(now)
        elif what == "vanish":
            self.series[series.info.name].remove(series)
        elif what == "purge":  # retention deletes old samples
            for t in series.inside(0, now - WINDOW - rnd.randrange(0, 6 * MINUTE_MS)):
                del series.points[t]
        elif what == "fresh_tuples":  # reads give new tuples (and new NaN objects), not the kept ones
            self.fresh_tuples = not self.fresh_tuples
        elif what == "tuples":  # a source that answers with tuples instead of lists
            self.as_tuples = not self.as_tuples

    # ---- SeriesSource
    def select(self, name: str, start: int, end: int, labels=None):
        out = []
        for series in self.series.get(name, []):
            points = [series.points[t] for t in series.inside(start, end)]
            if self.fresh_tuples:
                points = [(t, fresh_nan(v) if v != v else v) for t, v in points]
            out.append((series.info, tuple(points) if self.as_tuples else points))
        return out


DISTURBANCES = ("late", "replace", "delete", "nan", "stale", "stale_end", "resume", "reset", "appear", "vanish",
                "purge", "fresh_tuples", "tuples")


@settings(max_examples=70, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_polls_with_the_memo_give_exactly_what_polls_without_it_give(data):
    rnd = random.Random(data.draw(st.integers(0, 2**32)))  # the samples; what happens to them is drawn
    now = T0 + data.draw(st.integers(0, MINUTE_MS))
    world = World(rnd, now)
    memo = WindowMemo()
    for _ in range(data.draw(st.integers(3, 30))):
        now += data.draw(st.sampled_from((0, 1 * S, 1 * S, 1 * S, 1 * S, 3 * S, 10 * S, 59 * S, 6 * MINUTE_MS)))
        world.grow(now - data.draw(st.sampled_from((0, 0, 0, 300, 2 * S))))  # samples committed after the poll
        for what in data.draw(st.lists(st.sampled_from(DISTURBANCES), max_size=3)):
            world.disturb(what, now)
        got = read_windows(world, now, WINDOW, SPECS, memo)
        want = read_windows(world, now, WINDOW, SPECS)
        assert got == want
        assert bits(got) == bits(want)


def test_steady_polls_extend_every_series_and_derive_only_the_new_points(monkeypatch):
    import qbconsole.tui.metricdata as md

    world = World(random.Random(7), T0)
    for name in world.series:  # every series at 1 s, so each poll adds about one point per series
        for series in world.series[name]:
            series.step = 1 * S
    world.grow(T0)
    world.fresh_tuples = True  # every read gives new tuples, as the store's do
    memo = WindowMemo()
    read_windows(world, T0, WINDOW, SPECS, memo)
    first = memo.fresh
    assert first == sum(len(g) for g in world.series.values()) - 2  # each once, in full (loopbacks are not read)
    sizes: list[int] = []
    answers: dict[str, list] = {}

    class Seen:
        def select(self, name: str, start: int, end: int, labels=None):
            answers[name] = world.select(name, start, end)
            return answers[name]

    def counting(points):
        sizes.append(len(points))
        return finite(points)

    for now in range(T0 + S, T0 + 120 * S, S):
        world.grow(now)
        sizes.clear()
        with monkeypatch.context() as patch:
            patch.setattr(md, "finite", counting)
            got = read_windows(Seen(), now, WINDOW, SPECS, memo)
        assert max(sizes, default=0) <= 3, sizes  # only new points (at 1 s: one, or two with jitter)
        assert got == read_windows(world, now, WINDOW, SPECS)
        info, points = answers["t_gauge"][0]  # the memo keeps the source's objects: they match at once next time
        kept = memo._series[("gauge", "g", info.id)].points
        assert len(kept) == len(points) and all(map(operator.is_, kept, points))
    assert memo.fresh == first  # nothing derived afresh in two minutes of polls


def test_a_change_inside_the_window_is_derived_afresh_never_kept():
    world = World(random.Random(3), T0)
    memo = WindowMemo()
    read_windows(world, T0, WINDOW, SPECS, memo)
    gauge = world.series["t_gauge"][0]
    t = gauge.inside(T0 - WINDOW, T0)[len(gauge.inside(T0 - WINDOW, T0)) // 2]
    gauge.points[t] = (t, 12345.0)
    before = memo.fresh
    got = read_windows(world, T0 + S, WINDOW, SPECS, memo)
    assert (t, 12345.0) in got["g"].points and memo.fresh == before + 1
    assert got == read_windows(world, T0 + S, WINDOW, SPECS)


def test_the_memo_forgets_series_and_figures_no_longer_read():
    world = World(random.Random(5), T0)
    memo = WindowMemo()
    read_windows(world, T0, WINDOW, SPECS, memo)
    world.series["t_worst"].pop()
    read_windows(world, T0 + S, WINDOW, SPECS, memo)
    assert len(memo._series) == sum(len(g) for g in world.series.values()) - 2  # loopback NICs are not kept
    read_windows(world, T0 + 2 * S, WINDOW, SPECS[:1], memo)
    assert len(memo._series) == 1 and not memo._minutes


ODD_POLLS = (
    (  # out of order, a repeated time, a float time, int values; new points out of order or not after the last
        [(1_000, 1.0), (3_000, 4.0), (2_000, 2.0), (4_000, 8.0)],
        [(1_000, 1.0), (3_000, 4.0), (2_000, 2.0), (4_000, 8.0), (5_000, 9.0)],
        [(1_000, 1.0), (2_000, 2.0), (2_000, 3.0), (4_000.5, 8.0)],
        [(1_000, 1.0), (2_000, 2.0), (3_000, 3.0)],
        [(1_000, 1.0), (2_000, 2.0), (3_000, 3.0), (4_000.0, 5.0)],
        [(1_000, 1), (2_000, 2.0), (3_000, 3.0), (4_000, 5)],
        [(1_000, 1.0), (2_000, 2.0), (3_000, 3.0), (4_000, 5.0)],
        [(1_000, 1.0), (2_000, 2.0), (3_000, 3.0), (4_000, 5.0), (4_000, 6.0)],
        [(1_000, 1.0), (2_000, 2.0), (3_000, 3.0), (4_000, 5.0)],
        [(2_000, 2.0), (3_000, 3.0), (4_000, 5.0), (3_500, 4.0)],
    ),
    (  # new points out of order across minutes and rate buckets, then one more after them
        [(50_000, 0.0)],
        [(50_000, 0.0), (130_000, 5.0), (70_000, 6.0), (80_000, 8.0)],
        [(50_000, 0.0), (130_000, 5.0), (70_000, 6.0), (80_000, 8.0), (140_000, 9.0)],
    ),
    (  # a new point before the last one, then more after it
        [(50_000, 0.0)],
        [(50_000, 0.0), (130_000, 5.0)],
        [(50_000, 0.0), (130_000, 5.0), (70_000, 6.0), (80_000, 8.0)],
        [(50_000, 0.0), (130_000, 5.0), (70_000, 6.0), (80_000, 8.0), (140_000, 9.0)],
    ),
    (  # a repeated time before where the next window starts
        [(1_000, 1.0), (1_000, 2.0), (20_000, 3.0), (30_000, 4.0)],
        [(20_000, 3.0), (30_000, 4.0)],
        [(20_000, 3.0), (30_000, 4.0), (45_000, 6.0)],
    ),
)


def test_points_out_of_order_or_with_odd_times_are_derived_as_without_the_memo():
    from qbconsole.tui.metricdata import summed_rates

    info = SeriesInfo(1, "c", {})
    for polls in ODD_POLLS:
        memo = WindowMemo()
        for points in polls:
            memo.begin()
            assert memo.finite(("g", 1), points) == finite(points)
            assert tuple(memo.series(("c", 1), points, increases).derived) == increases(finite(points))
            assert tuple(memo.series(("r", 1), points, counter_rates).derived) == counter_rates(finite(points))
            entries = [memo.series(("c", 1), points, increases)]
            assert memo.per_minute("c", entries, 0, 10 * MINUTE_MS) == per_minute([points], 0, 10 * MINUTE_MS)
            assert memo.summed_rate(("b",), [(info, points)]) == summed_rates([(info, points)])
            memo.end()


def test_a_figure_over_other_series_or_after_two_changes_is_summed_afresh():
    counts = [(t, float(t // 3_000)) for t in range(1_000, 240_001, 1_000)]
    other = [(t, float(t // 2_000)) for t in range(1_000, 240_001, 1_000)]
    now = 10 * MINUTE_MS
    memo = WindowMemo()
    memo.begin()
    memo.per_minute("m", [memo.series(("c", 1), counts, increases)], 0, now)
    memo.end()
    memo.begin()  # another series in the figure's place, at the same version
    got = memo.per_minute("m", [memo.series(("c", 2), other, increases)], 0, now)
    assert got == per_minute([other], 0, now) != per_minute([counts], 0, now)
    memo.end()

    memo = WindowMemo()
    memo.begin()
    entry = memo.series(("c", 1), counts[:100], increases)
    memo.per_minute("m", [entry], 0, now)
    memo.end()
    memo.begin()  # the series changed twice since the figure was summed
    memo.series(("c", 1), counts[:160], increases)
    memo.series(("c", 1), counts, increases)
    assert memo.per_minute("m", [entry], 0, now) == per_minute([counts], 0, now)
    memo.end()


class Fixed:
    """A source over fixed points per series (each select filters them by time)."""

    def __init__(self, series: dict[str, list[tuple[SeriesInfo, list[tuple[int, float]]]]]) -> None:
        self.series = series

    def select(self, name: str, start: int, end: int, labels=None):
        return [(info, [p for p in points if start <= p[0] <= end]) for info, points in self.series.get(name, [])]


def test_edges_minute_marks_late_starts_and_series_ageing_out_one_point_at_a_time():
    base = T0 - T0 % MINUTE_MS
    marks = [(base + k * MINUTE_MS + d, float(3 * k + (d > 0))) for k in range(8) for d in (-1, 0, 1)]
    late = [(base + 7 * MINUTE_MS - 1_000, 5.0), (base + 7 * MINUTE_MS + 1_000, 9.0), (base + 8 * MINUTE_MS, 10.0)]
    short = [(base + 3 * MINUTE_MS + t * S, float(t * t)) for t in range(4)]  # stops: ages out point by point
    source = Fixed({
        "t_events_total": [(SeriesInfo(1, "t_events_total", {}), marks)],
        "t_kinds_total": [(SeriesInfo(2, "t_kinds_total", {"kind": "a"}), marks),
                          (SeriesInfo(3, "t_kinds_total", {"kind": "late"}), late)],
        "t_rx_bytes_total": [(SeriesInfo(4, "t_rx_bytes_total", {"nic": "eth0"}), short),
                             (SeriesInfo(5, "t_rx_bytes_total", {"nic": "eth1"}), marks)],
        "t_gauge": [(SeriesInfo(6, "t_gauge", {}), short)],
        "t_worst": [(SeriesInfo(7, "t_worst", {"mount": "/"}), short),
                    (SeriesInfo(8, "t_worst", {"mount": "/x"}), late)],
    })
    memo = WindowMemo()
    window = 20 * S
    for now in range(base + 2 * MINUTE_MS, base + 10 * MINUTE_MS, S):
        got = read_windows(source, now, window, SPECS, memo)
        want = read_windows(source, now, window, SPECS)
        assert got == want and bits(got) == bits(want), now
        assert read_windows(source, now, window, SPECS, WindowMemo()) == want, now  # a first poll too
    assert memo.advanced > 10 * memo.fresh


def write_second(store, t: int, counters: dict[tuple, float], rnd: random.Random) -> None:
    """One collection round of every Overview metric at ``t`` (NICs with loopback, pages, kinds)."""
    samples = []
    for spec in (m for g in GROUPS for m in g.metrics):
        if spec.how == BYTES_RATE:
            for name in (spec.name, spec.pair):
                for nic in ("lo", "eth0", "eth1", "docker0"):
                    key = (name, nic)
                    counters[key] = counters.get(key, 0.0) + rnd.randrange(0, 10**6)
                    samples.append(Sample(name, {"nic": nic}, t + rnd.randrange(0, 40), counters[key]))
        elif spec.how in (RATE, BY_LABEL):
            for kind in ("a", "b", "c"):
                key = (spec.name, kind)
                counters[key] = counters.get(key, 0.0) + rnd.choice((0, 0, 1, 3))
                samples.append(Sample(spec.name, {spec.label or "route": kind}, t, counters[key]))
        elif spec.how == WORST:
            for value in ("/", "/data"):
                samples.append(Sample(spec.name, {spec.label: value}, t, rnd.uniform(0, 100)))
        else:
            samples.append(Sample(spec.name, {}, t, rnd.uniform(0, 100)))
    store.write(samples)


class Replay:
    """A source that answers each select as its source did the first time (so that the reads with and
    without the memo see the same points, though RecentSamples moves on at every read)."""

    def __init__(self, source) -> None:
        self.source = source
        self.answers: dict[tuple, list] = {}

    def select(self, name: str, start: int, end: int, labels=None):
        key = (name, start, end)
        if key not in self.answers:
            self.answers[key] = self.source.select(name, start, end)
        return [(info, list(points)) for info, points in self.answers[key]]


def test_the_overview_from_a_store_through_recent_samples_with_the_memo_is_the_same(store):
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    rnd, counters, clock = random.Random(11), {}, Clock()
    for t in range(T0 - 8 * MINUTE_MS, T0, S):
        write_second(store, t, counters, rnd)
    recent, memo = RecentSamples(store, clock=clock), WindowMemo()
    window = 3 * MINUTE_MS
    for i, now in enumerate(range(T0, T0 + 150 * S, S)):
        write_second(store, now, counters, rnd)
        if i == 30:  # a late sample within the settle window, a staleness marker, a counter reset
            store.write([Sample("system_cpu_percent", {}, now - 10 * S + 500, 42.0),
                         Sample("quickbid_active_users", {}, now + 1, STALE_NAN)])
            counters[("quickbid_login_failures_total", "a")] = 0.0
        if i == 80:  # a late sample older than the settle window: shows at the next full read (i == 120)
            store.write([Sample("http_connections", {}, now - 100 * S + 300, 7.0)])
        clock.now = float(i)
        replay = Replay(recent)
        got = read_windows(replay, now, window, memo=memo)
        want = read_windows(replay, now, window)
        assert got == want and bits(got) == bits(want), i
        if not 80 <= i < 120:
            assert got == read_windows(store, now, window), i
    assert memo.advanced > 20 * memo.fresh
