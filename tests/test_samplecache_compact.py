"""The sample cache's compact storage (parallel int64/float64 arrays per series): the
edges the arrays add (empty slices, removing the last sample, the many-changes merge
path, prepending), with NaN and staleness markers kept bit for bit, and its size."""

from __future__ import annotations

import struct
import sys
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qbconsole.model import STALE_NAN, Sample, is_stale
from qbconsole.rules.promql.samplecache import REBUILD_OVER, TAIL_MS, _Series
from qbconsole.store.records import SeriesInfo

S, M = 1000, 60_000


def bits(data):
    """A select result with every value as its bit pattern (NaN and the stale marker compare)."""
    return [(labels, [(t, struct.pack("<d", v)) for t, v in points]) for labels, points in data]


def same(cached, plain, name, start, end):
    got = cached.select(name, [], start, end)
    assert bits(got) == bits(plain.select(name, [], start, end))
    return got


def delete(store, start, end):
    store.transaction(lambda conn: conn.execute("DELETE FROM samples WHERE ts BETWEEN ? AND ?", (start, end)))


def held(cached, name):
    """series id -> the (ts, value) pairs the cache holds for it now."""
    span = cached.cache._spans[name]
    return {sid: list(zip(s.times, s.values)) for sid, s in span.series.items()}


def test_series_window_edges():
    s = _Series(SeriesInfo(1, "g", {"i": "0", "empty": ""}))
    assert s.window(0, 10) == [] and s.labels == {"i": "0", "__name__": "g"}
    s.extend([(10, 1.0), (20, STALE_NAN), (30, float("nan"))])
    s.prepend([(5, -0.0)])
    assert s.window(10, 19) == [] and s.window(30, 100) == [] and s.window(0, 4) == []
    assert s.window(4, 5) == [(5, -0.0)] and struct.pack("<d", s.window(4, 5)[0][1]) == struct.pack("<d", -0.0)
    (ts, v), = s.window(19, 20)
    assert ts == 20 and is_stale(v) and type(ts) is int and type(v) is float
    s.put(30, None)  # the newest sample
    s.put(25, 2.5)
    s.put(10, STALE_NAN)
    assert list(s.times) == [5, 10, 20, 25] and is_stale(s.values[1]) and is_stale(s.values[2])
    assert [(t, is_stale(v)) for t, v in s.window(0, 30)] == [(5, False), (10, True), (20, True), (25, False)]
    s.drop_upto(24)
    assert s.window(0, 100) == [(25, 2.5)]
    s.put(25, None)  # the last one left
    assert not s.times and not s.values and s.window(0, 100) == []
    s.put(7, None)  # removing what is not there changes nothing
    assert not s.times


def test_answers_are_fresh_lists(store, pair):
    cached, plain = pair
    store.write([Sample("g", {}, ts, 1.0) for ts in range(S, 61 * S, S)])
    got = same(cached, plain, "g", 0, M)
    got[0][1].clear()
    cached.new_tick()
    assert len(same(cached, plain, "g", 0, M)[0][1]) == 60


def test_a_series_with_no_sample_in_the_window_is_left_out(store, pair):
    cached, plain = pair
    store.write([Sample("g", {"i": "0"}, ts, 1.0) for ts in range(0, 10 * M, 10 * S)]
                + [Sample("g", {"i": "1"}, ts, 2.0) for ts in (M, 9 * M)])  # a gap in 2m..8m
    same(cached, plain, "g", 0, 10 * M)
    got = same(cached, plain, "g", 3 * M, 7 * M)  # inside the span, empty slice for i=1
    assert [labels["i"] for labels, _ in got] == ["0"]
    assert len(cached.cache._spans["g"].series) == 2  # still held: it has samples in the span


