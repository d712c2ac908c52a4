"""Recommendations from the report's own figures, ranked high → medium → low.

Each rule looks at figures already in the report (so the evidence it cites is the
figure shown elsewhere), and when it fires gives a finding, its evidence and a
concrete next step. Where an optimization rule of the rules file proposes the
matching action (``action: {kind: ...}``), the recommendation names it.
Thresholds are the SLO targets of the rules file when it has them.
"""

from __future__ import annotations

from typing import Any, Callable

from qbconsole.report.figures import Figure, missing
from qbconsole.report.system import slo_target

PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}


def get(tree: dict, *path: str) -> Figure:
    node: Any = tree
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, Figure) else missing("", "/".join(path), "not in the report")


def _v(fig: Figure) -> float | None:
    return fig.value


def optimization_for(config, kind: str) -> str | None:
    """The name of the first optimization rule whose action is of ``kind``."""
    for rule in getattr(config, "optimizations", None) or []:
        action = rule.get("action")
        found = action.get("kind") if isinstance(action, dict) else action
        if found == kind and rule.get("name"):
            return str(rule["name"])
    return None


def _rec(priority: str, key: str, title: str, finding: str, evidence: list[Figure], next_step: str,
         severity: float, action: str | None = None) -> dict[str, Any]:
    return {"id": key, "priority": priority, "title": title, "finding": finding,
            "evidence": [e for e in evidence if e.value is not None], "next_step": next_step,
            "action_kind": action, "severity": severity}


def _cpu(r, cfg):
    avg, share = get(r["system"], "cpu", "average"), get(r["system"], "cpu", "utilization")
    target = slo_target(cfg, "system_cpu_percent", 70.0)
    if _v(avg) is None:
        return None
    if avg.value >= target or (_v(share) or 0) >= 0.10:
        high = avg.value >= target
        return _rec("high" if high else "medium", "sustained_cpu", "Sustained high CPU",
                    f"CPU averaged {avg.text()} and was above {target:g} % for {share.text()} of the time",
                    [avg, get(r["system"], "cpu", "peak"), share],
                    "Scale up: add workers or instances until the average is below "
                    f"{target:g} %, then look for the busiest routes to optimize", avg.value / target, "scale")
    return None


def _memory(r, cfg):
    avg, share = get(r["system"], "memory", "average"), get(r["system"], "memory", "utilization")
    target = slo_target(cfg, "system_memory_percent", 80.0)
    if _v(avg) is None or not (avg.value >= target or (_v(share) or 0) >= 0.10):
        return None
    return _rec("high" if avg.value >= target else "medium", "high_memory", "High memory use",
                f"memory averaged {avg.text()}, above {target:g} % for {share.text()} of the time",
                [avg, get(r["system"], "memory", "peak"), share],
                "Add memory or cap caches and worker counts; compare process sizes at the start and end "
                "of the window to rule out a leak", avg.value / target)


def _queries(r, cfg):
    db = r["system"].get("database", {})
    avg, p95 = get(db, "query_time_average"), get(db, "query_time_p95")
    target = slo_target(cfg, "db_query_duration_seconds", 0.1)
    worst = max(_v(avg) or 0, _v(p95) or 0)
    if worst < target:
        return None
    slow = db.get("slowest_queries") or []
    names = ", ".join(f"{q['query']} ({q['average'].text()} average)" for q in slow[:3]) or "the slowest queries"
    return _rec("high" if (_v(avg) or 0) >= target else "medium", "slow_queries", "Slow database queries",
                f"queries took {avg.text()} on average and {p95.text()} at p95 (target {target * 1000:g} ms)",
                [avg, p95] + [q["average"] for q in slow[:3]],
                f"Add indexes for {names}: read their plans (EXPLAIN QUERY PLAN) and index the filtered and "
                "joined columns", worst / target, "missing_indexes")


def _latency(r, cfg):
    rt = r["application"].get("response_time", {})
    p95, p99 = get(rt, "p95"), get(rt, "p99")
    target = slo_target(cfg, "http_request_duration_seconds", 0.5)
    if _v(p95) is None or not (p95.value >= target or (_v(p99) or 0) >= 2 * target):
        return None
    routes = r["application"].get("slowest_routes") or []
    names = ", ".join(f"{x['route']} (p95 {x['p95'].text()})" for x in routes[:3]) or "the slowest routes"
    return _rec("high" if p95.value >= target else "medium", "high_p95", "Slow responses at the 95th percentile",
                f"p95 response time was {p95.text()}, p99 {p99.text()} (target {target * 1000:g} ms)",
                [p95, p99, get(rt, "average")] + [x["p95"] for x in routes[:3]],
                f"Cache the responses of {names} and optimize their handlers; check how much of each "
                "request is database time", p95.value / target, "cache_resize")


def _cache(r, cfg):
    rate = get(r["system"], "cache", "hit_rate")
    target = slo_target(cfg, "cache_hits_total", 0.9, (">", ">="))
    if _v(rate) is None or rate.value > target:  # the target is "above": at it is not enough
        return None
    return _rec("high" if rate.value < target / 2 else "medium", "low_cache_hit_rate", "Low cache hit rate",
                f"the cache answered {rate.text()} of lookups (target {target:.0%})",
                [rate, get(r["system"], "cache", "lookups")],
                "Grow the cache (more entries) and review expiry times so hot auctions stay cached",
                target / max(rate.value, 1e-9), "cache_resize")


