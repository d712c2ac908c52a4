"""The metric catalogue: every metric of METRICS.md declared once.

One declaration (kind, unit, one-line description, group, label names) drives
the console's labels and units, the CLI and the exports. ``describe()`` also
resolves histogram/summary series (``_bucket``/``_sum``/``_count``) and
recording-rule names (``level:metric:operation``); ``format_value()`` renders
a value in its unit for people.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

KINDS = ("gauge", "counter", "histogram", "summary")
GROUPS = ("system", "application", "business", "user_experience", "security", "probe", "qbconsole")


class MetricInfo(NamedTuple):
    """What a metric is: its kind, unit, one-line description and group."""

    name: str
    kind: str  # "gauge" | "counter" | "histogram" | "summary"
    unit: str  # a unit understood by format_value()
    description: str
    group: str  # one of GROUPS
    labels: tuple[str, ...] = ()  # label names the series carry (besides `le`)


def _m(name: str, kind: str, unit: str, group: str, description: str, labels: str = "") -> MetricInfo:
    return MetricInfo(name, kind, unit, description, group, tuple(labels.split()) if labels else ())


_DECLARATIONS = (
    # ---- system (the `system` source, psutil) ----
    _m("system_cpu_percent", "gauge", "percent", "system", "CPU busy time, all cores"),
    _m("system_cpu_core_percent", "gauge", "percent", "system", "CPU busy time of one core", "core"),
    _m("system_load1", "gauge", "load", "system", "Load average over 1 minute"),
    _m("system_load5", "gauge", "load", "system", "Load average over 5 minutes"),
    _m("system_load15", "gauge", "load", "system", "Load average over 15 minutes"),
    _m("system_memory_percent", "gauge", "percent", "system", "Memory in use (total minus available)"),
    _m("system_memory_used_bytes", "gauge", "bytes", "system", "Memory in use (total minus available)"),
    _m("system_memory_total_bytes", "gauge", "bytes", "system", "Physical memory installed"),
    _m("system_swap_percent", "gauge", "percent", "system", "Swap space in use"),
    _m("system_swap_used_bytes", "gauge", "bytes", "system", "Swap space in use"),
    _m("system_disk_percent", "gauge", "percent", "system", "Disk space used on a mounted filesystem", "mount"),
    _m("system_disk_read_bytes_total", "counter", "bytes", "system", "Bytes read from all disks"),
    _m("system_disk_written_bytes_total", "counter", "bytes", "system", "Bytes written to all disks"),
    _m("system_network_received_bytes_total", "counter", "bytes", "system", "Bytes received on an interface", "nic"),
    _m("system_network_sent_bytes_total", "counter", "bytes", "system", "Bytes sent on an interface", "nic"),
    _m("system_network_errors_total", "counter", "count", "system",
       "Network errors on an interface, by direction (in/out)", "nic direction"),
    _m("system_processes", "gauge", "count", "system", "Processes running on the machine"),
    # ---- platform: application (the QuickBid service's /metrics) ----
    _m("http_requests_total", "counter", "requests", "application", "HTTP requests served", "route method status"),
    _m("http_request_duration_seconds", "histogram", "seconds", "application", "HTTP response time", "route"),
    _m("http_connections", "gauge", "count", "application", "Open HTTP connections"),
    _m("db_query_duration_seconds", "histogram", "seconds", "application", "Database query time", "query"),
    _m("db_connections", "gauge", "count", "application", "Open database connections"),
    _m("cache_hits_total", "counter", "count", "application", "Cache lookups that found the entry"),
    _m("cache_misses_total", "counter", "count", "application", "Cache lookups that missed"),
    _m("cache_size", "gauge", "count", "application", "Entries held in the cache"),
    _m("quickbid_workers", "gauge", "count", "application", "Worker processes serving requests"),
    _m("quickbid_backend_weight", "gauge", "number", "application", "Load-balancer weight of a backend", "backend"),
    _m("quickbid_backend_requests_total", "counter", "requests", "application",
       "Requests routed to a backend", "backend"),
    # ---- platform: business ----
    _m("quickbid_active_users", "gauge", "count", "business", "Users active right now"),
    _m("quickbid_signups_total", "counter", "count", "business", "New user sign-ups"),
    _m("quickbid_sessions_total", "counter", "count", "business", "User sessions started"),
    _m("quickbid_active_auctions", "gauge", "count", "business", "Auctions open for bidding"),
    _m("quickbid_bids_total", "counter", "count", "business", "Bids placed"),
    _m("quickbid_orders_total", "counter", "count", "business", "Orders completed"),
    _m("quickbid_revenue_total", "counter", "currency", "business", "Revenue from completed orders"),
    # ---- platform and ingest: security ----
    _m("quickbid_login_failures_total", "counter", "count", "security", "Failed login attempts"),
    _m("quickbid_rate_limited_total", "counter", "requests", "security", "Requests refused by the rate limiter"),
    _m("security_events_total", "counter", "count", "security",
       "Security events (failed_login, blocked_ip, rate_limited, ...)", "kind"),
    # ---- probes (the `http` source) ----
    _m("probe_success", "gauge", "bool", "probe", "Probe succeeded (1) or failed (0)", "target"),
    _m("probe_duration_seconds", "gauge", "seconds", "probe", "Time the probe took", "target"),
    _m("probe_http_status", "gauge", "code", "probe", "HTTP status code the probe got", "target"),
    # ---- scrapes (the `prometheus` source; Prometheus's own names, target labels) ----
    _m("up", "gauge", "bool", "probe", "Last scrape of a target succeeded (1) or not (0)", "job instance"),
    _m("scrape_duration_seconds", "gauge", "seconds", "probe", "Time the last scrape of a target took",
       "job instance"),
    _m("scrape_samples_scraped", "gauge", "count", "probe", "Samples the target exposed in the last scrape",
       "job instance"),
    # ---- user experience (ingest; one sample per event) ----
    _m("rum_page_load_seconds", "gauge", "seconds", "user_experience", "Page load time seen by a user", "page"),
    _m("rum_interaction_seconds", "gauge", "seconds", "user_experience",
       "Time from a user's interaction to the response", "page"),
    _m("rum_session_duration_seconds", "gauge", "seconds", "user_experience", "Length of a user session"),
    _m("rum_bounce", "gauge", "bool", "user_experience", "Session bounced (1) or not (0)"),
    _m("rum_satisfaction_score", "gauge", "score", "user_experience", "User satisfaction rating, 1 to 5"),
    _m("rum_nps_score", "gauge", "score", "user_experience", "Net-promoter answer, 0 to 10"),
    _m("rum_task_completed", "gauge", "bool", "user_experience", "Task completed (1) or abandoned (0)"),
    # ---- derived (recording rules in the default rules.yaml) ----
    _m("quickbid:http_requests:rate1m", "gauge", "requests/s", "application", "Requests per second, 1 m rate"),
    _m("quickbid:http_requests_ok:rate1m", "gauge", "requests/s", "application",
       "Throughput: non-5xx requests per second, 1 m rate"),
    _m("quickbid:http_request_duration_seconds:avg5m", "gauge", "seconds", "application",
       "Average response time over 5 m"),
    _m("quickbid:http_request_duration_seconds:p95_5m", "gauge", "seconds", "application",
       "95th percentile response time over 5 m"),
    _m("quickbid:http_request_duration_seconds:p99_5m", "gauge", "seconds", "application",
       "99th percentile response time over 5 m"),
    _m("quickbid:http_errors:ratio5m", "gauge", "ratio", "application", "Share of requests answered 5xx over 5 m"),
    _m("quickbid:db_query_duration_seconds:avg5m", "gauge", "seconds", "application",
       "Average database query time over 5 m"),
    _m("quickbid:cache_hit:ratio5m", "gauge", "ratio", "application", "Cache hit rate over 5 m"),
    _m("quickbid:signups:increase1h", "gauge", "count", "business", "New users in the last hour"),
    _m("quickbid:bids:increase1h", "gauge", "count", "business", "Bids placed in the last hour"),
    _m("quickbid:revenue:increase1h", "gauge", "currency", "business", "Revenue in the last hour"),
    _m("quickbid:conversion:ratio1h", "gauge", "ratio", "business", "Orders per session over the last hour"),
    _m("quickbid:order_value:avg1h", "gauge", "currency", "business", "Average order value over the last hour"),
    _m("quickbid:rum_page_load_seconds:p75_5m", "gauge", "seconds", "user_experience",
       "75th percentile page load time over 5 m"),
    _m("quickbid:rum_interaction_seconds:p75_5m", "gauge", "seconds", "user_experience",
       "75th percentile interaction latency over 5 m"),
    _m("quickbid:rum_bounce:ratio1h", "gauge", "ratio", "user_experience", "Share of sessions that bounced, last hour"),
    _m("quickbid:rum_session_duration_seconds:avg1h", "gauge", "seconds", "user_experience",
       "Average session duration over the last hour"),
    _m("quickbid:rum_satisfaction_score:avg1h", "gauge", "score", "user_experience",
       "Average satisfaction answer (1–5) over the last hour"),
    _m("quickbid:rum_task_completed:ratio1h", "gauge", "ratio", "user_experience",
       "Share of tasks completed over the last hour"),
    _m("quickbid:backend_load:variance_percent1m", "gauge", "percent", "application",
       "Spread of per-backend request rates: standard deviation in percent of the mean"),
    # ---- qbconsole itself ----
    _m("qbconsole_rule_evaluation_duration_seconds", "gauge", "seconds", "qbconsole",
       "Time the last evaluation of a rule group took", "group"),
    _m("qbconsole_rule_evaluation_failures", "gauge", "count", "qbconsole",
       "Rules of a group that failed at the last evaluation", "group"),
    _m("qbconsole_source_up", "gauge", "bool", "qbconsole", "Last collection of a source succeeded (1) or not (0)",
       "source"),
    _m("qbconsole_source_duration_seconds", "gauge", "seconds", "qbconsole", "Time the last collection took",
       "source"),
)

CATALOG: dict[str, MetricInfo] = {m.name: m for m in _DECLARATIONS}
assert len(CATALOG) == len(_DECLARATIONS), "a metric is declared twice"

_SERIES_SUFFIXES = {
    "_bucket": ("count", "cumulative count of observations per bucket", ("histogram",)),
    "_sum": (None, "sum of observations", ("histogram", "summary")),
    "_count": ("count", "number of observations", ("histogram", "summary")),
}
_RULE = re.compile(r"^(?P<level>[a-zA-Z_]\w*):(?P<metric>[a-zA-Z_]\w*):(?P<op>[a-zA-Z_]\w*)$")


def describe(name: str) -> MetricInfo | None:
    """The catalogue entry for a series name, or None when it is unknown.

    ``x_bucket``/``x_sum``/``x_count`` of a histogram or summary ``x`` resolve
    to ``x`` (name and kind of ``x``; the unit is ``count`` except for
    ``_sum``). A recording rule ``level:metric:op`` not declared here is
    described from its metric when that is known (``rate*`` gives a unit per
    second, ``ratio*`` a ratio, anything else the metric's unit); its labels
    are then unknown (aggregations drop them).
    """
    info = CATALOG.get(name)
    if info is not None:
        return info
    for suffix, (unit, what, kinds) in _SERIES_SUFFIXES.items():
        if name.endswith(suffix):
            base = CATALOG.get(name[: -len(suffix)])
            if base is not None and base.kind in kinds:
                return base._replace(unit=unit or base.unit, description=f"{base.description}: {what}")
    match = _RULE.match(name)
    if match is not None:
        return _describe_rule(name, match["metric"], match["op"])
    return None


def _describe_rule(name: str, metric: str, op: str) -> MetricInfo | None:
    base = None
    for candidate in (metric, metric + "_total", "quickbid_" + metric, "quickbid_" + metric + "_total"):
        base = describe(candidate)
        if base is not None:
            break
    if base is None:
        return None
    if op.startswith("rate"):
        unit, what = _per_second(base.unit), f"per-second rate, {op}"
    elif op.startswith("ratio"):
        unit, what = "ratio", f"ratio, {op}"
    else:
        unit, what = base.unit, op
    return MetricInfo(name, "gauge", unit, f"{base.description} ({what})", base.group)


def _per_second(unit: str) -> str:
    return "bytes/s" if unit == "bytes" else f"{unit}/s"


# ---- formatting --------------------------------------------------------------
_IEC = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SI = ("k", "M", "G", "T", "P", "E")
_DURATIONS = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_SUFFIX = {"requests": " req", "count": "", "number": ""}


def _short(x: float) -> str:
    """Three significant figures at most, one decimal below 100."""
    return f"{x:.0f}" if abs(x) >= 99.95 else f"{x:.1f}"


def _scaled(value: float, base: float, prefixes: tuple[str, ...], plain: str, sep: str = " ") -> str:
    magnitude = abs(value)
    if magnitude < base * 0.99995:
        return f"{value:.0f}{sep}{plain}".rstrip() if value == int(value) else f"{_short(value)}{sep}{plain}".rstrip()
    for prefix in prefixes:
        value /= base
        magnitude /= base
        if magnitude < base * 0.99995 or prefix == prefixes[-1]:
            return f"{_short(value)}{sep}{prefix}{plain}"
    raise AssertionError("unreachable")


def _duration(value: float) -> str:
    if value == 0:
        return "0 s"
    magnitude = abs(value)
    for scale, unit in _DURATIONS:
        if magnitude >= scale * 0.99995 or unit == "ns":
            return f"{_short(value / scale)} {unit}"
    raise AssertionError("unreachable")


def _count(value: float, suffix: str) -> str:
    if abs(value) < 10_000:
        text = f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
        return text + suffix
    return _scaled(value, 1000.0, _SI, "", sep="") + suffix


def _percent(value: float) -> str:
    if value != 0 and abs(value) < 1:
        return f"{value:.2f} %"
    return f"{value:.1f} %"


def format_value(value: float | None, unit: str) -> str:
    """A value in its unit for people: "42.1 %", "3.2 GiB", "120 ms", "1.5 MB/s".

    None and NaN (including the staleness marker) give "—". Bytes use binary
    prefixes, byte rates decimal ones, as file managers and network tools do.
    """
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if unit == "percent":
        return _percent(value)
    if unit == "ratio":
        return _percent(value * 100)
    if unit == "bytes":
        return _scaled(value, 1024.0, _IEC, "B")
    if unit == "bytes/s":
        return _scaled(value, 1000.0, _SI, "B/s")
    if unit == "seconds":
        return _duration(value)
    if unit in _SUFFIX:
        return _count(value, _SUFFIX[unit])
    if unit.endswith("/s") and unit[:-2] in _SUFFIX:
        return _count(value, _SUFFIX[unit[:-2]]) + "/s"
    if unit == "currency":
        return f"{value:,.2f}"
    if unit == "score":
        return f"{value:.1f}"
    if unit == "load":
        return f"{value:.2f}"
    if unit == "code":
        return f"{value:.0f}"
    if unit == "bool" and value in (0.0, 1.0):
        return "yes" if value else "no"
    text = f"{value:.3g}"
    return f"{text} {unit}" if unit and unit != "bool" else text
