"""Fuzzing rules files: never a traceback, always ``file:line:col`` inside the file.

More than 500 files per run: the shipped ``rules.yaml`` (whole, and section by
section) and small valid files covering every section, mutated character by
character, line by line, in their indentation and in the types of their
values; plus YAML documents generated from scratch and byte-level damage
(non-UTF-8) read through ``check_file``. For each: ``parse_config`` returns a
Config or raises ``ConfigError`` (nothing else), ``check_file`` never raises,
and every diagnostic names the file, a line that exists and a column within
that line (or just past its end). ``qbconsole rules check`` on a sample of the
damaged files exits 0 or 1 and prints only ``file:line:col: message`` lines.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbconsole.config import ConfigError, Diagnostic, check_file, parse_config

SHIPPED = (Path(__file__).resolve().parents[1] / "rules.yaml").read_text(encoding="utf-8")
ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.test/services/T/B/x", "SMTP_PASSWORD": "pw", "N": "30s"}
NAME = "rules.yaml"
DIAGNOSTIC_LINE = re.compile(r"^(?:notice: )?[^:\n]+:\d+:\d+: ")


def _sections(text: str) -> list[str]:
    """The shipped file cut at its top-level keys, each piece a rules file of its own."""
    pieces, current = [], []
    for line in text.splitlines(keepends=True):
        if re.match(r"[a-z_]+:", line) and current:
            pieces.append("".join(current))
            current = []
        current.append(line)
    pieces.append("".join(current))
    return [p for p in pieces if re.search(r"^[a-z_]+:", p, re.M)]


SHIPPED_SECTIONS = _sections(SHIPPED)

SMALL_VALID = [textwrap.dedent(t) for t in (
    """
    settings: {evaluation_interval: 5s, refresh: 1s, ingest_listen: "127.0.0.1:0", ingest_rate: 50}
    sources:
      - {name: system, kind: system, interval: 2s}
      - {name: api, kind: http, url: "http://127.0.0.1:8000/healthz", interval: 10s, timeout: 2s, target: api}
      - {name: shop, kind: prometheus, url: "http://127.0.0.1:8000/metrics", interval: 5s, labels: {job: shop}}
      - {name: db, kind: sql, dsn: "sqlite:///tmp/x.db", interval: 30s, metric: rows, query: "SELECT 1 AS n"}
    """,
    """
    alert_rules:
      - alert: HighCPU
        expr: system_cpu_percent > 80
        for: 2m
        keep_firing_for: 1m
        severity: warning
        labels: {team: web}
        annotations: {summary: "CPU {{ $value | humanize }} on {{ $labels.instance }}"}
    recording_rules:
      - record: job:cpu:avg5m
        expr: avg_over_time(system_cpu_percent[5m])
    """,
    """
    channels:
      - {name: slack, kind: slack, url: "${SLACK_WEBHOOK_URL}"}
      - {name: mail, kind: email, smtp_host: 127.0.0.1, smtp_port: 2525, password: "${SMTP_PASSWORD}",
         from: qb@quickbid.test, to: [oncall@quickbid.test]}
      - {name: hook, kind: webhook, url: "http://127.0.0.1:9/hook", headers: {X-A: b}}
    routes:
      - {name: all, match: ['severity="critical"'], channels: [slack, mail, hook], group_wait: 0s,
         group_by: [alertname], repeat_interval: 1h}
    inhibit_rules:
      - {source_match: ['severity="critical"'], target_match: ['severity="warning"'], equal: [alertname]}
    """,
    """
    groups:
      - name: web
        interval: 30s
        rules:
          - record: job:req:rate1m
            expr: sum(rate(http_requests_total[1m]))
          - alert: Down
            expr: probe_success == 0
            for: 1m
    slos:
      - {name: cpu, description: CPU, expr: "avg_over_time(system_cpu_percent[W])", op: "<", target: 70,
         unit: percent}
    """,
    """
    alert_rules:
      - {alert: Slow, expr: "quickbid:db_query_duration_seconds:avg5m > 0.1", for: 1m}
    optimizations:
      - name: scale_up
        description: "add workers"
        alert: Slow
        target: quickbid
        action: {kind: scale, workers: "max(quickbid_workers) + 2"}
        bounds: {workers: {min: 1, max: 20}}
        cooldown: 10m
        expiry: 10m
        settle: 3m
        verify: {expr: "quickbid:db_query_duration_seconds:avg5m", better: lower, min_change: 0.05}
    experiments:
      - {name: bid_button, description: "wording", variants: [control, treatment], metric: conversion}
    """,
    """
    x-common: &common {for: 1m, severity: warning}
    datasource: {kind: local}
    alert_rules:
      - {<<: *common, alert: A, expr: "up == 0"}
      - {<<: *common, alert: B, expr: 'rate(x_total[5m]) > $${literal}'}
    """,
)]

INSERTS = list(":-[]{},#&*!|>'\"%@` \t\n?=~$\\") + [
    "\r", "\u2028", "\x85", "\x00", "\ufeff", "é", "😀", "${", "${X}", "${SMTP_PASSWORD}", "$${", "{{", "}}",
    ": ", "- ", "  ", "\n- ", "\n  ", "<<: *common", "&a ", "*a", "!!int ", "!!python/object:os.system ",
    "0x", "1e309", "-", "---\n", "...\n", "%YAML 1.1\n", "? ", "[[[[", "}}}}",
]
VALUES = ["[]", "{}", "~", "null", "true", "no", "1e309", "-1", "0", "''", '""', "1.5", "9999999999999999999999",
          '"${UNDEFINED_VARIABLE}"', '"${SMTP_PASSWORD}"', "*nowhere", "!!binary aGk=", "[1, [2, {a: b}]]",
          "{a: [b, {c: d}]}", "2m", "-5m", "500ms", "abc", '"sum(rate(x[5m]))"', "'('", "|\n  multi\n  line",
          "2001-01-01", "0o17", ".inf", "x" * 300]

edit = st.tuples(st.integers(0, 8), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.sampled_from(INSERTS),
                 st.sampled_from(VALUES))


def mutate(text: str, edits) -> str:
    """Apply character, line, indentation and type edits in turn."""
    for kind, a, b, piece, value in edits:
        lines = text.split("\n")
        if kind == 0:    # insert characters
            pos = a % (len(text) + 1)
            text = text[:pos] + piece + text[pos:]
        elif kind == 1:  # delete a few characters
            pos = a % (len(text) + 1)
            text = text[:pos] + text[pos + 1 + b % 4:]
        elif kind == 2:  # swap two characters
            if len(text) > 1:
                i, j = a % len(text), b % len(text)
                chars = list(text)
                chars[i], chars[j] = chars[j], chars[i]
                text = "".join(chars)
        elif kind == 3:  # delete a line
            del lines[a % len(lines)]
            text = "\n".join(lines)
        elif kind == 4:  # duplicate or move a line
            line = lines.pop(a % len(lines))
            lines.insert(b % (len(lines) + 1), line)
            if b % 2:
                lines.insert(a % (len(lines) + 1), line)
            text = "\n".join(lines)
        elif kind == 5:  # swap two lines
            i, j = a % len(lines), b % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == 6:  # indentation: in, out, or a tab
            i = a % len(lines)
            lines[i] = ("\t" + lines[i]) if b % 3 == 0 else (" " * (b % 4) + lines[i]) if b % 3 == 1 \
                else lines[i][b % 3:]
            text = "\n".join(lines)
        elif kind == 7:  # change a value's type: replace what follows a "key: "
            spots = [m.end() for m in re.finditer(r": ", text)]
            if spots:
                pos = spots[a % len(spots)]
                end = text.find("\n", pos)
                end = len(text) if end < 0 else end
                text = text[:pos] + value + text[end:]
        else:            # replace a list item by another type
            spots = [m.end() for m in re.finditer(r"- ", text)]
            if spots:
                pos = spots[a % len(spots)]
                text = text[:pos] + value + text[pos:]
    return text


def check_diagnostics(text: str, diagnostics: list[Diagnostic], filename: str = NAME) -> None:
    lines = text.split("\n")  # lines as editors, grep and sed count them
    for d in diagnostics:
        assert d.file == filename, d
        assert 1 <= d.line <= len(lines), (d, len(lines))
        assert 1 <= d.col <= len(lines[d.line - 1]) + 1, (d, lines[d.line - 1])
        assert str(d).startswith(f"{filename}:{d.line}:{d.col}: ") and d.message.strip(), d


def parse_or_diagnose(text: str) -> None:
    """parse_config: a Config, or ConfigError with well-placed diagnostics; nothing else."""
    try:
        parse_config(text, NAME, env=ENV)
    except ConfigError as err:
        assert err.diagnostics, "a ConfigError without a diagnostic"
        check_diagnostics(text, err.diagnostics)
        assert all(DIAGNOSTIC_LINE.match(line) for line in str(err).splitlines()), str(err)


FAST = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(st.sampled_from(SMALL_VALID), st.lists(edit, min_size=1, max_size=4))
def test_mutated_small_files(text, edits):
    parse_or_diagnose(mutate(text, edits))


@FAST
@given(st.sampled_from(SHIPPED_SECTIONS), st.lists(edit, min_size=1, max_size=4))
def test_mutated_sections_of_the_shipped_rules(text, edits):
    parse_or_diagnose(mutate(text, edits))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=3))
def test_mutated_shipped_rules_file(edits):
    parse_or_diagnose(mutate(SHIPPED, edits))


SECTION_NAMES = ["settings", "sources", "recording_rules", "alert_rules", "groups", "channels", "routes",
                 "inhibit_rules", "optimizations", "slos", "experiments", "datasource", "x-any", "sourcse"]
KEYS = ["name", "kind", "expr", "for", "interval", "url", "alert", "record", "severity", "labels", "annotations",
        "channels", "match", "action", "bounds", "rules", "target", "op", "variants", "timeout", "to", "dsn"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["5m", "system", "x > 1", "${SMTP_PASSWORD}",
                                                           "${NOPE}", "http://127.0.0.1:1/", "(", "sum("]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)


def to_yaml(value, indent: int = 0) -> str:
    """A small YAML emitter (flow style for leaves) that also writes keys YAML would quote."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "\n" + "\n".join(f"{pad}{_key(k)}: {to_yaml(v, indent + 2)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "[]"
        return "\n" + "\n".join(f"{pad}- {to_yaml(v, indent + 2).lstrip(chr(10)).lstrip()}" for v in value)
    if value is None:
        return "~"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value).replace("inf", ".inf").replace("nan", ".nan")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.dictionaries(st.sampled_from(SECTION_NAMES), values, max_size=4))
