"""The business and user-experience sections.

Business figures are counter increases over the window. Definitions:

* conversion rate = orders ÷ sessions started;
* average order value = revenue ÷ orders;
* revenue per user = revenue ÷ average active users (``quickbid_active_users``);
* funnel browse → bid → checkout = sessions started → bids placed → orders
  completed. These are event counts, not distinct people: a session may place
  several bids, so a step can exceed 100 % of the one before.

User experience comes from real-user events, one sample per event: page load and
interaction percentiles are exact over the raw samples; bounce rate, session
duration, satisfaction and task completion are means; NPS is the share of scores
9–10 minus the share of 0–6, × 100.
"""

from __future__ import annotations

from typing import Any

from qbconsole.report import measures as m
from qbconsole.report.figures import NPS, Figure, figure, missing, ratio
from qbconsole.report.window import Window, merge
from qbconsole.store.queries import quantile_of_sorted

FUNNEL = (("browse", "quickbid_sessions_total", "sessions started"),
          ("bid", "quickbid_bids_total", "bids placed"),
          ("checkout", "quickbid_orders_total", "orders completed"))
FUNNEL_DEFINITION = ("sessions started → bids placed → orders completed (increases of the counters); "
                     "event counts, not distinct users, so a step can exceed 100 % of the previous one")
TOP_PAGES = 10


def build_business(w: Window, *, detail: bool = True) -> dict[str, Any]:
    """The section; ``detail=False`` gives only the headline figures (previous period)."""
    signups = m.counter_figure(w, "quickbid_signups_total", "count", "new users")
    sessions = m.counter_figure(w, "quickbid_sessions_total", "count", "sessions")
    orders = m.counter_figure(w, "quickbid_orders_total", "count", "orders")
    revenue = m.counter_figure(w, "quickbid_revenue_total", "currency", "revenue")
    active = m.gauge_figures(w, "quickbid_active_users", "count", "active users")
    out: dict[str, Any] = {"new_users": signups, "active_users": active, "sessions": sessions}
    if detail:
        out["bids"] = bids = m.counter_figure(w, "quickbid_bids_total", "count", "bids")
    out["orders"] = orders
    out["revenue"] = revenue
    out["average_order_value"] = ratio(revenue, orders, "currency", "average order value", "revenue ÷ orders")
    if detail:
        out["revenue_per_user"] = ratio(revenue, active["average"], "currency", "revenue per user",
                                        "revenue ÷ average active users")
    out["conversion_rate"] = ratio(orders, sessions, "ratio", "conversion rate", "orders ÷ sessions started")
    if detail:
        steps, before = [], None
        for (step, metric, what), fig in zip(FUNNEL, (sessions, bids, orders)):
            row: dict[str, Any] = {"step": step, "metric": metric, "count": _relabel(fig, what)}
            if before is not None:
                row["from_previous"] = ratio(fig, before, "ratio", f"{step} ÷ previous step",
                                             "this step's count ÷ the previous step's")
            steps.append(row)
            before = fig
        out["funnel"] = {"definition": FUNNEL_DEFINITION, "steps": steps}
    return out


def _relabel(fig: Figure, label: str) -> Figure:
    return Figure(fig.value, fig.unit, label, fig.method, fig.reason)


def _mean(w: Window, name: str, unit: str, label: str) -> Figure:
    """The mean of an event series, from its raw samples (events may arrive late)."""
    st = merge([w.raw_stats(s.id) for s in w.series(name)])
    if st is None:
        return missing(unit, label, m.no_raw_samples(w, name))
    return figure(st.mean, unit, label, f"mean of {m.count_text(st.count)} raw samples of {name}")


def nps(w: Window) -> dict[str, Figure]:
    name = "rum_nps_score"
    promoters = detractors = total = 0
    for s in w.series(name):
        p, d, n = w.conn.execute(
            "SELECT sum(value >= 9), sum(value <= 6), count(*) FROM samples WHERE series_id = ?"
            " AND ts BETWEEN ? AND ? AND typeof(value) = 'real'", (s.id, w.start + 1, w.end)).fetchone()
        promoters, detractors, total = promoters + (p or 0), detractors + (d or 0), total + n
    if not total:
        why = m.no_raw_samples(w, name)
        return {"nps": missing(NPS, "net promoter score", why), "nps_responses": missing("count", "NPS answers", why)}
    method = (f"{promoters} promoters (9–10) and {detractors} detractors (0–6) of {total} answers: "
              "(promoters − detractors) ÷ answers × 100")
    return {"nps": figure(100 * (promoters - detractors) / total, NPS, "net promoter score", method),
            "nps_responses": figure(total, "count", "NPS answers", "raw samples of rum_nps_score")}


def _pages(w: Window) -> list[dict[str, Any]]:
    name = "rum_page_load_seconds"
    pages = sorted({s.labels.get("page", "") for s in w.series(name)})
    rows = []
    for page in pages:
        values: list[float] = []
        for s in w.series(name):
            if s.labels.get("page", "") == page:
                values.extend(w.sorted_values(s.id))
        values.sort()  # sorted runs: a merge
        if not values:
            continue
        p75 = figure(quantile_of_sorted(values, 0.75), "seconds", f"{page} page load p75",
                     f"exact from {m.count_text(len(values))} raw samples of {name}")
        rows.append({"page": page, "p75": p75, "views": figure(len(values), "count", f"{page} page views")})
    rows.sort(key=lambda r: -r["p75"].value)
    return rows[:TOP_PAGES]


def build_experience(w: Window, *, detail: bool = True) -> dict[str, Any]:
    def exact(name: str, qs: dict[str, float], what: str) -> dict[str, Figure]:
        found = m.exact_quantiles(w, name, qs, "seconds", what)
        return found or {k: missing("seconds", f"{what} {k}", m.no_raw_samples(w, name)) for k in qs}

    page_load = exact("rum_page_load_seconds", {"p75": 0.75, "p95": 0.95}, "page load")
    if not detail:
        return {"page_load": page_load, **nps(w)}
    page_load["pages"] = _pages(w)
    return {
        "page_load": page_load,
        "interaction": exact("rum_interaction_seconds", {"p75": 0.75}, "interaction"),
        "bounce_rate": _mean(w, "rum_bounce", "ratio", "bounce rate"),
        "session_duration": _mean(w, "rum_session_duration_seconds", "seconds", "session duration average"),
        "satisfaction": _mean(w, "rum_satisfaction_score", "score", "satisfaction (1–5)"),
        "task_completion": _mean(w, "rum_task_completed", "ratio", "task completion rate"),
        **nps(w),
    }
