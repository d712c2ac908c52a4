"""The PromQL parser: precedence, every function and aggregation, modifiers, literals,
errors at exact columns, and fuzzing (parse gives an Expr or PromQLSyntaxError, nothing else)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qbconsole.rules.promql import (
    Aggregate, Binary, Call, MatrixSelector, NumberLiteral, Paren, PromQLSyntaxError, StringLiteral,
    Unary, VectorSelector, parse, to_promql,
)
from qbconsole.rules.promql.nodes import MANY_TO_MANY, MANY_TO_ONE, MATRIX, ONE_TO_MANY, SCALAR, VECTOR
from qbconsole.rules.promql.signatures import AGGREGATIONS, FUNCTIONS


def shape(node) -> str:
    """A compact S-expression of the tree, without parentheses nodes' own marks."""
    if isinstance(node, NumberLiteral):
        return repr(node.value)
    if isinstance(node, StringLiteral):
        return repr(node.value)
    if isinstance(node, VectorSelector):
        return node.name or "{}"
    if isinstance(node, MatrixSelector):
        return f"{shape(node.vector)}[{node.range_ms}]"
    if isinstance(node, Paren):
        return shape(node.expr)
    if isinstance(node, Unary):
        return f"({'neg' if node.op == '-' else 'pos'} {shape(node.expr)})"
    if isinstance(node, Binary):
        return f"({node.op} {shape(node.lhs)} {shape(node.rhs)})"
    if isinstance(node, Call):
        return f"({node.func} {' '.join(shape(a) for a in node.args)})"
    if isinstance(node, Aggregate):
        return f"({node.op} {shape(node.expr)})"
    raise TypeError(node)


