"""The rules engine's sample cache (CachedStoreQuerier / SampleCache): same answers as
StoreQuerier, bit for bit, while reading only what is new."""

from __future__ import annotations

import sqlite3
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbconsole.model import STALE_NAN, Sample
from qbconsole.rules.alerts import AlertRule
from qbconsole.rules.engine import RulesEngine
from qbconsole.rules.promql import Evaluator, StoreQuerier, parse
from qbconsole.rules.promql.queriers import CachedStoreQuerier
from qbconsole.rules.ruleset import RecordingRule, RuleGroup
from qbconsole.store import Store

S, M = 1000, 60_000


def bits(data):
    """A select result with every value as its bit pattern (NaN and the stale marker compare)."""
    return [(labels, [(t, struct.pack("<d", v)) for t, v in points]) for labels, points in data]


def same(cached, plain, name, start, end, matchers=()):
    got = cached.select(name, list(matchers), start, end)
    want = plain.select(name, list(matchers), start, end)
    assert bits(got) == bits(want)
    return got


def counter(name, labels, start, end, step=S, per_s=1.0):
    return [Sample(name, labels, ts, ts / 1000 * per_s) for ts in range(start, end, step)]


def rate(ev, expr, t):
    return {s.labels.get("i"): s.value for s in ev.evaluate(expr, t)}


def test_a_tick_reads_only_the_new_samples(store, pair):
    cached, plain = pair
    store.write([s for i in range(3) for s in counter("c_total", {"i": str(i)}, 0, 10 * M)])
    same(cached, plain, "c_total", 4 * M, 9 * M)
    first = cached.cache.stats["rows"]
    assert first == 3 * 5 * 60
    for k in range(1, 6):
        cached.new_tick()
        same(cached, plain, "c_total", 4 * M + 5 * S * k, 9 * M + 5 * S * k)
    # Five ticks 5 s apart: 5 new samples per series each, plus what lands at each tick's edge.
    assert cached.cache.stats["rows"] - first <= 3 * 5 * 6 + 3 * 5


def test_a_late_sample_inside_a_cached_window_changes_the_rate(store):
    store.write([s for i in range(2) for s in counter("c_total", {"i": str(i)}, 0, 10 * M, step=10 * S)])
    cached, plain = Evaluator(CachedStoreQuerier(store)), Evaluator(StoreQuerier(store))
    before = rate(cached, "rate(c_total[5m])", 9 * M)
    assert before == rate(plain, "rate(c_total[5m])", 9 * M)
    # A sample between two already read (7m05s), far above the line: a counter reset.
    store.write([Sample("c_total", {"i": "1"}, 7 * M + 5 * S, 1.0)])
    for ev in (cached, plain):
        ev.new_tick()
    cached.querier.new_tick()
    after = rate(cached, "rate(c_total[5m])", 9 * M + 5 * S)
    assert after == rate(plain, "rate(c_total[5m])", 9 * M + 5 * S)
    assert after["0"] == pytest.approx(before["0"]) and after["1"] != pytest.approx(before["1"])
    assert cached.querier.cache.stats["patched"] == 1


def test_late_samples_are_seen_at_the_same_evaluation_time_after_new_tick(store, pair):
    cached, plain = pair
    store.write(counter("c_total", {"i": "0"}, 0, 6 * M, step=15 * S))
    same(cached, plain, "c_total", 0, 5 * M)
    store.write([Sample("c_total", {"i": "0"}, 4 * M + 1, 7.0),  # late, inside
                 Sample("c_total", {"i": "0"}, 3 * M, 8.0)])  # replaces a read sample
    cached.new_tick()
    got = same(cached, plain, "c_total", 0, 5 * M)
    assert (4 * M + 1, 7.0) in got[0][1] and (3 * M, 8.0) in got[0][1]


def test_a_burst_of_late_samples_and_deletions_in_one_series(store, pair):
    cached, plain = pair
    store.write(counter("rum_seconds", {}, 0, 10 * M, step=10 * S))
    same(cached, plain, "rum_seconds", 0, 10 * M)
    store.write([Sample("rum_seconds", {}, ts + 3, ts / 1e5) for ts in range(M, 9 * M, 7 * S)]  # ~70 beacons
                + [Sample("rum_seconds", {}, ts, -1.0) for ts in range(2 * M, 3 * M, 10 * S)])  # replaced
    store.transaction(lambda conn: conn.execute("DELETE FROM samples WHERE ts BETWEEN ? AND ?", (5 * M, 6 * M)))
    cached.new_tick()
    same(cached, plain, "rum_seconds", 0, 10 * M)
    assert cached.cache.stats["patched"] > 32 and cached.cache.stats["resets"] == 0


