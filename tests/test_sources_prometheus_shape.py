"""Re-reading a same-shaped exposition (collect/shape.py) gives exactly what the full parse gives."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from qbconsole.collect.prometheus import PrometheusSource, parse_exposition
from qbconsole.collect.shape import Shape
from qbconsole.model import is_stale

from test_sources_prometheus import TEXT, Exporter, registry

FIXTURES = Path("/work/shared/fixtures")
NOW = 1_700_000_000_000
# A sample line's number tokens: after the series, before the end of the line.
NUMBER = re.compile(r"(?m)(?<=[}\w])( +)([-+0-9.eE]+|[+-]?Inf|NaN)( +-?\d+)?$")
CAPTURES = ["prometheus_metrics.txt", "alertmanager_metrics.txt"]


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def agrees_with_full_parse(shape: Shape, text: str) -> bool:
    """shape.numbers(text) is None, or exactly what prometheus_client reads (True if it read)."""
    numbers = shape.numbers(text)
    try:
        exposed = parse_exposition(text, TEXT)
    except ValueError:
        assert numbers is None, "the fast path read a body the library refuses"
        return False
    except OverflowError:  # the library lets a huge integer escape (the scheduler reports it)
        assert numbers is None
        return False
    if numbers is None:
        return False
    assert len(numbers) == len(exposed)
    for e, (value, ts) in zip(exposed, numbers):
        assert same(e.value, value) and e.ts == ts, (e, value, ts)
    return True


@pytest.mark.parametrize("fixture", CAPTURES)
def test_a_real_capture_with_new_numbers_is_read_by_its_shape(fixture):
    text = (FIXTURES / fixture).read_text()
    shape = Shape.of(text, len(parse_exposition(text, TEXT)))
    assert shape is not None and shape.samples == len(parse_exposition(text, TEXT))
    assert agrees_with_full_parse(shape, text)
    counter = iter(range(10**6))
    renumbered = NUMBER.sub(lambda m: f"{m.group(1)}{next(counter) * 1.5e3}", text)
    assert renumbered != text
    assert agrees_with_full_parse(shape, renumbered)


PLAIN = st.one_of(st.floats(allow_nan=True).map(repr), st.integers(min_value=-10**20, max_value=10**20).map(str))
TOKENS = st.one_of(
    PLAIN,
    st.sampled_from(["+Inf", "-Inf", "NaN", "nan", "inf", "1e400", "1_000", "0x10", "1" * 400, "", "1 2",
                     "1\t2", "5 1700000000000", "5 1.7e12", "5 abc", "\"1\"", "1}", "{1}", "#1", "1 2 3",
                     "٣", "1\u00a02", "-0", "+.5", "5."]),
)


@settings(max_examples=300, deadline=None)
@given(fixture=st.sampled_from(CAPTURES), data=st.data())
def test_mutated_numbers_read_as_the_library_reads_them_or_not_at_all(fixture, data):
    text = (FIXTURES / fixture).read_text()
    shape = Shape.of(text, len(parse_exposition(text, TEXT)))
    matches = list(NUMBER.finditer(text))
    plain = data.draw(st.booleans())
    picks = data.draw(st.lists(st.tuples(st.integers(0, len(matches) - 1), PLAIN if plain else TOKENS),
                               min_size=1, max_size=5))
    chunks, last = [], 0
    for i, token in sorted(dict(picks).items()):
        m = matches[i]
        chunks += [text[last:m.start(2)], token]
        last = m.end(2)
    read = agrees_with_full_parse(shape, "".join(chunks) + text[last:])
    assert read or not plain, "plain numbers must be re-read by the shape"


EDITS = st.sampled_from([
    lambda t: t.replace('handler="/metrics"', 'handler="/metricz"', 1),  # a label value changed
    lambda t: t.replace("\n", "\n\n", 1),  # a blank line more
    lambda t: t.replace("# HELP", "#  HELP", 1),
    lambda t: t.replace("counter", "gauge", 1),  # a type changed
    lambda t: "\n".join(t.split("\n")[1:]),  # a line fewer
    lambda t: "\n".join(reversed(t.split("\n"))),  # reordered
    lambda t: t.replace("} ", "}\t", 1),
    lambda t: t.replace("} ", "}", 1),
    lambda t: t.replace("} ", "}  ", 1),
    lambda t: t.replace('"} ', '",} ', 1),
    lambda t: t.replace("go_goroutines ", "go_goroutines{} ", 1),
    lambda t: t.replace("go_goroutines ", "go_goroutines\t", 1),
    lambda t: t.replace("go_threads ", "go_threads} ", 1),
    lambda t: t.replace("go_threads ", "go_threads{x=\"1\"} ", 1),
    lambda t: t + "extra_series 1\n",
    lambda t: t.replace("\n", "\r\n"),
])


@settings(max_examples=200, deadline=None)
@given(fixture=st.sampled_from(CAPTURES), edits=st.lists(EDITS, min_size=1, max_size=3))
def test_any_other_change_is_read_in_full_or_agrees(fixture, edits):
    text = (FIXTURES / fixture).read_text()
    shape = Shape.of(text, len(parse_exposition(text, TEXT)))
    for edit in edits:
        text = edit(text)
    agrees_with_full_parse(shape, text)


def test_a_changed_label_is_never_read_by_the_old_shape():
    text = (FIXTURES / CAPTURES[0]).read_text()
    shape = Shape.of(text, len(parse_exposition(text, TEXT)))
    assert shape.numbers(text.replace('handler="/metrics"', 'handler="/metricz"', 1)) is None
    assert shape.numbers(text.replace("# TYPE go_goroutines gauge", "# TYPE go_goroutines counter")) is None
    assert shape.numbers(text + "x 1\n") is None


def test_shapes_it_cannot_vouch_for_are_not_made():
    assert Shape.of("a 1\nb 2\n", 1) is None  # the parse does not account for every line
    assert Shape.of("a\t1\n", 1) is None  # the library splits on a tab; only spaces are re-read
    assert Shape.of('a{x="1"}1\n', 1) is None


# ---- the source: same samples on either path ------------------------------------------------------
def by_key(samples):
    return {(s.name, tuple(sorted(s.labels.items()))): s for s in samples}


def test_the_source_gives_the_same_samples_as_a_fresh_parse():
    exporter = Exporter()
    try:
        text = (FIXTURES / CAPTURES[0]).read_text()
        exporter.body = text
        warm = PrometheusSource(name="qb", interval=5, jitter=0, timeout=2, url=exporter.url)
        warm.collect(NOW)
        assert warm._shape is not None
        counter = iter(range(10**6))
        exporter.body = NUMBER.sub(lambda m: f"{m.group(1)}{next(counter) + 0.25}", text)
        fresh = PrometheusSource(name="qb", interval=5, jitter=0, timeout=2, url=exporter.url)
        got, want = by_key(warm.collect(NOW + 5000)), by_key(fresh.collect(NOW + 5000))
        assert got.keys() == want.keys()
        for key, sample in want.items():
            if key[0] != "scrape_duration_seconds":
                assert got[key].ts == sample.ts and same(got[key].value, sample.value), key
        assert got[("scrape_samples_scraped", key_labels(exporter))].value == 324
        warm.close()
        fresh.close()
    finally:
        exporter.close()


def key_labels(exporter):
    return tuple(sorted({"job": "qb", "instance": f"127.0.0.1:{exporter.port}"}.items()))


def test_a_vanished_series_still_goes_stale_and_a_failure_forgets_the_shape():
    exporter = Exporter()
    try:
        from prometheus_client import generate_latest
        body = generate_latest(registry()).decode()
        exporter.body = body
        src = PrometheusSource(name="qb", interval=5, jitter=0, timeout=2, url=exporter.url)
        src.collect(NOW)
        src.collect(NOW + 1000)  # same shape
        exporter.body = "\n".join(line for line in body.split("\n") if not line.startswith("quickbid_workers "))
        stale = [s for s in src.collect(NOW + 2000) if is_stale(s.value)]
        assert [s.name for s in stale] == ["quickbid_workers"]
        exporter.status = 500
        with pytest.raises(Exception):
            src.collect(NOW + 3000)
        assert src._shape is None
        exporter.status = 200
        assert not any(is_stale(s.value) for s in src.collect(NOW + 4000))
        src.close()
    finally:
        exporter.close()


def test_own_timestamps_are_re_read_too():
    exporter = Exporter()
    try:
        exporter.body = "# TYPE a gauge\na 1 1700000000000\nb 2\n"
        src = PrometheusSource(name="qb", interval=5, jitter=0, timeout=2, url=exporter.url)
        src.collect(NOW)
        exporter.body = "# TYPE a gauge\na 3 1700000009000\nb 4\n"
        got = {s.name: s for s in src.collect(NOW + 10_000)}
        assert (got["a"].ts, got["a"].value) == (1_700_000_009_000, 3.0)
        assert (got["b"].ts, got["b"].value) == (NOW + 10_000, 4.0)
        src.close()
    finally:
        exporter.close()