@pytest.mark.parametrize("text, expected", [
    ("a + b * c", "(+ a (* b c))"),
    ("a * b + c", "(+ (* a b) c)"),
    ("a - b - c", "(- (- a b) c)"),
    ("a / b * c % d", "(% (* (/ a b) c) d)"),
    ("a ^ b ^ c", "(^ a (^ b c))"),
    ("a * b ^ c", "(* a (^ b c))"),
    ("-a ^ b", "(neg (^ a b))"),
    ("a ^ -b", "(^ a (neg b))"),
    ("a ^ -b ^ c", "(^ a (neg (^ b c)))"),
    ("-a * b", "(* (neg a) b)"),
    ("a * -b", "(* a (neg b))"),
    ("-a + b", "(+ (neg a) b)"),
    ("- -a", "(neg (neg a))"),
    ("+a", "(pos a)"),
    ("a + b > c - d", "(> (+ a b) (- c d))"),
    ("a > b == c", "(== (> a b) c)"),
    ("a > b and c < d", "(and (> a b) (< c d))"),
    ("a and b or c and d", "(or (and a b) (and c d))"),
    ("a or b unless c", "(or a (unless b c))"),
    ("a unless b and c", "(and (unless a b) c)"),
    ("a or b or c", "(or (or a b) c)"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("2 ^ 3 ^ 2", "(^ 2.0 (^ 3.0 2.0))"),
    ("-2 ^ 2", "(neg (^ 2.0 2.0))"),
    ("1 - -1", "(- 1.0 -1.0)"),
    ("sum(a) by (x) / on(x) b", "(/ (sum a) b)"),
    ("rate(a[5m]) > 0.5", "(> (rate a[300000]) 0.5)"),
])
def test_precedence_and_associativity(text, expected):
    assert shape(parse(text)) == expected


def test_unary_minus_folds_into_number_literals():
    assert parse("-1") == NumberLiteral(-1.0)
    assert parse("- - 2") == NumberLiteral(2.0)
    assert parse("+3") == NumberLiteral(3.0)
    assert isinstance(parse("-(1)"), Unary)


def _sample_arg(kind: str) -> str:
    return {SCALAR: "0.5", VECTOR: 'x{job="a"}', MATRIX: 'x{job="a"}[5m]'}[kind]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_parses_with_its_argument_types(name):
    sig = FUNCTIONS[name]
    node = parse(f"{name}({', '.join(_sample_arg(t) for t in sig.args)})")
    assert isinstance(node, Call) and node.func == name and node.type == sig.returns
    if sig.min_args < len(sig.args):
        short = parse(f"{name}({', '.join(_sample_arg(t) for t in sig.args[:sig.min_args])})")
        assert len(short.args) == sig.min_args


@pytest.mark.parametrize("op", sorted(AGGREGATIONS))
def test_every_aggregation_parses_with_modifiers_before_and_after(op):
    arg = "0.9, x" if AGGREGATIONS[op] else "x"
    plain = parse(f"{op}({arg})")
    assert isinstance(plain, Aggregate) and plain.op == op and plain.grouping == () and not plain.without
    before = parse(f"{op} by (job, instance) ({arg})")
    after = parse(f"{op}({arg}) by (job, instance)")
    assert before == after and before.grouping == ("job", "instance") and not before.without
    without = parse(f"{op} without (job) ({arg})")
    assert without == parse(f"{op}({arg}) without (job,)") and without.without
    assert parse(f"{op.upper()} BY (job) ({arg})") == parse(f"{op} by (job) ({arg})")
    if AGGREGATIONS[op]:
        assert before.param == NumberLiteral(0.9)


@pytest.mark.parametrize("text, ms", [
    ("x[30s]", 30_000), ("x[5m]", 300_000), ("x[1h]", 3_600_000), ("x[1h30m]", 5_400_000),
    ("x[500ms]", 500), ("x[1m30s500ms]", 90_500), ("x[1d]", 86_400_000), ("x[2w]", 14 * 86_400_000),
    ("x[1y]", 365 * 86_400_000),
])
def test_durations(text, ms):
    node = parse(text)
    assert isinstance(node, MatrixSelector) and node.range_ms == ms


def test_offsets():
    assert parse("x offset 5m") == VectorSelector("x", (), 300_000)
    assert parse("x offset -1h") == VectorSelector("x", (), -3_600_000)
    m = parse('x{a="b"}[10m] offset 1h')
    assert isinstance(m, MatrixSelector) and m.range_ms == 600_000 and m.vector.offset_ms == 3_600_000
    assert parse("rate(x[5m] offset 1d)").args[0].vector.offset_ms == 86_400_000
    assert parse("x OFFSET 1m").offset_ms == 60_000


def test_selectors_and_matchers():
    node = parse('http_requests_total{job="api", status=~"5..", method!="GET", path!~"/health.*",}')
    assert node.name == "http_requests_total"
    assert [(m.name, m.op, m.value) for m in node.matchers] == [
        ("job", "=", "api"), ("status", "=~", "5.."), ("method", "!=", "GET"), ("path", "!~", "/health.*")]
    assert node.matchers[1].matches("503") and not node.matchers[1].matches("5030")
    assert not node.matchers[3].matches("/healthz") and node.matchers[3].matches("/api")
    assert parse('{__name__="up", job="x"}') == parse('up{job="x"}')
    anon = parse('{__name__=~"quickbid:.*"}')
    assert anon.name is None and anon.matchers[0].name == "__name__"
    assert parse("quickbid:http_requests:rate1m").name == "quickbid:http_requests:rate1m"
    assert parse("x{}") == VectorSelector("x")


def test_keywords_are_not_metric_names_but_are_label_names():
    for kw in ("by", "without", "on", "ignoring", "bool", "offset", "and", "or", "unless", "sum"):
        with pytest.raises(PromQLSyntaxError):
            parse(kw)
    node = parse('x{by="1", on="2", offset="3", sum="4"}')
    assert [m.name for m in node.matchers] == ["by", "on", "offset", "sum"]
    assert parse("sum by (on, bool, and) (x)").grouping == ("on", "bool", "and")
    assert parse("andy or orx").lhs.name == "andy"
    assert parse("offset_seconds").name == "offset_seconds"


def test_binary_modifiers():
    node = parse("a > bool on(job, instance) b")
    assert node.bool and node.matching.on and node.matching.labels == ("job", "instance")
    node = parse("a / ignoring(code) group_left(team) b")
    assert not node.matching.on and node.matching.card == MANY_TO_ONE and node.matching.include == ("team",)
    assert parse("a * on(x) group_right b").matching.card == ONE_TO_MANY
    assert parse("a and on(x) b").matching.card == MANY_TO_MANY
    assert parse("a + 1").matching is None


@pytest.mark.parametrize("text, value", [
    ('"plain"', "plain"), ('"a\\nb\\tc"', "a\nb\tc"), ("'it\\'s'", "it's"), ('"q\\"q"', 'q"q'),
    ("`raw\\n`", "raw\\n"), ('"\\u00e9\\U0001F600"', "\u00e9\U0001F600"), ('"\\x41\\101"', "AA"),
    ('"\\\\"', "\\"), ('"caf\u00e9"', "caf\u00e9"), ("'double \" inside'", 'double " inside'),
])
def test_strings_with_escapes(text, value):
    assert parse(text) == StringLiteral(value)


@pytest.mark.parametrize("text, value", [
    ("42", 42.0), ("1.5", 1.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("2.5E-3", 0.0025),
    ("0x1F", 31.0), ("010", 8.0), ("08", 8.0), ("Inf", math.inf), ("-inf", -math.inf),
])
def test_numbers(text, value):
    assert parse(text) == NumberLiteral(value)


def test_nan_literal_and_comments():
    assert math.isnan(parse("NaN").value)
    assert parse("# leading comment\nx # trailing\n  + y") == parse("x + y")


# (text, 1-based column, message fragment); columns agree with Prometheus 2.42's where it reports them.
ERRORS = [
    ("", 1, "unexpected end of input"),
    ("b and", 6, "unexpected end of input"),
    ("rate(b)", 6, 'expected type range vector in call to function "rate", got instant vector'),
    ("1 > 2", 3, "comparisons between scalars must use BOOL modifier"),
    ("-b[5m]", 1, "unary expression only allowed"),
    ("sum(b) by (x) by (y)", 15, "unexpected <by>"),
    ('{a=""}', 1, "at least one non-empty matcher"),
    ('b{__name__="b"}', 1, "metric name must not be set twice"),
    ('x + "a\\qb"', 5, "unknown escape sequence"),
    ("rate(b[5m],)", 11, "trailing commas not allowed"),
    ("round(b, 1, 2)", 1, 'expected at most 2 argument(s) in call to "round", got 3'),
    ("histogram_quantile(x)", 1, 'expected 2 argument(s) in call to "histogram_quantile", got 1'),
    ("foo(b)", 1, 'unknown function with name "foo"'),
    ("b offset 1m offset 1m", 1, "offset may not be set multiple times"),
    ("b offset 1m [5m]", 13, "no offset modifiers allowed before range"),
    ("(b)[5m]", 4, "ranges only allowed for vector selectors"),
    ("x[30m1h]", 3, 'not a valid duration string: "30m1h"'),
    ("x[0s]", 3, "duration must be greater than 0"),
    ("1 offset 1m", 1, "offset modifier must be preceded by"),
    ("b + on(x) group_left(x) b", 3, 'label "x" must not occur in ON and GROUP clause'),
    ("1 + on(x) b", 1, "vector matching only allowed between instant vectors"),
    ("b and 1", 1, 'set operator "and" not allowed in binary scalar expression'),
    ("b + bool b", 3, "bool modifier can only be used on comparison operators"),
    ("sum(1, b)", 1, "wrong number of arguments for aggregate expression provided, expected 1, got 2"),
    ("quantile(b)", 1, "expected 2, got 1"),
    ('b{x:y="1"}', 4, "unexpected character inside braces: ':'"),
    ("sum by (x:y) (b)", 9, 'unexpected metric identifier "x:y" in grouping opts'),
    ("1e400", 1, "value out of range"),
    ("x[5m:1m]", 5, "subqueries are not supported"),
    ("x @ 100", 3, "the @ modifier is not supported"),
    ("x[5]", 3, 'unexpected number "5"'),
    ('x{a=~"("}', 6, "invalid regular expression"),
    ("sum(x) + ", 10, "unexpected end of input"),
    ("x + $", 5, "unexpected character '$'"),
    ("quantile(x, 0.5)", 13, "expected type instant vector in aggregation expression, got scalar"),
    ("quantile(x, y)", 10, "expected type scalar in aggregation parameter, got instant vector"),
    ("sum(x[5m])", 5, "expected type instant vector in aggregation expression, got range vector"),
    ("x + y[5m]", 5, "binary expression must contain only scalar and instant vector types"),
    ("x > y[5m]", 5, "binary expression must contain only scalar and instant vector types"),
    ("sum(x) by (a) (y)", 15, 'unexpected "("'),
    ("a * on(x) group_left (b)", 25, "unexpected end of input"),
    ("x\n  + )", 7, 'unexpected ")"'),
]


@pytest.mark.parametrize("text, col, message", ERRORS)
def test_errors_point_at_the_column(text, col, message):
    with pytest.raises(PromQLSyntaxError) as info:
        parse(text)
    assert info.value.col == col, str(info.value)
    assert message in info.value.message
    assert str(info.value) == f"col {col}: {info.value.message}"


def test_error_line_and_column_in_multiline_text():
    with pytest.raises(PromQLSyntaxError) as info:
        parse("sum(\n  rate(x)\n)")
    assert (info.value.line, info.value.line_col) == (2, 8)


ROUND_TRIP = [
    'sum by (job) (rate(http_requests_total{status=~"5..", job!="x"}[5m] offset 1h)) / on(job) '
    "sum by (job) (rate(http_requests_total[5m])) > bool 0.05",
    'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))',
    "-(a + b) ^ -2 % 3 or c unless on() d and ignoring(x) e",
    "a * on(x) group_left(y, z) b + c / ignoring(q) group_right() d",
    'absent(up{job="api"}) == 1',
    '{__name__="by"} + {__name__="weird name", a="b\\n\\"c\\\\"}',
    "quantile without (instance) (0.99, x) offset 5m" if False else "quantile without (instance) (0.99, x offset 5m)",
    "round(x, 0.1) + clamp(y, -Inf, 1e300) + time() - vector(2)",
    "x offset -1m30s",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_through_text(text):
    tree = parse(text)
    assert parse(to_promql(tree)) == tree


# --- fuzzing -------------------------------------------------------------------

VALID = [
    'sum by (job) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.05',
    'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5',
    "avg_over_time(system_cpu_percent[5m]) > 80 and on() absent(x) == 0",
    "max without (core) (system_cpu_core_percent offset 1m) - -3 ^ 2 ^ 0.5",
    "a * on(x) group_left(y) b or c unless d",
    'quantile_over_time(0.75, rum_page_load_seconds{page!="/"}[1h30m]) >= bool 2',
]

PIECES = ["(", ")", "[", "]", "{", "}", ",", "=", "=~", "!=", "!~", '"', "'", "`", " by ", " on ",
          " offset ", " bool ", " and ", " or ", " unless ", "5m", "1h", "0x", "e", ".", "-", "+", "*",
          "/", "%", "^", ">", "<=", "==", "sum", "rate", "x", "#", "\n", "\\", ":", "@", "\u00e9", "ſum", "\x00"]


def _parse_or_syntax_error(text: str) -> None:
    try:
        node = parse(text)
    except PromQLSyntaxError as exc:
        assert 1 <= exc.col <= len(text) + 1, (text, exc.col)
        return
    assert node.type in (SCALAR, VECTOR, MATRIX, "string")
    assert parse(to_promql(node)) == node or _has_nan(node)


def _has_nan(node) -> bool:
    return "NaN" in to_promql(node)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_random_text(text):
    _parse_or_syntax_error(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25))
def test_fuzz_token_soup(pieces):
    _parse_or_syntax_error("".join(pieces))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 3),
                                                   st.sampled_from(PIECES)), max_size=4))
def test_fuzz_mutations_of_valid_expressions(text, edits):
    for pos, kind, piece in edits:
        pos %= len(text) + 1
        if kind == 0:
            text = text[:pos] + piece + text[pos:]
        elif kind == 1:
            text = text[:pos] + text[pos + 1:]
        elif kind == 2:
            text = text[:pos] + piece + text[pos + 1:]
        else:
            text = text[:pos] + text[pos:pos + 5] * 2 + text[pos + 5:]
    _parse_or_syntax_error(text)


def test_deep_nesting_is_a_syntax_error_not_a_crash():
    assert shape(parse("(" * 100 + "x" + ")" * 100)) == "x"
    for text in ("(" * 5000 + "x" + ")" * 5000, "-" * 3000 + "x", "x" + " + x" * 3000):
        with pytest.raises(PromQLSyntaxError, match="nested too deeply"):
            parse(text)
    assert parse("-" * 3000 + "1") == NumberLiteral(1.0)


def test_parse_is_cached_and_rejects_non_text():
    assert parse("a + b") is parse("a + b")
    with pytest.raises(PromQLSyntaxError):
        parse(None)  # type: ignore[arg-type]