def test_new_series_appear_also_when_their_first_sample_is_late(store, pair):
    cached, plain = pair
    store.write(counter("c_total", {"i": "0"}, 0, 10 * M, step=10 * S))
    assert len(same(cached, plain, "c_total", 4 * M, 9 * M)) == 1
    store.write(counter("c_total", {"i": "1"}, 8 * M, 10 * M, step=10 * S))  # partly inside the span
    store.write([Sample("c_total", {"i": "2"}, 9 * M + 5 * S, 1.0)])  # after the span
    cached.new_tick()
    got = same(cached, plain, "c_total", 4 * M + 5 * S, 9 * M + 5 * S)
    assert [labels["i"] for labels, _ in got] == ["0", "1", "2"]


def test_series_that_stop_drop_out_of_answers_and_of_the_cache(store, pair):
    cached, plain = pair
    store.write(counter("g", {"i": "0"}, 0, 10 * M, step=10 * S) + counter("g", {"i": "1"}, 0, 3 * M, step=10 * S))
    assert len(same(cached, plain, "g", 0, 2 * M)) == 2
    for k in range(1, 9):
        cached.new_tick()
        same(cached, plain, "g", k * M, (k + 2) * M)
    span = cached.cache._spans["g"]
    assert list(span.series) == [store.series("g", {"i": "0"})[0].id]


def test_staleness_markers_are_kept_and_a_late_one_ends_the_series(store):
    store.write(counter("up", {"i": "0"}, 0, 5 * M, step=15 * S))
    cached, plain = Evaluator(CachedStoreQuerier(store)), Evaluator(StoreQuerier(store))
    assert cached.evaluate("up", 5 * M) and cached.evaluate("count_over_time(up[1m])", 5 * M)
    store.write([Sample("up", {"i": "0"}, 5 * M - 1, STALE_NAN)])
    for ev in (cached, plain):
        ev.new_tick()
    cached.querier.new_tick()
    assert cached.evaluate("up", 5 * M) == plain.evaluate("up", 5 * M) == []
    assert bits(cached.querier.select("up", [], 4 * M, 5 * M)) == bits(plain.querier.select("up", [], 4 * M, 5 * M))


def test_windows_slide_and_unused_names_and_widths_are_evicted(store):
    cached = CachedStoreQuerier(store, keep_ms=2 * M)
    plain = StoreQuerier(store)
    store.write(counter("a_total", {}, 0, 30 * M) + counter("b_total", {}, 0, 30 * M))
    for k in range(16):  # 3m45s of evaluation time: the 5m window and b_total unused for 3m15s
        t = 10 * M + k * 15 * S
        cached.new_tick()
        same(cached, plain, "a_total", t - M, t)
        if k < 2:
            same(cached, plain, "a_total", t - 5 * M, t)  # a wider window, then no more
            same(cached, plain, "b_total", t - M, t)
    cache = cached.cache
    assert cache.names() == ["a_total"]
    (series,) = cache._spans["a_total"].series.values()
    assert len(series.times) <= 61  # the 1m window only, at 1 s samples
    cached.close()


def test_purged_samples_inside_a_cached_window_are_gone(tmp_path):
    store = Store.open(tmp_path / "short.db", raw_retention_s=120)
    try:
        cached, plain = CachedStoreQuerier(store), StoreQuerier(store)
        store.write(counter("c_total", {}, 0, 10 * M, step=5 * S))
        same(cached, plain, "c_total", 0, 10 * M)
        assert store.purge(10 * M)[0] > 0
        cached.new_tick()
        got = same(cached, plain, "c_total", 0, 10 * M)
        assert got[0][1][0][0] >= 8 * M
    finally:
        store.close()


def test_a_write_by_another_connection_empties_the_cache(store, pair):
    cached, plain = pair
    store.write(counter("c_total", {}, 0, 10 * M, step=10 * S))
    same(cached, plain, "c_total", 0, 9 * M)
    sid = store.series("c_total")[0].id
    other = sqlite3.connect(store.path, isolation_level=None)  # as another process would
    try:
        other.execute("INSERT OR REPLACE INTO samples VALUES (?, ?, ?)", (sid, 5 * M + 1, 42.0))
    finally:
        other.close()
    cached.new_tick()
    same(cached, plain, "c_total", 0, 9 * M)
    assert cached.cache.stats["resets"] == 1


def test_a_watcher_the_store_forgot_starts_over(store, pair):
    cached, plain = pair
    store.write(counter("c_total", {}, 0, 10 * M, step=10 * S))
    same(cached, plain, "c_total", 0, 9 * M)
    store.transaction(lambda conn: conn.execute("DELETE FROM temp.qb_window_watch"))
    store.write([Sample("c_total", {}, 5 * M + 1, 42.0)])  # not logged for anyone
    cached.new_tick()
    assert (5 * M + 1, 42.0) in same(cached, plain, "c_total", 0, 9 * M)[0][1]
    assert cached.cache.stats["resets"] == 1


