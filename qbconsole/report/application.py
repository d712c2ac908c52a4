"""The application section: response time, requests, errors, availability, routes, backends."""

from __future__ import annotations

import statistics
from typing import Any

from qbconsole.report import availability, charts
from qbconsole.report import measures as m
from qbconsole.report.figures import figure, missing
from qbconsole.report.window import Window

REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"
BACKENDS = "quickbid_backend_requests_total"
TOP_ERRORS = 10
SLOWEST_ROUTES = 5


def server_error(labels: dict[str, str]) -> bool:
    """Status 5xx (PromQL ``status=~"5.."``)."""
    status = labels.get("status", "")
    return len(status) == 3 and status.startswith("5")


def client_error(labels: dict[str, str]) -> bool:
    status = labels.get("status", "")
    return len(status) == 3 and status.startswith("4")


def _response_time(w: Window) -> dict[str, Any]:
    qs = m.quantiles(w, DURATION, {"p95": 0.95, "p99": 0.99}, "seconds", "response time")
    raw = m.pooled(w, DURATION)
    if raw is not None:
        average = figure(raw.mean, "seconds", "response time average",
                         f"mean of {m.count_text(raw.count)} raw samples of {DURATION}")
    else:
        average = m.histogram_average(w, DURATION, "seconds", "response time average")
    return {"average": average, **qs}


def _requests(w: Window, detail: bool) -> dict[str, Any]:
    peak = m.peak_rate(w, REQUESTS, "requests/s", "requests per second, peak")  # reads per minute: first
    total = m.counter_figure(w, REQUESTS, "requests", "requests")
    out = {
        "total": total,
        "per_second_average": m.rate_figure(total, w, "requests/s", "requests per second, average"),
        "per_second_peak": peak,
    }
    if detail:
        out["successful_per_second_peak"] = m.peak_rate(
            w, REQUESTS, "requests/s", "successful (non-5xx) requests per second, peak",
            keep=lambda labels: not server_error(labels))
    return out


def _errors(w: Window, total_requests: float | None, detail: bool) -> dict[str, Any]:
    errors = m.counter_figure(w, REQUESTS, "requests", "server errors (5xx)", keep=server_error)
    if errors.value is None and total_requests is not None:
        errors = figure(0.0, "requests", "server errors (5xx)", f"no 5xx series of {REQUESTS} in the window")
    out: dict[str, Any] = {"total": errors}
    if detail:
        clients = m.counter_figure(w, REQUESTS, "requests", "client errors (4xx)", keep=client_error)
        if clients.value is None and total_requests is not None:
            clients = figure(0.0, "requests", "client errors (4xx)", f"no 4xx series of {REQUESTS} in the window")
        out["client_errors"] = clients
    if total_requests is None:
        out["rate"] = missing("ratio", "error rate", m.no_samples(REQUESTS))
    elif total_requests == 0:
        out["rate"] = missing("ratio", "error rate", "no requests in the window")
    else:
        out["rate"] = figure(errors.value / total_requests, "ratio", "error rate",
                             "5xx requests ÷ all requests (increases of http_requests_total)")
    if detail:
        out["top"] = top_errors(w)
    return out


def top_errors(w: Window, limit: int = TOP_ERRORS) -> list[dict[str, Any]]:
    """5xx answers grouped by route and status, most frequent first."""
    counts: dict[tuple[str, str], float] = {}
    for s in m.select(w, REQUESTS, server_error):
        inc = w.increase(s.id)
        if inc:
            key = (s.labels.get("route", ""), s.labels.get("status", ""))
            counts[key] = counts.get(key, 0.0) + inc
    total = sum(counts.values())
    rows = []
    for (route, status), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
        rows.append({"route": route, "status": status,
                     "count": figure(n, "requests", f"{route} {status}", "increase of http_requests_total"),
                     "share": figure(n / total, "ratio", "share of all 5xx")})
    return rows


def slowest_routes(w: Window, limit: int = SLOWEST_ROUTES) -> list[dict[str, Any]]:
    routes = sorted({s.labels.get("route", "") for s in w.series(DURATION + "_count")})
    rows = []
    for route in routes:
        keep = (lambda labels, r=route: labels.get("route", "") == r)
        average = m.histogram_average(w, DURATION, "seconds", f"{route} average", keep)
        if average.value is None:
            continue
        p95 = m.histogram_figures(w, DURATION, {"p95": 0.95}, "seconds", route, keep)["p95"]
        count, _ = m.counter_total(w, DURATION + "_count", keep)
        rows.append({"route": route, "average": average, "p95": p95,
                     "requests": figure(count, "requests", f"{route} requests", "increase of the _count series")})
    rows.sort(key=lambda r: -(r["p95"].value if r["p95"].value is not None else r["average"].value))
    return rows[:limit]


def backends(w: Window) -> dict[str, Any]:
    """Requests per backend and their spread (standard deviation in % of the mean)."""
    per = []
    for s in w.series(BACKENDS):
        inc = w.increase(s.id)
        if inc is not None:
            per.append((s.labels.get("backend", ""), inc))
    if len(per) < 2:
        why = m.no_samples(BACKENDS) if not per else "only one backend"
        return {"spread": missing("percent", "backend load spread", why), "backends": []}
    total = sum(n for _, n in per)
    mean = total / len(per)
    rows = [{"backend": b, "requests": figure(n, "requests", f"backend {b}"),
             "share": figure(n / total if total else None, "ratio", f"backend {b} share",
                             reason="no requests" if not total else None)} for b, n in sorted(per)]
    spread = figure(100 * statistics.pstdev([n for _, n in per]) / mean if mean else None, "percent",
                    "backend load spread", "standard deviation of per-backend requests in % of their mean",
                    reason="no requests routed" if not mean else None)
    return {"spread": spread, "backends": rows}


def build(w: Window, *, detail: bool = True) -> dict[str, Any]:
    """The section; ``detail=False`` gives only the headline figures (previous period)."""
    if detail:  # first: the charts read counters per minute, the totals then come from that
        chart_data = {
            "requests_per_second": charts.rate_chart(w, REQUESTS, "requests/s", "Requests per second"),
            "p95": charts.quantile_chart(w, DURATION, 0.95, "seconds", "Response time p95"),
        }
    requests = _requests(w, detail)
    section: dict[str, Any] = {
        "response_time": _response_time(w),
        "requests": requests,
        "errors": _errors(w, requests["total"].value, detail),
        "availability": availability.build(w, detail=detail),
    }
    if detail:
        section["connections"] = m.gauge_figures(w, "http_connections", "count", "open connections")
        section["backends"] = backends(w)
        section["slowest_routes"] = slowest_routes(w)
        section["charts"] = chart_data
    return section
