"""The metric catalogue against METRICS.md, describe() and format_value()."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from qbconsole.catalog import CATALOG, GROUPS, KINDS, describe, format_value
from qbconsole.model import STALE_NAN

METRICS_MD = Path("/work/shared/METRICS.md")

# Backticked words in METRICS.md that are not metric names: a naming pattern,
# source kinds and a config section.
NOT_METRICS = {"level:metric:operation", "http", "system", "slos"}
# Declared here but not (yet) in METRICS.md: the agent's own series and two
# system series the issue allows.
# Declared here but not (yet) in METRICS.md: qbconsole's own health, Prometheus's
# scrape and alert series, and derived figures METRICS.md describes without a
# rule name. Each should be added to METRICS.md (proposed in the issue notes).
EXTRAS = {
    "qbconsole_source_up", "qbconsole_source_duration_seconds",
    "qbconsole_rule_evaluation_duration_seconds", "qbconsole_rule_evaluation_failures",
    "system_memory_total_bytes", "system_swap_used_bytes",
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "quickbid:backend_load:variance_percent1m", "quickbid:rum_bounce:ratio1h",
    "quickbid:rum_interaction_seconds:p75_5m", "quickbid:rum_satisfaction_score:avg1h",
    "quickbid:rum_session_duration_seconds:avg1h", "quickbid:rum_task_completed:ratio1h",
}
NAME = re.compile(r"[A-Za-z_:][\w:]*")
SIMPLE = re.compile(r"^(?P<names>[A-Za-z_:][\w:]*(?:/\w+)*)(?:\{(?P<labels>[\w,]*)\})?$")
PROMQL_WORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


def _expand(names: str) -> list[str]:
    """``a_bucket/_sum/_count`` and ``system_load1/5/15`` into full names."""
    first, *alternatives = names.split("/")
    out = [first]
    for alt in alternatives:
        if alt.startswith("_"):
            out.append(re.sub(r"_[a-z]+$", alt, first))
        elif alt.isdigit():
            out.append(re.sub(r"\d+$", alt, first))
        else:
            raise AssertionError(f"cannot expand {names!r}")
    return out


def _expression_names(expr: str) -> list[str]:
    """Metric names in a PromQL expression: not functions, keywords, labels or ranges."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", expr)
    names = []
    for match in NAME.finditer(expr):
        word, rest = match.group(), expr[match.end():].lstrip()
        if rest.startswith("(") or word in PROMQL_WORDS or expr[: match.start()].endswith("."):
            continue
        names.append(word)
    return names


def metrics_md_names(text: str) -> dict[str, tuple[str, ...] | None]:
    """Every metric name written in backticks, with its label names when given."""
    found: dict[str, tuple[str, ...] | None] = {}
    for line in text.splitlines():
        previous_rule = None
        for span in re.findall(r"`([^`]+)`", line):
            if span in NOT_METRICS or span.startswith(("_", "/")) or "." in span and "(" not in span:
                continue
            simple = SIMPLE.match(span)
            if simple is None:
                for name in _expression_names(span):
                    found.setdefault(name, None)
                continue
            labels = tuple(simple["labels"].split(",")) if simple["labels"] else None
            for name in _expand(simple["names"]):
                if ":" not in name and previous_rule and name not in CATALOG and re.fullmatch(r"p\d+_\w+", name):
                    name = previous_rule.rsplit(":", 1)[0] + ":" + name  # "`a:b:p95_5m` / `p99_5m`"
                if name.count(":") == 2:
                    previous_rule = name
                if name.endswith(("_bucket", "_sum", "_count")):
                    found[name] = labels
                    name = re.sub(r"_(bucket|sum|count)$", "", name)
                found[name] = labels if labels is not None else found.get(name)
    return found


@pytest.fixture(scope="module")
def documented() -> dict[str, tuple[str, ...] | None]:
    if not METRICS_MD.exists():
        pytest.skip(f"{METRICS_MD} not present")
    names = metrics_md_names(METRICS_MD.read_text(encoding="utf-8"))
    assert len(names) > 50, "the METRICS.md parser found too few names; has the format changed?"
    return names


def test_parser_reads_the_markdown_shapes():
    text = (
        "| cpu | `system_load1/5/15`, `x_seconds_bucket/_sum/_count{route}` |\n"
        "| p | `a:b_seconds:p95_5m` / `p99_5m` = `histogram_quantile(0.9, sum by (le) (rate(..._bucket[5m])))` |\n"
        "`avg_over_time(probe_success{job=\"x\"}[W]) > 0.999`, `_total`, `level:metric:operation`, `rules.yaml`\n"
    )
    names = metrics_md_names(text)
    assert set(names) == {
        "system_load1", "system_load5", "system_load15", "x_seconds", "x_seconds_bucket", "x_seconds_sum",
        "x_seconds_count", "a:b_seconds:p95_5m", "a:b_seconds:p99_5m", "probe_success",
    }
    assert names["x_seconds"] == ("route",)


