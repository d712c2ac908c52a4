"""Expressions in rules.yaml are parsed when the file loads; errors point into the file."""

import pytest

from qbconsole.config import ConfigError, parse_config


@pytest.mark.parametrize("text,line,col,fragment", [
    ("alert_rules:\n  - alert: A\n    expr: rate(x[5m) > 1\n", 3, 20, 'unexpected ")"'),
    ('alert_rules:\n  - alert: B\n    expr: "sum by (a (x)"\n', 3, 22, 'unexpected "("'),
    ("recording_rules:\n  - record: r\n    expr: x +\n", 3, 14, "unexpected end of input"),
    ("alert_rules:\n  - alert: C\n    expr: |\n      sum(x)\n        > bool nosuchfn(x)\n", 5, 16, "nosuchfn"),
    ('slos:\n  - name: s\n    expr: avg_over_time(x[W]) >>\n    op: "<"\n    target: 1\n', 3, 32, 'unexpected ">"'),
    ("alert_rules:\n  - alert: D\n    expr: x > 1\n    keep_firing_while: x >\n", 4, 27, "unexpected end of input"),
    ("groups:\n  - name: g\n    rules:\n      - alert: E\n        expr: rate(x)\n", 5, 20, "range vector"),
])
def test_expression_errors_point_at_line_and_column(text, line, col, fragment):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "r.yaml")
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.col) == (line, col), str(diag)
    assert fragment in diag.message


def test_good_expressions_load():
    config = parse_config("alert_rules:\n  - alert: A\n    expr: sum by (job) (rate(x[5m])) > 1\n")
    assert config.alert_rules[0]["expr"].startswith("sum by")


@pytest.mark.parametrize("text,line,col,fragment", [
    ("channels:\n  - {name: slack, kind: slak, url: x}\n", 2, 5, "kind must be one of"),
    ("channels:\n  - name: hook\n    kind: webhook\n    url: http://127.0.0.1:9/\n    bogus: 1\n", 2, 5, "unknown key 'bogus'"),
    ("routes:\n  - {name: r, match: ['sev~~x'], channels: [email]}\n", 2, 5, "bad matcher"),
    ("routes:\n  - {name: r, channels: [pager]}\n", 2, 5, "no channel named 'pager'"),
    ("channels:\n  - {name: hook, kind: webhook, url: 'http://127.0.0.1:9/'}\n"
     "routes:\n  - {name: r, channels: [hok]}\n", 4, 5, "did you mean 'hook'"),
    ("inhibit_rules:\n  - {source_match: ['a=\"b\"'], equal: [x]}\n", 2, 5, "target_match"),
])
def test_notification_sections_are_checked_where_written(text, line, col, fragment):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "r.yaml", env={})
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.col) == (line, col), str(diag)
    assert fragment in diag.message