def test_matchers_offsets_and_name_regexes_answer_as_the_plain_querier(store, pair):
    cached, plain = pair
    store.write([s for route in ("/", "/bid") for status in ("200", "500")
                 for s in counter("http_requests_total", {"route": route, "status": status}, 0, 10 * M, 10 * S)])
    store.write(counter("http_up", {"target": "api"}, 0, 10 * M, 10 * S))
    selectors = ['http_requests_total{route="/", status!="200"}', 'http_requests_total{status=~"5.."}',
                 '{__name__=~"http_.*"}', 'http_requests_total{route=""}', '{__name__="http_up", target="api"}']
    for t in (6 * M, 6 * M + 10 * S, 5 * M, 8 * M):
        cached.new_tick()
        for text in selectors:
            vs = parse(text)
            for start, end in ((t - 5 * M, t), (t - M - 3 * M, t - 3 * M), (t - 30 * S, t)):
                same(cached, plain, vs.name, start, end, vs.matchers)


def test_the_engine_evaluates_through_the_cache_and_sees_what_it_recorded(store):
    store.write(counter("c_total", {"i": "0"}, 0, 10 * M, step=5 * S))
    group = RuleGroup("g", 15_000, (
        RecordingRule("c:rate1m", "rate(c_total[1m])", {}),
        AlertRule("Fast", "c:rate1m > 0.5", for_ms=0, labels={}, annotations={}),
    ))
    engine = RulesEngine(store, [group])
    assert isinstance(engine.querier, CachedStoreQuerier)
    for t in (5 * M, 6 * M, 4 * M):  # time going back too: the recording lands below the edge
        result = engine.evaluate_group(group, t)
        assert not result.errors and result.samples == 1
        assert [a.state for a in engine.alerts("Fast")] == ["firing"]
    assert RulesEngine(store, [group], evaluator=Evaluator(StoreQuerier(store))).querier.__class__ is StoreQuerier


# ---- randomised: any mix of writes, the same answers -----------------------------------

_write = st.tuples(
    st.sampled_from(["append", "late", "replace", "stale", "nan", "new", "purge"]),
    st.integers(0, 3), st.integers(1, 40), st.floats(-1e6, 1e6, allow_nan=False))
_query = st.tuples(st.sampled_from(["x", "y", None]), st.sampled_from([5 * S, 30 * S, 2 * M]),
                   st.integers(0, 40 * S))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds=st.lists(st.tuples(st.lists(_write, max_size=6), st.lists(_query, min_size=1, max_size=4),
                                 st.integers(-10 * S, 20 * S)), min_size=1, max_size=12))
def test_randomised_writes_give_the_same_answers_as_the_plain_querier(rounds):
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "r.db", raw_retention_s=150)
        try:
            cached, plain = CachedStoreQuerier(store, keep_ms=M), StoreQuerier(store)
            now = 3 * M
            store.write(counter("x", {"i": "0"}, 0, now, step=5 * S) + counter("y", {"i": "0"}, 0, now, step=7 * S))
            for writes, queries, step in rounds:
                samples = []
                for kind, i, back, value in writes:
                    name, labels = ("x", {"i": str(i)}) if i < 2 else ("y", {"i": str(i - 2)})
                    ts = now - back * S if kind in ("late", "stale", "nan") else now + back
                    if kind == "replace":
                        ts = now - (back % 30) * 5 * S
                    elif kind == "new":
                        labels = {"i": f"n{back}"}
                    elif kind == "purge":
                        store.purge(now)
                        continue
                    v = STALE_NAN if kind == "stale" else float("nan") if kind == "nan" else value
                    samples.append(Sample(name, labels, ts, v))
                if samples:
                    store.write(samples)
                now = max(now + step, 0)
                cached.new_tick()
                for name, width, offset in queries:
                    same(cached, plain, name, now - offset - width, now - offset)
            cached.close()
        finally:
            store.close()


def test_a_failure_while_applying_logged_changes_empties_the_cache(store, monkeypatch):
    from qbconsole.rules.promql import samplecache

    store.write([Sample("g", {}, ts, 1.0) for ts in range(0, 60_000, 1000)])
    cached, plain = CachedStoreQuerier(store), StoreQuerier(store)
    cached.select("g", [], 0, 60_000)
    store.write([Sample("g", {}, 30_000, 99.0)])  # a replacement inside the cached window
    cached.new_tick()

    def failing(*_args, **_kwargs):
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(samplecache.queries, "values_at", failing)
        with pytest.raises(sqlite3.OperationalError):
            cached.select("g", [], 0, 60_000)  # the change log was consumed by this failed sync
    cached.new_tick()
    assert cached.select("g", [], 0, 60_000) == plain.select("g", [], 0, 60_000)
    cached.close()
