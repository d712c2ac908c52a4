"""Random expressions end to end: a parse error with a column inside the text, or a value.

``test_promql_parse.py`` already fuzzes the parser alone (random text, token
soup, mutations) and ``test_promql_eval.py`` the evaluator on a small grammar
over in-memory data. This file extends them to the paths an expression really
takes:

- every function and aggregation of the signature table, with right and wrong
  arities and argument types, modifiers and odd literals, parsed and then
  evaluated on a real store (``StoreQuerier``): a ``PromQLSyntaxError`` whose
  column is inside the text, or a value / ``PromQLEvalError``, nothing else;
- the same expressions as ``expr:`` of an alert rule in a rules file: a bad one
  is reported at ``file:line:col`` pointing at the very character the parser
  complained about;
- parseable ones as recording and alert rules of a ``RulesEngine`` ticking on
  the store: a tick never raises, each failing rule is reported by name.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qbconsole.config import ConfigError, parse_config
from qbconsole.model import STALE_NAN, Sample
from qbconsole.rules.engine import RulesEngine
from qbconsole.rules.promql import Evaluator, PromQLEvalError, PromQLSyntaxError, Scalar, StoreQuerier, String, parse
from qbconsole.rules.promql.nodes import MATRIX, SCALAR, STRING, VECTOR
from qbconsole.rules.promql.signatures import AGGREGATIONS, FUNCTIONS
from qbconsole.rules.ruleset import rule_groups
from qbconsole.store import Store

S, M = 1000, 60_000
T0 = 1_800_000_000_000
TIMES = [T0, T0 + 90 * S, T0 + 5 * M, T0 + 20 * M]


def seed(store: Store) -> None:
    samples = []
    for i in range(11):
        t = T0 + i * M
        samples += [
            Sample("req_total", {"job": "api", "instance": "a"}, t, 10.0 * i),
            Sample("req_total", {"job": "web", "instance": "a"}, t, [0, 10, 20, 5, 15, 25, 1, 2, 3, 4, 5][i]),
            Sample("cpu", {"instance": "a", "mode": "user"}, t, [30, math.nan, math.inf, -math.inf, 0, 1e308,
                                                                  -1e-308, 5, 7, 9, 11][i]),
            Sample("cpu", {"instance": "b", "mode": "system"}, t, float(i)),
            Sample("up", {"job": "api", "instance": "a"}, t, float(i % 2)),
            Sample("up", {"job": "api", "instance": "b"}, t, STALE_NAN if i == 4 else 1.0),
        ]
        for le, n in [("0.1", 10), ("0.5", 30), ("1", 40), ("+Inf", 50), ("bogus", 7)]:
            samples.append(Sample("lat_bucket", {"le": le, "route": "/"}, t, float(n * i)))
    samples.append(Sample("g", {"room": "a", "x": "1"}, T0, 1.0))
    samples.append(Sample("g", {"room": "a", "x": "2"}, T0, 2.0))  # many-to-one on room
    store.write(samples)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("promql") / "qb.db")
    seed(s)
    yield s
    s.close()


# ---- expressions ------------------------------------------------------------------------------
NUMBERS = ["0", "1", "-2.5", "0.95", "NaN", "Inf", "-Inf", "0x1F", "1e309", "1e-320", "9" * 30, ".5", "5."]
SELECTORS = ["req_total", 'req_total{job="api"}', "cpu", 'cpu{mode!="user"}', 'cpu{instance=~"a|b"}', "up",
             'up{job!~"x.*"}', "lat_bucket", "g", "nope", '{__name__=~"c.*"}', '{__name__="up"}',
             'cpu{instance=~"("}', 'x{a="\\u00e9\\n"}', "req_total offset 1m", "req_total offset -2m",
             "req_total @ 1800000000", "quickbid:x:rate1m"]
RANGES = ["[1m]", "[5m]", "[90s]", "[0s]", "[1h30m]", "[1m:10s]", "[1y]", "[5m] offset 1m"]
STRINGS = ['"x"', "'y'", "`z`", '"\\q"']
BINOPS = ["+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "atan2"]
MODIFIERS = ["", " bool", " on(instance)", " ignoring(mode)", " on(room) group_left(x)", " on() group_right",
             " bool on(job)", " ignoring(le) group_left"]
GROUPING = ["", " by (instance)", " without (mode)", " by ()", " by (le)", " by (__name__)", " without ()"]

leaves = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(SELECTORS),
                   st.builds(lambda s, r: s + r, st.sampled_from(SELECTORS[:10]), st.sampled_from(RANGES)),
                   st.sampled_from(STRINGS))


def extend(inner):
    call = st.builds(lambda f, args: f"{f}({', '.join(args)})",
                     st.sampled_from(sorted(FUNCTIONS)), st.lists(inner, max_size=3))
    aggregate = st.builds(lambda a, g, args, pre: f"{a}{g} ({', '.join(args)})" if pre else f"{a}({', '.join(args)}){g}",
                          st.sampled_from(sorted(AGGREGATIONS)), st.sampled_from(GROUPING),
                          st.lists(inner, min_size=1, max_size=2), st.booleans())
    binary = st.builds(lambda a, op, m, b: f"{a} {op}{m} {b}", inner, st.sampled_from(BINOPS),
                       st.sampled_from(MODIFIERS), inner)
    return st.one_of(call, aggregate, binary, inner.map(lambda e: f"({e})"), inner.map(lambda e: f"-{e}"),
                     st.builds(lambda e, r: f"({e}){r}", inner, st.sampled_from(RANGES)))


untyped = st.recursive(leaves, extend, max_leaves=8)  # mostly ill-typed: exercises the parser's checks


def typed(depth: int) -> dict[str, st.SearchStrategy[str]]:
    """Well-typed expressions by result type (scalar, vector, matrix), ``depth`` levels deep,
    so most of them get as far as the evaluator."""
    scalar = st.sampled_from(NUMBERS[:9] + ["time()"])
    vector = st.sampled_from(SELECTORS)
    matrix = st.builds(lambda s, r: s + r, st.sampled_from(SELECTORS[:10]), st.sampled_from(RANGES))
    if depth == 0:
        return {SCALAR: scalar, VECTOR: vector, MATRIX: matrix, STRING: st.sampled_from(STRINGS)}
    below = typed(depth - 1)

    def call(name: str) -> st.SearchStrategy[str]:
        sig = FUNCTIONS[name]
        args = [below[a] for a in sig.args[:sig.min_args]]
        return st.builds(lambda *a: f"{name}({', '.join(a)})", *args)

    by_type: dict[str, list[str]] = {}
    for name, sig in FUNCTIONS.items():
        by_type.setdefault(sig.returns, []).append(name)
    calls = {kind: st.one_of(*[call(n) for n in sorted(names)]) for kind, names in by_type.items()}
    aggregate = st.builds(
        lambda a, g, v, p: f"{a}{g} ({p + ', ' if AGGREGATIONS[a] else ''}{v})",
        st.sampled_from(sorted(AGGREGATIONS)), st.sampled_from(GROUPING), below[VECTOR], below[SCALAR])
    binary = st.builds(lambda a, op, m, b: f"{a} {op}{m} {b}", below[VECTOR],
                       st.sampled_from(BINOPS[:-1]), st.sampled_from(MODIFIERS), below[VECTOR])
    mixed = st.builds(lambda a, op, b, flip: f"{b} {op} {a}" if flip else f"{a} {op} {b}", below[VECTOR],
                      st.sampled_from(BINOPS[:10]), below[SCALAR], st.booleans())
    vector = st.one_of(vector, calls[VECTOR], aggregate, binary, mixed,
                       below[VECTOR].map(lambda e: f"({e})"), below[VECTOR].map(lambda e: f"-{e}"))
    scalar = st.one_of(scalar, calls[SCALAR],
                       st.builds(lambda a, op, b: f"({a} {op} {b})", below[SCALAR], st.sampled_from(BINOPS[:10]),
                                 below[SCALAR]))
    matrix = st.one_of(matrix, below[VECTOR].map(lambda v: f"({v})[5m:1m]"))
    return {SCALAR: scalar, VECTOR: vector, MATRIX: matrix, STRING: below[STRING]}


_TYPED = typed(3)
exprs = st.one_of(untyped, _TYPED[VECTOR], _TYPED[VECTOR], _TYPED[SCALAR])


def parse_or_error(text: str):
    """The parsed expression, or None after checking the syntax error's column."""
    try:
        return parse(text)
    except PromQLSyntaxError as err:
        assert 1 <= err.col <= len(text) + 1, (text, err.col)
        assert err.message and str(err).startswith(f"col {err.col}: ")
        return None


FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(exprs, st.sampled_from(TIMES))
def test_every_function_parsed_then_evaluated_on_the_store(store, text, t):
    node = parse_or_error(text)
    if node is None:
        return
    evaluator = Evaluator(StoreQuerier(store))
    evaluator.new_tick()
    try:
        result = evaluator.evaluate(node, t)
    except PromQLEvalError as err:
        assert str(err)
        return
    assert isinstance(result, (list, Scalar, String))
    if isinstance(result, list):
        assert all(isinstance(s.value, float) for s in result)
        assert len({frozenset(s.labels.items()) for s in result}) == len(result), "two samples with one label set"


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exprs)
def test_a_bad_expression_in_a_rules_file_points_at_its_column(text):
    assume(text.isprintable())  # one line, as written in a file
    line = f"    expr: {_single_quoted(text)}"
    rules = f"alert_rules:\n  - alert: Fuzz\n{line}\n    for: 1m\n"
    try:
        parse(text)
        parse_error = None
    except PromQLSyntaxError as err:
        parse_error = err
    try:
        parse_config(rules, "rules.yaml", env={})
        diagnostics = []
    except ConfigError as err:
        diagnostics = err.diagnostics
    bad = [d for d in diagnostics if "bad expression" in d.message]
    if parse_error is None:
        assert bad == [], diagnostics
        return
    [d] = bad
    assert (d.file, d.line) == ("rules.yaml", 3)
    assert 1 <= d.col <= len(line) + 1
    if parse_error.col <= len(text) and "'" not in text[:parse_error.col]:
        assert line[d.col - 1] == text[parse_error.col - 1], (text, parse_error.col, d)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(exprs, min_size=1, max_size=4), st.lists(st.sampled_from(TIMES), min_size=1, max_size=3))
def test_random_rules_never_break_an_engine_tick(store, texts, times):
    texts = [t for t in texts if parse_or_error(t) is not None]
    assume(texts)
    rules = "recording_rules:\n" + "".join(
        f"  - {{record: 'fuzz:r{i}:x', expr: {_single_quoted(t)}}}\n" for i, t in enumerate(texts[:2]))
    rules += "alert_rules:\n" + "".join(
        f"  - {{alert: Fuzz{i}, expr: {_single_quoted(t)}, for: 1m,"
        f" annotations: {{summary: '{{{{ $value | humanize }}}} {{{{ $labels.instance }}}}'}}}}\n"
        for i, t in enumerate(texts))
    try:
        config = parse_config(rules, "rules.yaml", env={})
    except ConfigError:
        return  # a rule the file refuses (e.g. a string-valued alert) never reaches the engine
    engine = RulesEngine(store, rule_groups(config))  # (recorded series land in the shared store)
    names = {f"fuzz:r{i}:x" for i in range(2)} | {f"Fuzz{i}" for i in range(len(texts))}
    for t in sorted(times):
        for group in engine.groups:
            result = engine.evaluate_group(group, t)
            assert set(result.errors) <= names
            assert all(isinstance(e, str) and e for e in result.errors.values())
