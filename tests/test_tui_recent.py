"""The poll's incremental reads (tui/recent.py): the same answers as the store, from a tail read."""

from __future__ import annotations

from qbconsole.model import STALE_NAN, Sample
from qbconsole.tui.metricdata import read_windows
from qbconsole.tui.recent import RecentSamples

S = 1000
WINDOW = 15 * 60 * S


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_second(store, t: int) -> None:
    """One collection round at ``t``: a gauge, a counter per route, and a series that starts late."""
    samples = [Sample("g", {}, t, (t // S) % 7 * 1.5), Sample("c_total", {"route": "/a"}, t, t / S * 2)]
    samples.append(Sample("c_total", {"route": "/b"}, t, t / S))
    if t >= 200 * S:
        samples.append(Sample("c_total", {"route": "/new"}, t, (t - 200 * S) / S))
    if t == 300 * S:
        samples.append(Sample("g", {}, t + 1, STALE_NAN))
    store.write(samples)


def test_polls_answer_as_the_store_does_while_reading_only_the_tail(store):
    clock = Clock()
    recent = RecentSamples(store, clock=clock)
    for t in range(0, 400 * S, S):
        write_second(store, t)
    direct = 0
    for now in range(400 * S, 460 * S, S):  # a minute of polls, one a second (no full re-read due)
        write_second(store, now)
        clock.now = (now - 400 * S) / S
        for name, start in (("g", now - WINDOW), ("c_total", now - WINDOW - 300 * S)):
            want = store.select(name, start, now)
            direct += sum(len(p) for _, p in want)
            assert recent.select(name, start, now) == want, (name, now)
    first = 401 + 3 * 401  # the first poll reads everything (g, /a, /b; /new has 201 samples)
    assert first < recent.rows_read < first + 201 + 59 * 4 * 31  # then ~31 s of each of 4 series a poll
    assert recent.rows_read < direct / 10


def test_overview_windows_are_the_stores(store):
    clock = Clock()
    recent = RecentSamples(store, clock=clock)
    for t in range(0, 1_300 * S, S):
        write_second(store, t)
        if t % (37 * S) == 0:
            clock.now = t / S
            assert read_windows(recent, t) == read_windows(store, t)


def test_a_late_sample_shows_at_once_when_recent_and_after_the_next_full_read_when_older(store):
    clock = Clock()
    recent = RecentSamples(store, settle_ms=30 * S, full_every_s=60, clock=clock)
    for t in range(0, 100 * S, S):
        write_second(store, t)
    recent.select("g", 0, 100 * S)
    store.write([Sample("g", {}, 95 * S, 99.0)])  # within the settle window: read again every poll
    assert dict(recent.select("g", 0, 100 * S)[0][1])[95 * S] == 99.0
    store.write([Sample("g", {}, 10 * S, 42.0)])  # long settled: waits for the full read
    clock.now = 30
    assert dict(recent.select("g", 0, 100 * S)[0][1])[10 * S] != 42.0
    clock.now = 60
    assert dict(recent.select("g", 0, 100 * S)[0][1])[10 * S] == 42.0


def test_wider_windows_labels_and_other_reads_go_to_the_store(store):
    recent = RecentSamples(store, clock=Clock())
    for t in range(0, 100 * S, S):
        write_second(store, t)
    recent.select("c_total", 50 * S, 100 * S)
    before = recent.rows_read
    assert recent.select("c_total", 0, 100 * S) == store.select("c_total", 0, 100 * S)  # earlier start
    assert recent.rows_read - before == 2 * 100  # /a and /b, read in full again
    assert recent.select("c_total", 0, 100 * S, {"route": "/a"}) == store.select("c_total", 0, 100 * S, {"route": "/a"})
    assert recent.series("c_total") == store.series("c_total") and recent.names() == store.names()
