"""Targets the Overview figures are judged against, and the judgement itself.

Targets come from the ``slos`` of the rules file (``config.slos``): each SLO that
maps to an Overview metric gives that metric its target. The default SLO names
(``api_p95``, ``error_rate``, ``cache_hit_rate``, ...) map through ``SLO_METRICS``;
any other SLO maps to the metric its expression reads, when that is an Overview
metric (e.g. ``max_over_time(quickbid_active_users[W])``).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable, Mapping

from qbconsole.tui.data import MetricWindow


class Status(Enum):
    """A figure's state; the value is the word shown next to its colour."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    SHORT = "short"
    """A capacity target not reached yet (no fault: the peak so far was lower)."""
    NO_DATA = "no data"
    NO_TARGET = "no target"


OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """``metric <op> threshold``, e.g. CPU < 70 % average; capacity targets judge the window's peak."""

    op: str
    threshold: float
    slo: str = ""
    """The SLO it comes from ("" when given directly)."""
    capacity: bool = False

    @property
    def holds(self) -> Callable[[float, float], bool]:
        return OPS[self.op]

    @property
    def low_is_bad(self) -> bool:
        """A floor (``>``, ``>=``): lower values are worse."""
        return self.op in (">", ">=")


SLO_METRICS: dict[str, str] = {
    "cpu": "system_cpu_percent",
    "memory": "system_memory_percent",
    "db_query_time": "quickbid:db_query_duration_seconds:avg5m",
    "api_p95": "quickbid:http_request_duration_seconds:p95_5m",
    "cache_hit_rate": "quickbid:cache_hit:ratio5m",
    "page_load": "quickbid:rum_page_load_seconds:p75_5m",
    "interaction": "quickbid:rum_interaction_seconds:p75_5m",
    "error_rate": "quickbid:http_errors:ratio5m",
    "throughput": "quickbid:http_requests_ok:rate1m",
    "concurrent_users": "quickbid_active_users",
}
"""The default SLOs' names -> the Overview metric (store name) each one judges."""

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def slo_metric(slo: Mapping[str, Any], metrics: Iterable[str]) -> str | None:
    """The Overview metric an SLO judges: by its known name, else the one metric its expression reads."""
    known = SLO_METRICS.get(str(slo.get("name", "")))
    wanted = set(metrics)
    if known in wanted:
        return known
    read = {name for name in _NAME.findall(str(slo.get("expr", ""))) if name in wanted}
    return read.pop() if len(read) == 1 else None


def targets_from_slos(slos: Iterable[Mapping[str, Any]], metrics: Iterable[str]) -> dict[str, Target]:
    """Metric name -> target, from the SLOs that map to one of ``metrics`` (the first SLO wins)."""
    metrics = tuple(metrics)
    targets: dict[str, Target] = {}
    for slo in slos:
        metric = slo_metric(slo, metrics)
        op, threshold = slo.get("op"), slo.get("target")
        if metric is None or metric in targets or op not in OPS or not isinstance(threshold, (int, float)):
            continue
        targets[metric] = Target(op, float(threshold), str(slo.get("name", "")), slo.get("kind") == "capacity")
    return targets


def judge(window: MetricWindow, target: Target | None) -> Status:
    """The status of a figure against its target.

    Objectives judge the window's average: crit when it misses the target, warn when it
    meets it but the latest value does not (a spike that has not yet moved the average).
    Capacity targets judge the peak: ok once reached, short before.
    """
    latest, average = window.latest, window.average
    if latest is None or average is None:
        return Status.NO_DATA
    if target is None:
        return Status.NO_TARGET
    if target.capacity:
        values = [v for _, v in window.points]
        peak = min(values) if target.op in ("<", "<=") else max(values)
        return Status.OK if target.holds(peak, target.threshold) else Status.SHORT
    if not target.holds(average, target.threshold):
        return Status.CRIT
    if not target.holds(latest[1], target.threshold):
        return Status.WARN
    return Status.OK


SEVERITY = {Status.CRIT: 3, Status.WARN: 2, Status.SHORT: 1, Status.OK: 0, Status.NO_TARGET: 0, Status.NO_DATA: 0}
"""How much a status needs attention (the group bar counts the ones above 1)."""