def _errors(r, cfg):
    errors = r["application"].get("errors", {})
    rate = get(errors, "rate")
    target = slo_target(cfg, "http_requests_total", 0.01)
    if _v(rate) is None or rate.value < target:
        return None
    top = errors.get("top") or []
    names = ", ".join(f"{t['route']} {t['status']} ({t['count'].text()})" for t in top[:3]) or "the failing routes"
    return _rec("high", "error_rate", "Error rate above target",
                f"{rate.text()} of requests failed with 5xx (target below {target:.1%})",
                [rate, get(errors, "total")] + [t["count"] for t in top[:3]],
                f"Fix the top failing routes first: {names}; read their logs around the error peaks",
                rate.value / target)


def _availability(r, cfg):
    av = r["application"].get("availability", {})
    value = get(av, "availability")
    target = slo_target(cfg, "probe_success", 0.999, (">", ">="))
    if _v(value) is None or value.value > target:
        return None
    outages = av.get("outages") or []
    longest = f"; the longest outage lasted {outages[0]['duration'].text()}" if outages else ""
    return _rec("high", "availability", "Availability below target",
                f"availability was {value.text()} (target {target:.1%}), {get(av, 'downtime').text()} down{longest}",
                [value, get(av, "downtime")] + [o["duration"] for o in outages[:3]],
                "Find the cause of the longest outages (deploys, crashes, dependencies) and run a second, "
                "health-checked instance behind the load balancer", (1 - value.value) / max(1 - target, 1e-9))


def _page_load(r, cfg):
    ux = r["user_experience"]
    p75 = get(ux, "page_load", "p75")
    target = slo_target(cfg, "rum_page_load_seconds", 2.0)
    if _v(p75) is None or p75.value < target:
        return None
    pages = ux.get("page_load", {}).get("pages") or []
    names = ", ".join(f"{p['page']} ({p['p75'].text()})" for p in pages[:3]) or "the slowest pages"
    return _rec("medium", "page_load", "Slow page loads",
                f"page load p75 was {p75.text()} (target {target:g} s)",
                [p75, get(ux, "page_load", "p95")] + [p["p75"] for p in pages[:3]],
                f"Lighten {names}: compress and cache static assets, defer scripts, and cache rendered pages",
                p75.value / target, "cache_resize")


def _backends(r, cfg):
    spread = get(r["application"], "backends", "spread")
    if _v(spread) is None or spread.value < 20:
        return None
    rows = r["application"]["backends"]["backends"]
    return _rec("high" if spread.value >= 50 else "medium", "backend_imbalance", "Backend load imbalance",
                f"per-backend request counts differ by {spread.text()} of their mean",
                [spread] + [b["share"] for b in rows],
                "Adjust the load-balancer weights towards the less loaded backends and check the busy one's health",
                spread.value / 20, "weights")


def _disk(r, cfg):
    peak = get(r["system"], "disk", "peak")
    if _v(peak) is None or peak.value < 85:
        return None
    mount = r["system"]["disk"].get("mount", "")
    return _rec("high" if peak.value >= 95 else "medium", "disk_space", "Disk nearly full",
                f"the fullest filesystem ({mount}) reached {peak.text()}", [peak, get(r["system"], "disk", "average")],
                f"Free space on {mount} (logs, old data) or grow the volume before it fills", peak.value / 85)


def _response_process(r, cfg):
    inc = r["incidents"]
    mtta, mttr = get(inc, "mtta"), get(inc, "mttr")
    if (_v(mtta) or 0) < 900 and (_v(mttr) or 0) < 3600:
        return None
    return _rec("low", "incident_response", "Slow incident response",
                f"incidents took {mtta.text()} to acknowledge and {mttr.text()} to resolve on average",
                [mtta, mttr, get(inc, "count")],
                "Check that critical alerts page the on-call person (SMS route) and write runbooks for the "
                "most frequent alerts", max((_v(mtta) or 0) / 900, (_v(mttr) or 0) / 3600))


def _capacity(r, cfg):
    missed = [row for row in r["slo"].get("objectives", []) if row.get("kind") == "capacity"
              and row["status"] == "missed"]
    if not missed:
        return None
    names = "; ".join(f"{row['name']}: {row.get('why', 'missed')}" for row in missed)
    return _rec("medium", "capacity", "Capacity targets not reached",
                f"not met: {names}", [row["actual"] for row in missed] + [row["target"] for row in missed],
                "Run a load test up to the targets and scale until they are reached within the latency and "
                "error targets", 1.0, "scale")


def _conversion(r, cfg):
    conv = get(r["business"], "conversion_rate")
    if _v(conv) is None or conv.value >= 0.10:
        return None
    return _rec("low", "conversion", "Low conversion", f"{conv.text()} of sessions ended in an order",
                [conv, get(r["business"], "sessions"), get(r["business"], "orders")],
                "Review the funnel steps with the largest drop and A/B test the checkout page",
                0.10 / max(conv.value, 1e-9))


RULES: list[Callable] = [_cpu, _memory, _queries, _latency, _cache, _errors, _availability, _page_load,
                         _backends, _disk, _response_process, _capacity, _conversion]


def build(report: dict[str, Any], config) -> list[dict[str, Any]]:
    """Recommendations for the sections in ``report``, most urgent first."""
    found = [rec for rule in RULES if (rec := rule(report, config)) is not None]
    for rec in found:
        kind = rec.pop("action_kind")
        rec["optimization"] = optimization_for(config, kind) if kind else None
    found.sort(key=lambda rec: (PRIORITY_RANK[rec["priority"]], -rec["severity"]))
    for rec in found:
        rec.pop("severity")
    return found
