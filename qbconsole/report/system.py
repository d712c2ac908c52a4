"""The system section: CPU, memory, disk, network, database and cache."""

from __future__ import annotations

from typing import Any

from qbconsole.report import charts
from qbconsole.report import measures as m
from qbconsole.report.figures import Figure, figure, missing
from qbconsole.report.window import Window

DEFAULT_TARGETS = {"system_cpu_percent": 70.0, "system_memory_percent": 80.0}
SLOWEST_QUERIES = 5


def slo_target(config, metric: str, default: float, ops: tuple[str, ...] = ("<", "<=")) -> float:
    """The target of the first objective (with one of ``ops``) whose expression reads ``metric``."""
    for slo in getattr(config, "slos", None) or []:
        if metric in str(slo.get("expr", "")) and slo.get("op") in ops \
                and slo.get("kind", "objective") == "objective":
            return float(slo["target"])
    return default


def _usage(w: Window, config, metric: str, what: str, detail: bool) -> dict[str, Figure]:
    target = slo_target(config, metric, DEFAULT_TARGETS[metric])
    out = m.gauge_figures(w, metric, "percent", what)
    if not detail:
        return out
    out["utilization"] = m.share_above(w, metric, target, what, f"{target:g} %")
    out["target"] = figure(target, "percent", f"{what} target", "from the SLOs of the rules file")
    return out


def _disk(w: Window) -> dict[str, Any]:
    name = "system_disk_percent"
    fullest, best = None, None
    for s in w.series(name):
        st = w.stats(s.id)
        if st is not None and (best is None or st.max > best.max):
            fullest, best = s, st
    out: dict[str, Any] = {}
    if best is None:
        out["average"] = missing("percent", "fullest disk average", m.no_samples(name))
        out["peak"] = missing("percent", "fullest disk peak", m.no_samples(name))
    else:
        out["mount"] = fullest.labels.get("mount", "")
        method = f"mount {out['mount']}, the fullest at its peak; {m.count_text(best.count)} samples"
        out["average"] = figure(best.mean, "percent", "fullest disk average", method)
        out["peak"] = figure(best.max, "percent", "fullest disk peak", method)
    for key, metric, label in (("read", "system_disk_read_bytes_total", "disk reads"),
                               ("written", "system_disk_written_bytes_total", "disk writes")):
        total = m.counter_figure(w, metric, "bytes", label)
        out[key] = m.rate_figure(total, w, "bytes/s", f"{label} per second")
    return out


def _network(w: Window) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, metric, label in (("received", "system_network_received_bytes_total", "network in"),
                               ("sent", "system_network_sent_bytes_total", "network out")):
        peak = m.peak_rate(w, metric, "bytes/s", f"{label} peak")  # reads per minute: first
        total = m.counter_figure(w, metric, "bytes", f"{label} total")
        out[f"{key}_total"] = total
        out[key] = m.rate_figure(total, w, "bytes/s", f"{label} average")
        out[f"{key}_peak"] = peak
    return out


def _database(w: Window, detail: bool) -> dict[str, Any]:
    base = "db_query_duration_seconds"
    out: dict[str, Any] = {"query_time_average": m.histogram_average(w, base, "seconds", "query time average")}
    if not detail:
        return out
    out["query_time_p95"] = m.quantiles(w, base, {"p95": 0.95}, "seconds", "query time")["p95"]
    out["connections_average"] = m.gauge_figures(w, "db_connections", "count", "database connections")["average"]
    queries = m.counter_figure(w, base + "_count", "count", "queries")
    out["queries"] = queries
    out["throughput"] = m.rate_figure(queries, w, "queries/s", "query throughput")
    out["slowest_queries"] = slowest_queries(w)
    return out


def slowest_queries(w: Window, limit: int = SLOWEST_QUERIES) -> list[dict[str, Any]]:
    """Query names (the ``query`` label) by average time, slowest first."""
    base = "db_query_duration_seconds"
    names = sorted({s.labels.get("query", "") for s in w.series(base + "_count")})
    rows = []
    for name in names:
        keep = (lambda labels, q=name: labels.get("query", "") == q)
        average = m.histogram_average(w, base, "seconds", f"{name} average", keep)
        if average.value is None:
            continue
        count, _ = m.counter_total(w, base + "_count", keep)
        p95 = m.histogram_figures(w, base, {"p95": 0.95}, "seconds", name, keep)["p95"]
        rows.append({"query": name, "average": average, "p95": p95,
                     "count": figure(count, "count", f"{name} executions", "increase of the _count series")})
    rows.sort(key=lambda r: -r["average"].value)
    return rows[:limit]


def _cache(w: Window) -> dict[str, Figure]:
    hits = m.counter_figure(w, "cache_hits_total", "count", "cache hits")
    misses = m.counter_figure(w, "cache_misses_total", "count", "cache misses")
    if hits.value is None or misses.value is None:
        why = hits.reason if hits.value is None else misses.reason
        return {"hit_rate": missing("ratio", "cache hit rate", why), "lookups": missing("count", "cache lookups", why)}
    lookups = hits.value + misses.value
    out = {"lookups": figure(lookups, "count", "cache lookups", "increase of cache hits + misses")}
    if lookups == 0:
        out["hit_rate"] = missing("ratio", "cache hit rate", "no cache lookups in the window")
    else:
        out["hit_rate"] = figure(hits.value / lookups, "ratio", "cache hit rate",
                                 "increase of cache_hits_total ÷ (hits + misses)")
    return out


def build(w: Window, config, *, detail: bool = True) -> dict[str, Any]:
    """The section; ``detail=False`` gives only the headline figures (previous period)."""
    section: dict[str, Any] = {
        "cpu": _usage(w, config, "system_cpu_percent", "CPU", detail),
        "memory": _usage(w, config, "system_memory_percent", "memory", detail),
    }
    if detail:
        section["disk"] = _disk(w)
        section["network"] = _network(w)
    section["database"] = _database(w, detail)
    section["cache"] = _cache(w)
    if detail:
        section["charts"] = {
            "cpu": charts.gauge_chart(w, "system_cpu_percent", "percent", "CPU"),
            "memory": charts.gauge_chart(w, "system_memory_percent", "percent", "Memory"),
        }
    return section
