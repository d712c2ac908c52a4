"""Comparison with the previous period of equal length: the headline figures and their change."""

from __future__ import annotations

from typing import Any

from qbconsole.report.figures import Figure, figure, missing
from qbconsole.report.recommend import get

# (key, section, path, which direction is better)
HEADLINES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("cpu_average", "system", ("cpu", "average"), "lower"),
    ("memory_average", "system", ("memory", "average"), "lower"),
    ("db_query_time_average", "system", ("database", "query_time_average"), "lower"),
    ("cache_hit_rate", "system", ("cache", "hit_rate"), "higher"),
    ("response_time_average", "application", ("response_time", "average"), "lower"),
    ("response_time_p95", "application", ("response_time", "p95"), "lower"),
    ("response_time_p99", "application", ("response_time", "p99"), "lower"),
    ("requests", "application", ("requests", "total"), "higher"),
    ("requests_per_second_peak", "application", ("requests", "per_second_peak"), "higher"),
    ("error_rate", "application", ("errors", "rate"), "lower"),
    ("availability", "application", ("availability", "availability"), "higher"),
    ("downtime", "application", ("availability", "downtime"), "lower"),
    ("new_users", "business", ("new_users",), "higher"),
    ("active_users_average", "business", ("active_users", "average"), "higher"),
    ("revenue", "business", ("revenue",), "higher"),
    ("orders", "business", ("orders",), "higher"),
    ("conversion_rate", "business", ("conversion_rate",), "higher"),
    ("average_order_value", "business", ("average_order_value",), "higher"),
    ("page_load_p75", "user_experience", ("page_load", "p75"), "lower"),
    ("nps", "user_experience", ("nps",), "higher"),
    ("incidents", "incidents", ("count",), "lower"),
    ("mttr", "incidents", ("mttr",), "lower"),
)


def _change(cur: Figure, prev: Figure, better: str, label: str) -> dict[str, Any]:
    row: dict[str, Any] = {"label": label, "current": cur, "previous": prev, "better": better}
    if cur.value is None or prev.value is None:
        why = ("no data in either period" if cur.value is None and prev.value is None
               else "no current value" if cur.value is None else "no value in the previous period")
        row["change"] = missing(cur.unit, f"{label} change", why)
        row["change_relative"] = missing("ratio", f"{label} relative change", why)
        row["verdict"] = "n/a"
        return row
    delta = cur.value - prev.value
    row["change"] = figure(delta, cur.unit, f"{label} change", "current − previous")
    if prev.value == 0:
        row["change_relative"] = missing("ratio", f"{label} relative change", "the previous value is zero")
    else:
        row["change_relative"] = figure(delta / abs(prev.value), "ratio", f"{label} relative change",
                                        "(current − previous) ÷ |previous|")
    if delta == 0:
        row["verdict"] = "same"
    else:
        row["verdict"] = "better" if (delta < 0) == (better == "lower") else "worse"
    return row


def build(current: dict[str, Any], previous: dict[str, Any], prev_range: dict[str, Any]) -> dict[str, Any]:
    """``current``/``previous``: the sections of both windows, keyed like the report."""
    rows = []
    for key, section, path, better in HEADLINES:
        cur, prev = get(current[section], *path), get(previous[section], *path)
        label = cur.label or prev.label or key.replace("_", " ")
        rows.append({"key": key, **_change(cur, prev, better, label)})
    return {"range": prev_range, "headlines": rows}
