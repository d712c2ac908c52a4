"""The Overview's metric groups: which store metric each figure reads, how, and in what unit.

One declaration per figure drives the Overview row (or tile), its sparkline, the
status judgement and the chart screen. Names are those of METRICS.md; derived
figures read the recording rules of rules.yaml, counters are turned into rates
here only where no rule records one (security counters, network bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from qbconsole.catalog import describe

GAUGE = "gauge"
"""One series (or the first of several)."""
WORST = "worst"
"""Several series, one per ``label`` value: the worst one is shown (highest, or lowest for a floor)."""
RATE = "rate"
"""A counter summed over its series, as events per minute."""
BY_LABEL = "by_label"
"""A counter per ``label`` value, as events per minute: a total row and one row per value."""
BYTES_RATE = "bytes_rate"
"""Byte counters per NIC summed to bytes per second, loopback left out (the network tile)."""


@dataclass(frozen=True)
class MetricSpec:
    """One Overview figure."""

    key: str
    """Stable id (widget ids, snapshot keys): letters, digits and '-'."""
    title: str
    name: str
    """The store metric read."""
    unit: str
    """A unit of ``catalog.format_value``; ``per_min`` shows counter rates per minute."""
    how: str = GAUGE
    label: str = ""
    """The label that tells series apart (WORST, BY_LABEL)."""
    pair: str = ""
    """A second metric drawn with the first (the network tile's sent bytes)."""
    y_max: float | None = None

    @property
    def description(self) -> str:
        info = describe(self.name)
        text = info.description if info else self.title
        return f"{text} ({self.name})"


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    metrics: tuple[MetricSpec, ...]


M = MetricSpec

SYSTEM = Group("system", "System", (
    M("cpu", "CPU", "system_cpu_percent", "percent", y_max=100.0),
    M("memory", "Memory", "system_memory_percent", "percent", y_max=100.0),
    M("disk", "Disk (fullest mount)", "system_disk_percent", "percent", WORST, "mount", y_max=100.0),
    M("network", "Network", "system_network_received_bytes_total", "bytes/s", BYTES_RATE,
      pair="system_network_sent_bytes_total"),
))

APPLICATION = Group("application", "Application", (
    M("requests", "Requests/s", "quickbid:http_requests:rate1m", "requests/s"),
    M("response-avg", "Response avg", "quickbid:http_request_duration_seconds:avg5m", "seconds"),
    M("response-p95", "Response p95", "quickbid:http_request_duration_seconds:p95_5m", "seconds"),
    M("response-p99", "Response p99", "quickbid:http_request_duration_seconds:p99_5m", "seconds"),
    M("errors", "Error rate", "quickbid:http_errors:ratio5m", "ratio"),
    M("throughput", "Throughput", "quickbid:http_requests_ok:rate1m", "requests/s"),
    M("active-users", "Active users", "quickbid_active_users", "count"),
    M("connections", "Connections", "http_connections", "count"),
    M("db-time", "DB query avg", "quickbid:db_query_duration_seconds:avg5m", "seconds"),
    M("cache-hit", "Cache hit rate", "quickbid:cache_hit:ratio5m", "ratio", y_max=1.0),
))

BUSINESS = Group("business", "Business", (
    M("signups", "New users (1h)", "quickbid:signups:increase1h", "count"),
    M("auctions", "Active auctions", "quickbid_active_auctions", "count"),
    M("bids", "Bids (1h)", "quickbid:bids:increase1h", "count"),
    M("revenue", "Revenue (1h)", "quickbid:revenue:increase1h", "currency"),
    M("conversion", "Conversion (1h)", "quickbid:conversion:ratio1h", "ratio"),
    M("order-value", "Avg order value", "quickbid:order_value:avg1h", "currency"),
))

USER_EXPERIENCE = Group("ux", "User experience", (
    M("page-load", "Page load p75", "quickbid:rum_page_load_seconds:p75_5m", "seconds", WORST, "page"),
    M("interaction", "Interaction p75", "quickbid:rum_interaction_seconds:p75_5m", "seconds", WORST, "page"),
    M("bounce", "Bounce rate (1h)", "quickbid:rum_bounce:ratio1h", "ratio", y_max=1.0),
    M("session", "Session length", "quickbid:rum_session_duration_seconds:avg1h", "seconds"),
    M("satisfaction", "Satisfaction 1–5", "quickbid:rum_satisfaction_score:avg1h", "score", y_max=5.0),
    M("tasks", "Task completion", "quickbid:rum_task_completed:ratio1h", "ratio", y_max=1.0),
))

SECURITY = Group("security", "Security", (
    M("login-failures", "Failed logins", "quickbid_login_failures_total", "per_min", RATE),
    M("rate-limited", "Rate-limited", "quickbid_rate_limited_total", "per_min", RATE),
    M("security-events", "Security events", "security_events_total", "per_min", BY_LABEL, "kind"),
))

GROUPS: tuple[Group, ...] = (SYSTEM, APPLICATION, BUSINESS, USER_EXPERIENCE, SECURITY)
SPECS: dict[str, MetricSpec] = {m.key: m for g in GROUPS for m in g.metrics}
assert len(SPECS) == sum(len(g.metrics) for g in GROUPS), "a metric key is used twice"
GROUP_OF: dict[str, Group] = {m.key: g for g in GROUPS for m in g.metrics}


def part_key(key: str, value: str) -> str:
    """The snapshot key of one label value of a BY_LABEL figure."""
    return f"{key}/{value}"