def test_generated_documents(doc):
    text = "".join(f"{_key(k)}: {to_yaml(v, 2)}\n" for k, v in doc.items())
    parse_or_diagnose(text)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SMALL_VALID), st.lists(st.tuples(st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=3)),
                                               min_size=1, max_size=3))
def test_damaged_bytes_through_check_file(tmp_path_factory, text, damage):
    data = bytearray(text.encode("utf-8"))
    for pos, chunk in damage:
        pos %= len(data) + 1
        data[pos:pos] = chunk
    path = tmp_path_factory.mktemp("fuzz") / NAME
    path.write_bytes(bytes(data))
    config, errors, notices = check_file(path, env=ENV)  # never raises
    assert (config is None) == bool(errors)
    try:
        decoded = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        [problem] = errors
        assert "not valid UTF-8" in problem.message and problem.file == str(path)
        assert 1 <= problem.line <= bytes(data).count(b"\n") + 1
        return
    check_diagnostics(decoded, errors, str(path))


def test_lines_are_counted_as_editors_count_them():
    """YAML also breaks lines at a lone CR, NEL, LS and PS; diagnostics count only newlines
    (found by the mutation fuzzing: a stray U+2028 pushed line numbers past the end of the file)."""
    for odd in ("\r", "\u2028", "\x85", "\u2029"):
        text = f"x-note: \"one{odd} two{odd} three\"\nsettings:\n  refresh: 5x\nalert_rules:\n  - {{alert: A}}\n"
        try:
            parse_config(text, NAME, env=ENV)
        except ConfigError as err:
            assert [(d.line, d.col) for d in err.diagnostics] == [(3, 12), (5, 5)], (odd, str(err))
        else:
            raise AssertionError("the file has errors")
    text = "settings:\r\n  refresh: 5x\r\n"  # CRLF files are counted the same either way
    try:
        parse_config(text, NAME, env=ENV)
    except ConfigError as err:
        assert [(d.line, d.col) for d in err.diagnostics] == [(2, 12)]


def test_rules_check_prints_only_diagnostics_for_damaged_files(tmp_path, capsys, monkeypatch):
    from qbconsole.cli import main

    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    samples = [mutate(SHIPPED, [(k, 7919 * (k + 1), 104729 * (k + 3), INSERTS[k * 5 % len(INSERTS)],
                                 VALUES[k * 3 % len(VALUES)])]) for k in range(9)]
    samples += [mutate(t, [(1, 17, 3, ":", "~"), (6, 5, 0, "", "")]) for t in SMALL_VALID]
    for i, text in enumerate(samples):
        path = tmp_path / f"r{i}.yaml"
        path.write_text(text, encoding="utf-8")
        status = main(["rules", "check", str(path)])
        out, err = capsys.readouterr()
        assert status in (0, 1), (status, out, err)
        assert "Traceback" not in out + err
        if status == 1:
            printed = [line for line in out.splitlines() if line and not line.startswith("notice:")]
            assert printed and all(line.startswith(f"{path}:") for line in printed), out
            assert err.strip() == f"{path}: {len(printed)} error(s)"
