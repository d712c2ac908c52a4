"""The `optimizations` section: every problem reported as file:line:col, the defaults parse."""

from __future__ import annotations

import textwrap

import pytest

from qbconsole.actions.schema import ACTION_KINDS, parse_rule, parse_rules
from qbconsole.config import DEFAULT_RULES, NOT_USED_YET, ConfigError, check_file, load_config, parse_config


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "rules.yaml", env={})
    return [str(d) for d in caught.value.diagnostics]


def test_optimizations_are_used_and_the_defaults_are_the_source_designs():
    assert "optimizations" not in NOT_USED_YET
    config, errs, notices = check_file(DEFAULT_RULES, env={})
    assert errs == [] and not any("optimizations" in n for n in notices)
    rules = {r.name: r for r in parse_rules(config.optimizations)}
    idx, cache, weights = rules["add_missing_indexes"], rules["grow_cache"], rules["balance_backends"]
    assert (idx.kind, idx.expr) == ("missing_indexes", "quickbid:db_query_duration_seconds:avg5m > 0.1")
    assert (cache.kind, cache.expr) == ("cache_resize", "quickbid:cache_hit:ratio5m < 0.8")
    assert (weights.kind, weights.expr) == ("weights", "quickbid:backend_load:variance_percent1m > 30")
    scale = rules["scale_up"]
    assert scale.params["workers"].text == "max(quickbid_workers) + 2" and scale.params["workers"].type == "int"
    assert (scale.bounds["workers"].min, scale.bounds["workers"].max, scale.bounds["workers"].clamp) == (1, 20, True)
    assert rules["emergency_rollback"].kind == "command" and rules["emergency_rollback"].alerts == ("HighErrorRate",)
    assert all(r.verify is not None and r.cooldown_ms > 0 and r.expiry_ms > 0 for r in rules.values())
    assert "url" not in scale.action  # from $QUICKBID_URL, never a literal in the shipped file


def test_problems_point_at_their_own_line_and_column():
    found = errors("""
        alert_rules:
          - {alert: HighCPU, expr: cpu > 80}
        optimizations:
          - name: scale_up
            alert: HighCPU
            action: {kind: scale, workers: "quickbid_workers +"}
            priorty: high
            verify: {expr: latency, better: lowr}
          - name: cmd
            expr: up == 0
            for: soon
            action:
              kind: command
              argv: ["{prog}", "{nope}"]
              params: {prog: "{{ $labels.job }}"}
              timeout: 0s
          - name: cmd
            expr: up ==
            action: {kind: teleport}
    """)
    assert found == [
        "rules.yaml:7:55: bad expression: unexpected end of input",
        "rules.yaml:8:5: unknown key 'priorty'; did you mean 'priority'?",
        "rules.yaml:9:37: expected one of lower, higher, got 'lowr'",
        "rules.yaml:12:10: invalid duration 'soon': use e.g. 30s, 5m, 1h",
        "rules.yaml:15:13: {nope} is not a parameter of this action (parameters: prog)",
        "rules.yaml:15:14: the program (argv[0]) must be written out, not a parameter",
        "rules.yaml:17:16: must be positive",
        "rules.yaml:18:11: duplicate optimization rule name 'cmd' (first at line 10)",
        "rules.yaml:19:16: bad expression: unexpected end of input",
        "rules.yaml:20:20: action kind must be one of " + ", ".join(ACTION_KINDS) + ", got 'teleport'",
    ]


def test_bounds_params_and_shapes_are_checked():
    found = errors("""
        optimizations:
          - name: a
            expr: x > 1
            action:
              kind: sql
              dsn: sqlite:///x.db
              statement: "DELETE FROM t WHERE id = {id}"
              params: {id: {template: "{{ $labels.id }}", type: text, pattern: "["}}
            bounds: {size: {min: 5, max: 1}}
          - name: b
            expr: x > 1
            action: {kind: scale, workers: 4}
            bounds: {workers: {min: 5, max: 1}, size: {max: 2}}
          - name: c
            action: {kind: command, argv: [], env: [1]}
          - name: d
            expr: x > 1
            action: {kind: cache_resize, token_env: "not a name"}
    """)
    text = "\n".join(found)
    assert "rules.yaml:8:18: SQL statements take parameters as ? bound from 'args', never as {name}" in text
    assert "rules.yaml:9:57: expected one of int, number, string, got 'text'" in text
    assert "rules.yaml:10:20: min 5 is above max 1" in text
    assert "rules.yaml:14:23: min 5 is above max 1" in text
    assert "rules.yaml:14:41: no parameter 'size' to bound" in text
    assert "rules.yaml:19:45: token_env must be an environment variable name, got 'not a name'" in text
    assert "rules.yaml:15:5: a rule needs 'expr' (a condition), 'alert' (alert names), or both" in text
    assert "rules.yaml:16:35: expected a non-empty list of strings" in text
    assert "rules.yaml:16:44: expected a list of environment variable names" in text


def test_an_alert_not_defined_in_the_file_is_a_notice_with_a_hint(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""
        alert_rules:
          - {alert: WorkersSaturated, expr: busy > 0}
        optimizations:
          - {name: s, alert: [WorkerSaturated], action: {kind: scale}}
    """))
    config = load_config(path, env={})
    assert config.notices == (f"{path}:5:23: alert 'WorkerSaturated' is not an alert rule of this file; "
                              "did you mean 'WorkersSaturated'? (the rule proposes only while an alert of that "
                              "name is firing)",)


def test_parameter_forms():
    rule = parse_rule({"name": "r", "expr": "x > 1", "action": {
        "kind": "command", "argv": ["prog", "{a}", "{b}", "{c}", "{d}"],
        "params": {"a": 3, "b": "x * 2", "c": "{{ $labels.job }}", "d": {"expr": "x", "type": "int"}}}})
    assert {n: (p.source, p.type) for n, p in rule.params.items()} == {
        "a": ("value", "int"), "b": ("expr", "number"), "c": ("template", "string"), "d": ("expr", "int")}
    assert rule.timeout_s == 30.0 and rule.cooldown_ms == 600_000 and rule.expiry_ms == 900_000