def test_every_documented_metric_is_catalogued(documented):
    missing = sorted(name for name in documented if describe(name) is None)
    assert not missing, f"in METRICS.md but not in the catalogue: {missing}"


def test_documented_labels_match(documented):
    wrong = {
        name: (labels, describe(name).labels)
        for name, labels in documented.items()
        if labels is not None and set(describe(name).labels) != set(labels)
    }
    assert not wrong, f"labels differ from METRICS.md (documented, catalogued): {wrong}"


def test_catalogue_has_nothing_undocumented(documented):
    undocumented = set(CATALOG) - set(documented) - EXTRAS
    assert not undocumented, f"catalogued but not in METRICS.md: {sorted(undocumented)}"


@pytest.mark.parametrize("info", list(CATALOG.values()), ids=list(CATALOG))
def test_declaration_is_consistent(info):
    assert info.kind in KINDS and info.group in GROUPS
    assert info.description and "\n" not in info.description and len(info.description) <= 80
    assert format_value(1.0, info.unit) != "—"
    base = info.name.split(":")[1] if info.name.count(":") == 2 else info.name
    assert (info.kind == "counter") == info.name.endswith("_total")
    if info.name.count(":") == 2:
        assert info.kind == "gauge"
    elif base.endswith("_seconds"):
        assert info.unit == "seconds"
    elif base.endswith("_bytes") or base.endswith("_bytes_total"):
        assert info.unit == "bytes"
    elif base.endswith("_percent"):
        assert info.unit == "percent"


def test_describe_resolves_histogram_series():
    base = CATALOG["http_request_duration_seconds"]
    for suffix, unit in (("_bucket", "count"), ("_count", "count"), ("_sum", "seconds")):
        info = describe("http_request_duration_seconds" + suffix)
        assert info is not None and info.name == base.name and info.kind == "histogram"
        assert info.unit == unit and info.group == base.group
    assert describe("system_cpu_percent_count") is None  # a gauge has no _count series
    assert describe("no_such_metric") is None


def test_describe_recording_rules():
    assert describe("quickbid:http_request_duration_seconds:p95_5m").unit == "seconds"
    assert describe("quickbid:cache_hit:ratio5m").unit == "ratio"
    # not declared, but derived from a known metric
    rate = describe("instance:system_network_received_bytes:rate5m")
    assert rate is not None and rate.unit == "bytes/s" and rate.group == "system" and rate.kind == "gauge"
    assert describe("job:quickbid_bids:rate1m").unit == "count/s"
    assert describe("job:db_query_duration_seconds:p50_5m").unit == "seconds"
    assert describe("job:no_such_thing:rate1m") is None


@pytest.mark.parametrize(
    "value, unit, text",
    [
        (42.123, "percent", "42.1 %"),
        (0.0, "percent", "0.0 %"),
        (0.25, "percent", "0.25 %"),
        (0.953, "ratio", "95.3 %"),
        (0.0012, "ratio", "0.12 %"),
        (3.2 * 2**30, "bytes", "3.2 GiB"),
        (512, "bytes", "512 B"),
        (1023.99, "bytes", "1.0 KiB"),
        (-2048, "bytes", "-2.0 KiB"),
        (1.5e6, "bytes/s", "1.5 MB/s"),
        (999.99, "bytes/s", "1.0 kB/s"),
        (0.12, "seconds", "120 ms"),
        (0.0015, "seconds", "1.5 ms"),
        (2.5e-5, "seconds", "25.0 µs"),
        (1.234, "seconds", "1.2 s"),
        (0.99999, "seconds", "1.0 s"),
        (150, "seconds", "2.5 min"),
        (7200, "seconds", "2.0 h"),
        (0, "seconds", "0 s"),
        (1234, "count", "1,234"),
        (12345, "count", "12.3k"),
        (2.5e6, "count", "2.5M"),
        (12.7, "count", "12.7"),
        (1234, "requests/s", "1,234 req/s"),
        (45600, "requests", "45.6k req"),
        (1234.5, "currency", "1,234.50"),
        (4.25, "score", "4.2"),
        (0.4175, "load", "0.42"),
        (404, "code", "404"),
        (1, "bool", "yes"),
        (0, "bool", "no"),
        (0.5, "bool", "0.5"),
        (3, "widgets", "3 widgets"),
        (None, "percent", "—"),
        (math.nan, "seconds", "—"),
        (STALE_NAN, "bytes", "—"),
        (math.inf, "seconds", "∞"),
        (-math.inf, "bytes", "-∞"),
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text