def test_removing_the_last_sample_drops_the_series(store, pair):
    cached, plain = pair
    store.write([Sample("g", {"i": "0"}, ts, 1.0) for ts in range(0, 10 * M, 10 * S)]
                + [Sample("g", {"i": "1"}, 5 * M, STALE_NAN)])  # only one sample, a stale marker
    same(cached, plain, "g", 0, 9 * M)
    one = store.series("g", {"i": "1"})[0].id
    assert is_stale(held(cached, "g")[one][0][1])
    delete(store, 5 * M, 5 * M)  # i=1's only sample, and one of i=0's
    delete(store, 9 * M - 10 * S, 9 * M - 10 * S)  # i=0's newest sample in the span (up to 9m - 1 ms)
    cached.new_tick()
    got = same(cached, plain, "g", 0, 9 * M)
    assert [labels["i"] for labels, _ in got] == ["0"]
    assert one not in cached.cache._spans["g"].series
    (zero,) = held(cached, "g").values()
    assert zero[-1][0] == 9 * M - 20 * S and 5 * M not in dict(zero)


def test_the_merge_path_keeps_nan_and_staleness_markers_exactly(store, pair):
    cached, plain = pair
    store.write([Sample("rum", {}, ts, ts / 1e3) for ts in range(0, 10 * M, 10 * S)])
    same(cached, plain, "rum", 0, 10 * M)
    late = [Sample("rum", {}, ts + 3, STALE_NAN if k % 2 else float("nan"))
            for k, ts in enumerate(range(M, 9 * M, 7 * S))]
    assert len(late) > REBUILD_OVER
    store.write(late + [Sample("rum", {}, ts, STALE_NAN) for ts in range(2 * M, 3 * M, 10 * S)])  # replaced
    delete(store, 5 * M, 6 * M)
    cached.new_tick()
    got = same(cached, plain, "rum", 0, 10 * M)
    assert cached.cache.stats["patched"] > REBUILD_OVER and cached.cache.stats["resets"] == 0
    values = dict(got[0][1])
    assert is_stale(values[2 * M]) and is_stale(values[M + 7 * S + 3])
    assert values[M + 3] != values[M + 3] and not is_stale(values[M + 3])
    assert not any(5 * M <= ts <= 6 * M for ts in values)
    (series,) = held(cached, "rum").values()
    assert [t for t, _ in series] == sorted(values) and bits([({}, series)]) == bits([({}, sorted(values.items()))])


def test_the_merge_path_can_empty_a_series(store, pair):
    cached, plain = pair
    store.write([Sample("g", {"i": "0"}, ts, STALE_NAN) for ts in range(S, 41 * S, S)]
                + [Sample("g", {"i": "1"}, ts, 1.0) for ts in range(S, 41 * S, S)])
    same(cached, plain, "g", 0, M)
    store.transaction(lambda conn: conn.execute(
        "DELETE FROM samples WHERE series_id = ?", (store.series("g", {"i": "0"})[0].id,)))
    cached.new_tick()
    assert [labels["i"] for labels, _ in same(cached, plain, "g", 0, M)] == ["1"]
    assert len(cached.cache._spans["g"].series) == 1


def test_a_wider_window_prepends_with_markers_intact(store, pair):
    cached, plain = pair
    store.write([Sample("g", {}, ts, STALE_NAN if ts % (3 * S) == 0 else float(ts)) for ts in range(0, 10 * M, S)])
    same(cached, plain, "g", 8 * M, 10 * M)
    cached.new_tick()
    got = same(cached, plain, "g", 2 * M, 10 * M)  # (2m, 8m] read and put in front
    assert len(got[0][1]) == 8 * 60 - 1
    (series,) = held(cached, "g").values()
    assert [t for t, _ in series] == [t for t, _ in got[0][1]]
    assert sum(is_stale(v) for _, v in series) == len([t for t, _ in got[0][1] if t % (3 * S) == 0])


