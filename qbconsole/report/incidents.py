"""Incidents: alerts that were firing at some time in the window, with MTTA and MTTR.

An incident is one alert row that fired (``fired_at``) before the window's end and
was not resolved before its start. Time to acknowledge is from firing to the first
``acknowledged`` event (0 when acknowledged while still pending); time to resolve
is from firing to ``resolved_at``. MTTA and MTTR average the incidents that began
firing inside the window (those carried over from before are listed, not averaged).
"""

from __future__ import annotations

import json
from typing import Any

from qbconsole.report.figures import TIMESTAMP, figure, missing
from qbconsole.report.window import Window
from qbconsole.store.alerts import SEVERITY_ORDER


def _rows(w: Window) -> list[tuple]:
    return w.conn.execute(
        "SELECT id, rule, labels, severity, fired_at, resolved_at, source FROM alerts"
        " WHERE fired_at IS NOT NULL AND fired_at <= ? AND (resolved_at IS NULL OR resolved_at > ?)"
        " ORDER BY fired_at, id", (w.end, w.start)).fetchall()


def _first_acks(w: Window, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return dict(w.conn.execute(
        f"SELECT alert_id, min(ts) FROM alert_events WHERE kind = 'acknowledged' AND alert_id IN ({marks})"
        " GROUP BY alert_id", ids).fetchall())


def _mean(values: list[float], label: str, what: str) -> Any:
    if not values:
        return missing("seconds", label, f"no incident that began in the window was {what}")
    return figure(sum(values) / len(values), "seconds", label, f"mean over {len(values)} incidents")


def build(w: Window, *, detail: bool = True) -> dict[str, Any]:
    rows = _rows(w)
    acks = _first_acks(w, [r[0] for r in rows])
    items, tta, ttr = [], [], []
    by_severity: dict[str, int] = {}
    for alert_id, rule, labels, severity, fired, resolved, source in rows:
        began_inside = fired > w.start
        ack = acks.get(alert_id)
        t_ack = None if ack is None else max(0, ack - fired) / 1000
        t_res = None if resolved is None else (resolved - fired) / 1000
        if began_inside:
            by_severity[severity] = by_severity.get(severity, 0) + 1
            if t_ack is not None:
                tta.append(t_ack)
            if t_res is not None:
                ttr.append(t_res)
        end = resolved if resolved is not None else None
        items.append({
            "id": alert_id,
            "alert": rule,
            "labels": {k: v for k, v in json.loads(labels).items() if k not in ("alertname", "severity")},
            "severity": severity,
            "source": source,
            "start": figure(fired, TIMESTAMP, "fired"),
            "end": figure(end, TIMESTAMP, "resolved") if end is not None else "ongoing",
            "duration": figure(((resolved if resolved is not None else w.now) - fired) / 1000, "seconds",
                               "duration", "until resolved" if resolved is not None else "until now (ongoing)"),
            "time_to_acknowledge": figure(t_ack, "seconds", "time to acknowledge",
                                          reason="not acknowledged" if t_ack is None else None),
            "time_to_resolve": figure(t_res, "seconds", "time to resolve",
                                      reason="not resolved (ongoing)" if t_res is None else None),
            "began_before_window": not began_inside,
        })
    items.sort(key=lambda i: (SEVERITY_ORDER.get(i["severity"], 9), i["start"].value))
    began = sum(by_severity.values())
    out: dict[str, Any] = {
        "count": figure(began, "count", "incidents that began in the window"),
        "ongoing_from_before": figure(len(items) - began, "count", "incidents carried over from before"),
        "by_severity": {k: figure(v, "count", f"{k} incidents") for k, v in
                        sorted(by_severity.items(), key=lambda kv: SEVERITY_ORDER.get(kv[0], 9))},
        "mtta": _mean(tta, "mean time to acknowledge (MTTA)", "acknowledged"),
        "mttr": _mean(ttr, "mean time to resolve (MTTR)", "resolved"),
        "unacknowledged": figure(began - len(tta), "count", "incidents never acknowledged"),
    }
    if detail:
        out["items"] = items
    return out
