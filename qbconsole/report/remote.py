"""Reports on a Prometheus datasource: the same report code, over a scratch store filled from Prometheus.

With ``datasource: {kind: prometheus}`` the local store holds only qbconsole's own state
(alerts, acks, proposals...), not metrics. :func:`build_remote_report` opens a temporary
:class:`~qbconsole.store.Store` (deleted afterwards), copies the window's alerts and
acknowledgements into it, and runs the unchanged :func:`~qbconsole.report.build.build_report`
on it. The store fills itself one metric name at a time, the first time the report asks for
that name (:class:`~qbconsole.report.scratch.ScratchStore`), over the window, the previous
period and the counter look-back before it: Prometheus's per-minute count/sum/min/max of the
whole final minutes (the store's rollups, computed by Prometheus) and raw samples only where the
report reads raw samples (the partial and unfinished minutes at the edges; percentiles, shares
above a threshold and event series over the whole window). So both backends compute every
figure with the same code (rollups where exact, raw samples where needed) and agree, and only
what the report reads is fetched.

A minute is final once Prometheus has taken its last scrape: minutes that end ``SETTLE_MS``
before now (and before the window's end) are rolled up; the rest is read raw, as the local
store does with its unfinished minutes.
"""

from __future__ import annotations

import time

from qbconsole.report.build import Report, build_report
from qbconsole.report.scratch import SETTLE_MS, ScratchStore, final_until, roll_up
from qbconsole.report.window import COUNTER_LOOKBACK_MS
from qbconsole.store import Store

__all__ = ["SETTLE_MS", "ScratchStore", "build_remote_report", "copy_alerts", "fetch_range", "final_until",
           "roll_up"]


def fetch_range(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The samples a report over ``(start, end]`` reads: ``[lo, hi]`` (both inclusive) — the
    window, the previous period of equal length and a counter's baseline look-back before it."""
    return start_ms - (end_ms - start_ms) - COUNTER_LOOKBACK_MS, end_ms


def copy_alerts(source: Store, target: Store, lo: int, hi: int) -> int:
    """Copy the alerts that fired before ``hi`` and were not resolved before ``lo``, with their
    events, from ``source`` (the local store) to ``target``; returns the alerts copied."""
    conn = source.read()
    alerts = conn.execute("SELECT * FROM alerts WHERE fired_at IS NOT NULL AND fired_at <= ?"
                          " AND (resolved_at IS NULL OR resolved_at > ?)", (hi, lo))
    alert_cols = [d[0] for d in alerts.description]
    alert_rows = alerts.fetchall()
    ids = [row[0] for row in alert_rows]
    event_rows, event_cols = [], []
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        cur = conn.execute(f"SELECT * FROM alert_events WHERE alert_id IN ({','.join('?' * len(part))})", part)
        event_cols = [d[0] for d in cur.description]
        event_rows += cur.fetchall()

    def insert(tx) -> None:
        for table, cols, rows in (("alerts", alert_cols, alert_rows), ("alert_events", event_cols, event_rows)):
            if rows:
                tx.executemany(f"INSERT INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)

    target.transaction(insert)
    return len(alert_rows)


def build_remote_report(reader, local: Store | None, config, start_ms: int, end_ms: int, *,
                        now_ms: int | None = None, directory: str | None = None,
                        fetched: dict | None = None) -> Report:
    """The report for ``(start, end]`` with metrics from Prometheus (``reader``) and incidents
    from the local store (``local``; None: no incidents). The same :func:`build_report` computes
    it, over a :class:`ScratchStore` that is deleted before this returns. ``fetched``, when
    given, receives what was read from Prometheus: ``samples`` (raw), ``rollup_rows`` and ``names`` (the names read)."""
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    lo, hi = fetch_range(int(start_ms), int(end_ms))
    with ScratchStore(reader, lo, hi, now, directory) as scratch:
        if local is not None:
            copy_alerts(local, scratch.store, lo, hi)
        report = build_report(scratch, config, start_ms, end_ms, now_ms=now)
        if fetched is not None:
            fetched.update(samples=scratch.samples_fetched, rollup_rows=scratch.rollup_rows_fetched,
                           names=scratch.fetched)
        return report
