"""rules.yaml loading and validation: defaults, durations, ${ENV}, and precise diagnostics."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from qbconsole.config import (DEFAULT_RULES, Config, ConfigError, Diagnostic, check_file,
                              format_duration, load_config, parse_config, parse_duration)

REPO_RULES = Path(__file__).resolve().parents[1] / "rules.yaml"
SECRET = "hunter2-s3cr3t"
ENV = {"SLACK_WEBHOOK_URL": f"https://hooks.example/{SECRET}", "TOKEN": SECRET,
       "IVAL": "30", "EMPTY": ""}


def errors_of(text: str, env: dict[str, str] | None = None) -> list[Diagnostic]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "rules.yaml", env=ENV if env is None else env)
    return caught.value.diagnostics


def parse(text: str, env: dict[str, str] | None = None) -> Config:
    return parse_config(textwrap.dedent(text), "rules.yaml", env=ENV if env is None else env)


# -- the default file ---------------------------------------------------------


def test_default_rules_load_cleanly():
    config, errors, notices = check_file(DEFAULT_RULES, env={})
    assert errors == []
    assert config is not None
    assert [(s.name, s.kind, s.interval) for s in config.sources] == [("system", "system", 5.0)]
    assert all("is accepted but not used yet" in n for n in notices)


def test_repository_rules_yaml_is_the_packaged_default():
    assert REPO_RULES.read_bytes() == DEFAULT_RULES.read_bytes()


def test_default_slos_carry_the_source_design_targets():
    slos = {s["name"]: s for s in load_config(DEFAULT_RULES, env={}).slos}
    assert (slos["cpu"]["op"], slos["cpu"]["target"], slos["cpu"]["unit"]) == ("<", 70, "percent")
    assert slos["cpu"]["expr"] == "avg_over_time(system_cpu_percent[W])"
    assert (slos["memory"]["op"], slos["memory"]["target"]) == ("<", 80)
    assert slos["memory"]["expr"] == "avg_over_time(system_memory_percent[W])"
    expected = {"db_query_time": ("<", 0.1), "api_p95": ("<", 0.5), "cache_hit_rate": (">", 0.9),
                "availability": (">", 0.999), "page_load": ("<", 2), "interaction": ("<", 0.5),
                "error_rate": ("<", 0.01), "throughput": (">=", 1000),
                "concurrent_users": (">=", 5000)}
    for name, (op, target) in expected.items():
        assert (slos[name]["op"], slos[name]["target"]) == (op, target), name
        assert "[W]" in slos[name]["expr"]
    assert slos["throughput"]["kind"] == "capacity"


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "settings:\n"])
def test_empty_file_is_the_default_config(text):
    config = parse(text)
    assert config.settings.raw_retention == 7 * 86400
    assert config.settings.rollup_retention == 90 * 86400
    assert config.settings.evaluation_interval == 15
    assert config.settings.refresh == 1
    assert [(s.name, s.kind, s.interval, s.timeout, s.jitter) for s in config.sources] == [
        ("system", "system", 5.0, 5.0, 0.1)]
    assert config.notices == ()


# -- durations ----------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("1w", 604800), ("1h30m", 5400),
    ("500ms", 0.5), ("1m30s500ms", 90.5), ("0s", 0), ("90", 90), ("2.5", 2.5), (15, 15),
    (0.25, 0.25), ("1y", 365 * 86400),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "s", "1.5h", "30m1h", "1h1h", "-5s", "5 m", "inf",
                                  True, None, "1e999"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_duration_round_trips(ms):
    assert parse_duration(format_duration(ms / 1000)) == pytest.approx(ms / 1000)


def test_durations_in_settings_and_sources():
    config = parse("""
        settings: {raw_retention: 2d, rollup_retention: 30d, evaluation_interval: 1m, refresh: 500ms}
        sources:
          - {name: web, kind: http, url: "http://127.0.0.1:8000/health", interval: 1h30m, timeout: 20}
    """)
    assert config.settings.raw_retention == 2 * 86400
    assert config.settings.evaluation_interval == 60
    assert config.settings.refresh == 0.5
    assert (config.sources[0].interval, config.sources[0].timeout) == (5400, 20)


# -- sources ------------------------------------------------------------------


def test_source_defaults_by_kind():
    config = parse("""
        sources:
          - kind: system
          - {name: api, kind: http, url: "http://127.0.0.1:8000/"}
          - {name: fast, kind: prometheus, url: "http://127.0.0.1:9090/metrics", interval: 2s}
          - {name: db, kind: sql, dsn: "sqlite:///x.db", query: "select 1", jitter: 0}
    """)
    got = {s.name: (s.kind, s.interval, s.timeout, s.jitter) for s in config.sources}
    assert got == {"system": ("system", 5, 5, 0.1), "api": ("http", 10, 10, 0.1),
                   "fast": ("prometheus", 2, 2, 0.1), "db": ("sql", 10, 10, 0.0)}
    assert config.source("api").options == {"url": "http://127.0.0.1:8000/"}
    assert config.source("db").options == {"dsn": "sqlite:///x.db", "query": "select 1"}
    assert config.source("api").line == 4


def test_empty_sources_list_means_no_sources():
    assert parse("sources: []\n").sources == []


def test_long_interval_caps_default_timeout_at_ten_seconds():
    source = parse("sources: [{kind: system, interval: 1m}]\n").sources[0]
    assert (source.interval, source.timeout) == (60, 10)


# -- environment --------------------------------------------------------------


def test_env_substitution_with_defaults():
    config = parse("""
        sources:
          - name: api
            kind: http
            url: "${BASE:-http://127.0.0.1:8000}/health"
            headers: {Authorization: "Bearer ${TOKEN}"}
            interval: ${IVAL}
            body: "cost $${NOT_A_VAR} and ${EMPTY:-fallback}"
    """)
    options = config.source("api").options
    assert options["url"] == "http://127.0.0.1:8000/health"
    assert options["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert options["body"] == "cost ${NOT_A_VAR} and fallback"
    assert config.source("api").interval == 30  # unquoted ${IVAL} is read as the number 30


def test_substituted_text_stays_text_where_a_string_is_expected():
    config = parse("""
        sources:
          - kind: http
            url: http://127.0.0.1:1/
            body: ${PIN}
        experiments:
          - name: e
            variants: [a, b]
            seed: ${PIN}
            metrics: {on: purchase}
    """, env={"PIN": "007"})
    assert config.source("http").options["body"] == "007"
    assert config.experiments[0]["seed"] == "007"
    assert config.experiments[0]["metrics"] == {"on": "purchase"}  # keys stay text too


def test_substituted_values_never_show_in_reprs():
    config = parse("""
        channels:
          - {name: slack, kind: slack, url: "${SLACK_WEBHOOK_URL}"}
    """)
    assert config.channels[0]["url"] == ENV["SLACK_WEBHOOK_URL"]
    assert SECRET not in repr(config)
    assert "${SLACK_WEBHOOK_URL}" in repr(config)


def test_missing_env_var_is_reported_at_its_reference():
    [error] = errors_of("""
        channels:
          - name: slack
            url: "https://hooks/${SLACK_WEBHOOK_URL}"
    """, env={})
    assert (error.line, error.col) == (4, 25)
    assert error.message == "environment variable SLACK_WEBHOOK_URL is not set"


@pytest.mark.parametrize("text", [
    "sources: [{kind: system, interval: '${TOKEN}'}]",
    "sources: [{kind: system, jitter: '${TOKEN}'}]",
    "sources: [{kind: http, url: '${TOKEN}'}]",
    "sources: [{kind: http, url: 'http://x/', method: '${TOKEN}'}]",
    "sources: [{kind: '${TOKEN}'}]",
    "sources: [{kind: system, name: '${SLACK_WEBHOOK_URL}'}]",
    "alert_rules: [{alert: a, expr: x, severity: '${TOKEN}'}]",
    "alert_rules: [{alert: a, expr: x, for: '${TOKEN}'}]",
    "recording_rules: [{record: '${TOKEN}', expr: x}]",
    "slos: [{name: a, expr: '${TOKEN}', op: '<', target: 1}]",
    "slos: [{name: a, expr: 'x[W]', op: '<', target: '${TOKEN}'}]",
    "settings: '${TOKEN}'",
    "groups: [{name: g, rules: '${TOKEN}'}]",
])
def test_errors_never_contain_secret_values(text):
    errors = errors_of(text)
    assert errors
    for error in errors:
        assert SECRET not in str(error)


def test_a_bad_substituted_value_is_shown_as_its_template():
    [error] = errors_of("sources: [{kind: system, interval: 'every ${TOKEN}'}]")
    assert "invalid duration 'every ${TOKEN}' (after substitution)" in error.message


# -- malformed files: exact position and message --------------------------------

MALFORMED = [
    pytest.param("sources: [1, 2\n", 2, 1, "YAML syntax error: expected ',' or ']'", id="yaml-syntax"),
    pytest.param("sources:\n\t- kind: system\n", 2, 1, "indent with spaces, not tabs", id="tab-indent"),
    pytest.param("a: b: c\n", 1, 5, "mapping values are not allowed here", id="yaml-mapping-value"),
    pytest.param("settings: {a: 1}\n---\nb: 2\n", 2, 1, "expected a single document", id="two-documents"),
    pytest.param("settings: *nowhere\n", 1, 11, "found undefined alias 'nowhere'", id="undefined-alias"),
    pytest.param("- kind: system\n", 1, 1, "expected a mapping of sections at the top level", id="top-level-list"),
    pytest.param("just a string\n", 1, 1, "got string 'just a string'", id="top-level-scalar"),
    pytest.param("settings: {}\nsorces: []\n", 2, 1, "unknown key 'sorces' at the top level; did you mean 'sources'?",
                 id="unknown-top-level-key"),
    pytest.param("sources:\n  - kind: system\n    intervall: 5s\n", 3, 5,
                 "unknown key 'intervall' in system source; did you mean 'interval'?", id="unknown-source-key"),
    pytest.param("settings:\n  refersh: 2s\n", 2, 3, "unknown key 'refersh' in settings; did you mean 'refresh'?",
                 id="unknown-settings-key"),
    pytest.param("sources:\n  - kind: system\n    interval: 5x\n", 3, 15, "interval: invalid duration '5x'",
                 id="bad-duration"),
    pytest.param("settings:\n  raw_retention: 1.5d\n", 2, 18, "invalid duration '1.5d'", id="bad-duration-fraction"),
    pytest.param("sources:\n  - kind: system\n    interval: -5\n", 3, 15, "interval: must be positive, got -5",
                 id="negative-interval"),
    pytest.param("sources:\n  - kind: system\n    interval: 10s\n    timeout: 15s\n", 4, 14,
                 "timeout (15s) must not exceed interval (10s)", id="timeout-over-interval"),
    pytest.param("sources:\n  - kind: system\n    timeout: 8s\n", 3, 14,
                 "must not exceed interval (5s, the default)", id="timeout-over-default-interval"),
    pytest.param("sources:\n  - kind: htp\n    url: http://x/\n", 2, 11,
                 "unknown source kind 'htp'; did you mean 'http'?", id="bad-kind"),
    pytest.param("sources:\n  - name: a\n    interval: 5s\n", 2, 5, "missing required key 'kind' in source",
                 id="missing-kind"),
    pytest.param("sources:\n  - name: web\n    kind: http\n", 2, 5, "missing required key 'url' in http source",
                 id="missing-url"),
    pytest.param("sources:\n  - kind: system\n    jitter: lots\n", 3, 13, "jitter: expected a number, got string 'lots'",
                 id="jitter-type"),
    pytest.param("sources:\n  - kind: system\n    jitter: 3\n", 3, 13, "must be between 0 and 1", id="jitter-range"),
    pytest.param("sources:\n  - kind: system\n    interval: [5]\n", 3, 15, "interval: expected a duration, got list",
                 id="duration-list"),
    pytest.param("sources:\n  - kind: system\n    interval: true\n", 3, 15, "expected a duration, got boolean",
                 id="duration-bool"),
    pytest.param("sources:\n  - kind: system\n    name: 12\n", 3, 11, "name: expected a string, got integer 12",
                 id="name-type"),
    pytest.param("sources: system\n", 1, 10, "expected a list of sources, got string 'system'", id="sources-not-list"),
    pytest.param("sources:\n  - system\n", 2, 5, "expected a mapping for source, got string 'system'",
                 id="source-not-mapping"),
    pytest.param("sources:\n  - kind: system\n  - kind: system\n", 3, 5, "duplicate source name 'system'",
                 id="duplicate-source-name"),
    pytest.param("sources:\n  - kind: http\n    url: ftp://x/\n", 3, 10, "expected an http:// or https:// URL",
                 id="bad-url"),
    pytest.param("alert_rules:\n  - alert: HighCPU\n    for: 5m\n", 2, 5, "missing required key 'expr' in alert rule",
                 id="missing-expr"),
    pytest.param("alert_rules:\n  - expr: up == 0\n", 2, 5, "missing required key 'alert' (or 'name')",
                 id="missing-alert-name"),
    pytest.param("alert_rules:\n  - alert: A\n    name: B\n    expr: x\n", 3, 5, "use either 'alert' or 'name'",
                 id="alert-and-name"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    expr: y\n", 4, 5,
                 "duplicate key 'expr' (first at line 3, column 5)", id="duplicate-key"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    for: soon\n", 4, 10, "for: invalid duration 'soon'",
                 id="bad-for"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: ''\n", 3, 11, "expr: must not be empty", id="empty-expr"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    severity: critcal\n", 4, 15,
                 "unknown severity 'critcal'; did you mean 'critical'?", id="bad-severity"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    labels:\n      team: 1\n", 5, 13,
                 "labels 'team': expected a string, got integer 1", id="label-value-type"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    annotations:\n      run-book: x\n", 5, 7,
                 "invalid name 'run-book' in annotations", id="bad-annotation-name"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    keep_firing: 5m\n", 4, 5,
                 "did you mean 'keep_firing_for'?", id="unknown-alert-key"),
    pytest.param("alert_rules:\n  - alert: A\n    expr: x\n    no_data: alert\n", 4, 14,
                 "unknown no_data policy 'alert'; did you mean 'alerting'?", id="bad-no-data"),
    pytest.param("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        no_data: ok\n", 6, 9,
                 "unknown key 'no_data' in alerting rule", id="group-rules-are-prometheus"),
    pytest.param("recording_rules:\n  - record: a b\n    expr: x\n", 2, 13, "record: invalid metric name 'a b'",
                 id="bad-record-name"),
    pytest.param("recording_rules:\n  - record: a\n    expr: x\n    for: 1m\n", 4, 5,
                 "unknown key 'for' in recording rule", id="for-on-recording-rule"),
    pytest.param("groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: x\n", 4, 9,
                 "either 'record' or 'alert', not both", id="group-rule-both"),
    pytest.param("groups:\n  - name: g\n    interval: 0s\n    rules: []\n", 3, 15, "interval: must be positive",
                 id="group-interval"),
    pytest.param("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n", 4, 11,
                 "duplicate group name 'g' (first at line 2)", id="duplicate-group"),
    pytest.param("groups:\n  - rules: []\n", 2, 5, "missing required key 'name' in rule group", id="group-name"),
    pytest.param("slos:\n  - name: cpu\n    expr: avg(system_cpu_percent)\n    op: '<'\n    target: 70\n", 3, 11,
                 "must contain the window placeholder [W]", id="slo-no-window"),
    pytest.param("slos:\n  - name: cpu\n    expr: x[W]\n    op: '<'\n    target: seventy\n", 5, 13,
                 "target: expected a number, got string 'seventy'", id="slo-target-type"),
    pytest.param("slos:\n  - name: cpu\n    expr: x[W]\n    op: '=='\n    target: 1\n", 4, 9,
                 "unknown comparison '=='", id="slo-op"),
    pytest.param("slos:\n  - {name: a, expr: 'x[W]', op: '<', target: 1}\n"
                 "  - {name: b, kind: capacity, expr: 'y[W]', op: '>=', target: 2, requires: [aa]}\n", 3, 77,
                 "unknown SLO 'aa' in requires; did you mean 'a'?", id="slo-requires"),
    pytest.param("slos:\n  - {name: a, expr: 'x[W]', op: '<', target: 1, requires: []}\n", 2, 49,
                 "'requires' applies to kind: capacity only", id="slo-requires-objective"),
    pytest.param("channels: {slack: {}}\n", 1, 11, "expected a list of channels, got mapping", id="channels-type"),
    pytest.param("settings:\n  raw_retention: 30d\n  rollup_retention: 7d\n", 3, 21,
                 "rollup_retention must be at least raw_retention", id="rollup-shorter"),
    pytest.param("settings:\n  refresh: \"${REFRESH\"\n", 2, 13, "unterminated '${'", id="unterminated-env"),
    pytest.param("settings:\n  refresh: '${1X}'\n", 2, 13, "malformed environment reference '${1X}'",
                 id="malformed-env"),
    pytest.param("settings:\n  refresh: ${NOPE}\n", 2, 12, "environment variable NOPE is not set", id="missing-env"),
    pytest.param("settings:\n  refresh: !secret abc\n", 2, 12, "expected a duration, got value tagged !secret",
                 id="unknown-tag"),
    pytest.param("settings:\n  refresh: \x07\n", 2, 12, "unacceptable character #x0007", id="control-char"),
    pytest.param("settings:\n  <<: [1]\n  refresh: 1s\n", 2, 8, "'<<' needs a mapping or a list of mappings",
                 id="bad-merge"),
    pytest.param("settings: {refresh: 1s}\n? [a, b]\n: 1\n", 2, 3, "expected a section name, got list",
                 id="complex-key"),
]


@pytest.mark.parametrize("text, line, col, fragment", MALFORMED)
def test_malformed_config_reports_position(text, line, col, fragment):
    errors = errors_of(text)
    assert [(e.line, e.col) for e in errors if fragment in e.message] == [(line, col)], errors
    assert str(errors[0]).startswith("rules.yaml:")
    assert all(1 <= e.line <= text.count("\n") + 1 for e in errors)


def test_every_problem_is_collected_in_file_order():
    errors = errors_of("""
        settings:
          refresh: never
        sources:
          - kind: system
            intervall: 5s
          - kind: ftp
        alert_rules:
          - alert: A
    """)
    assert [(e.line, e.col) for e in errors] == [(3, 12), (6, 5), (7, 11), (9, 5)]
    assert "did you mean 'interval'" in errors[1].message


def test_config_error_str_is_one_diagnostic_per_line():
    with pytest.raises(ConfigError) as caught:
        parse_config("settings: {refresh: x}\nfoo: 1\n", "r.yaml", env={})
    assert str(caught.value).splitlines() == [
        "r.yaml:1:21: refresh: invalid duration 'x': use e.g. 30s, 5m, 1h30m, 500ms, 1d or a number of seconds",
        "r.yaml:2:1: unknown key 'foo' at the top level",
    ]


# -- YAML features ------------------------------------------------------------


def test_anchors_and_merge_keys():
    config = parse("""
        settings: {refresh: 2s}
        sources:
          - &base {kind: http, url: "http://127.0.0.1:1/", interval: 30s}
          - <<: *base
            name: other
            interval: 1m
    """)
    assert [(s.name, s.interval) for s in config.sources] == [("http", 30), ("other", 60)]


def test_x_keys_hold_shared_anchors():
    config = parse("""
        x-team: &team {team: launch, service: quickbid}
        alert_rules:
          - alert: Down
            expr: probe_success == 0
            labels: {<<: *team, page: "yes"}
    """)
    assert config.alert_rules[0]["labels"] == {"team": "launch", "service": "quickbid", "page": "yes"}


def test_recursive_alias_is_an_error():
    [error] = errors_of("channels:\n  - &x {a: [*x]}\n")
    assert (error.line, error.col, error.message) == (2, 5, "recursive alias")


def test_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    text = "channels:\n  - " + "\n".join("    " + line for line in lines).lstrip() + "\n"
    errors = errors_of(text)
    assert any("too much data" in error.message for error in errors), errors


# -- files --------------------------------------------------------------------


def test_check_file_reports_unreadable_and_bad_files(tmp_path):
    missing = tmp_path / "nope.yaml"
    config, errors, notices = check_file(missing)
    assert config is None and errors[0].message.startswith("cannot read file")
    assert str(errors[0]).startswith(f"{missing}:1:1: ")

    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"settings:\n  refresh: \xff\n")
    config, errors, _ = check_file(binary)
    assert config is None and [(e.line, e.col) for e in errors] == [(2, 12)]
    assert "not valid UTF-8" in errors[0].message


def test_alert_rule_extensions_are_kept():
    [rule] = parse("""
        alert_rules:
          - name: HighCPU
            expr: avg_over_time(system_cpu_percent[5m]) > 90
            keep_firing_while: avg_over_time(system_cpu_percent[5m]) > 80
            no_data: keep_state
            severity: warning
            for: 5m
    """).alert_rules
    assert rule["keep_firing_while"].endswith("> 80") and rule["no_data"] == "keep_state"


def test_load_config_reads_a_file_and_keeps_notices(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("alert_rules:\n  - alert: Down\n    expr: probe_success == 0\n    for: 1m\n")
    config = load_config(path, env={})
    assert config.file == str(path)
    assert config.alert_rules == [{"alert": "Down", "expr": "probe_success == 0", "for": "1m"}]
    assert config.notices == ()  # every section is in use now: no "not used yet" notice
    path.write_text("alert_rules: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.diagnostics == [
        Diagnostic(str(path), 1, 14, "expected a list of alert rules, got integer 3")]


def test_env_defaults_to_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("QB_TEST_URL", "http://127.0.0.1:9/")
    path = tmp_path / "rules.yaml"
    path.write_text("sources: [{kind: http, url: '${QB_TEST_URL}'}]\n")
    assert load_config(path).sources[0].options["url"] == "http://127.0.0.1:9/"