def test_samples_are_held_in_typed_arrays_at_16_bytes_each(store, pair):
    cached, plain = pair
    store.write([Sample("g", {"i": str(i)}, ts, ts / 7) for i in range(3) for ts in range(0, 60 * M, S)])
    same(cached, plain, "g", 0, 60 * M)
    for s in cached.cache._spans["g"].series.values():
        assert isinstance(s.times, array) and s.times.typecode == "q"
        assert isinstance(s.values, array) and s.values.typecode == "d"
        n = len(s.times)
        assert n == len(s.values) == 3599  # (0, 60m] at 1 s, the edge included
        assert sys.getsizeof(s.times) + sys.getsizeof(s.values) < 2 * 8 * n * 1.1 + 200
        # Only the newest TAIL_MS is held as tuples as well: an hour's window does not keep an hour of them.
        assert len(s.tail) == TAIL_MS // S and s.tail == list(zip(s.times, s.values))[n - len(s.tail):]


# ---- randomised: the series against a plain dict ----------------------------------------

_value = st.sampled_from([0.0, -0.0, 1.5, float("inf"), float("nan"), STALE_NAN])
_ops = st.lists(st.one_of(
    st.tuples(st.just("extend"), st.lists(st.tuples(st.integers(1, 4), _value), max_size=30)),
    st.tuples(st.just("prepend"), st.lists(st.tuples(st.integers(1, 4), _value), max_size=30)),
    st.tuples(st.just("put"), st.integers(-20, 120), st.one_of(st.none(), _value), st.booleans()),
    st.tuples(st.just("merge"), st.dictionaries(st.integers(-20, 120), st.one_of(st.none(), _value), max_size=50),
              st.booleans()),
    st.tuples(st.just("drop"), st.integers(-20, 120)),
), max_size=25)


def pattern(points):
    return [(t, struct.pack("<d", v)) for t, v in points]


def stamp(model, k, held, step):
    """The k-th held stamp (cycling) when asked for one held and there is one, else k steps."""
    stamps = sorted(model)
    return stamps[k % len(stamps)] if held and stamps else k * step


@settings(max_examples=200, deadline=None)
@given(ops=_ops, windows=st.lists(st.tuples(st.integers(-25, 121), st.integers(0, 60)), min_size=1, max_size=6))
def test_a_series_answers_as_a_sorted_dict_whatever_is_done_to_it(ops, windows):
    step = 10_000  # ms between neighbouring stamps: 120 stamps span several TAIL_MS
    s, model = _Series(SeriesInfo(1, "g", {})), {}
    for op in ops:
        if op[0] in ("extend", "prepend"):
            gaps = [(g * step, v) for g, v in op[1]]
            if op[0] == "extend":
                base = max(model, default=0)
                points = [(base + sum(g for g, _ in gaps[:k + 1]), v) for k, (_, v) in enumerate(gaps)]
                s.extend(points)
            else:
                base = min(model, default=0)
                points = [(base - sum(g for g, _ in gaps[k:]), v) for k, (_, v) in enumerate(gaps)]
                s.prepend(points)
            model.update(points)
        elif op[0] == "put":
            ts = stamp(model, op[1], op[3], step)
            s.put(ts, op[2])
            model.pop(ts, None) if op[2] is None else model.__setitem__(ts, op[2])
        elif op[0] == "merge":
            changes = {stamp(model, k, op[2], step): v for k, v in op[1].items()}
            s.merge(changes)
            for ts, v in changes.items():
                model.pop(ts, None) if v is None else model.__setitem__(ts, v)
        else:
            s.drop_upto(op[1] * step)
            model = {ts: v for ts, v in model.items() if ts > op[1] * step}
        held = sorted(model.items())
        assert pattern(zip(s.times, s.values)) == pattern(held)
        if s.tail:  # a suffix of what is held, within TAIL_MS of the newest
            assert pattern(s.tail) == pattern(held[-len(s.tail):])
            assert s.tail[0][0] > held[-1][0] - TAIL_MS
        for a, width in windows:
            start, end = a * step, (a + width) * step
            want = [(ts, v) for ts, v in held if start < ts <= end]
            assert pattern(s.window(start, end)) == pattern(want)
            assert pattern(s.window(start - 1, end + 1)) == pattern([(ts, v) for ts, v in held
                                                                     if start - 1 < ts <= end + 1])
