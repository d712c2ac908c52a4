"""Availability from HTTP probe results (``probe_success{target}``, 1 up / 0 down).

Assumption, stated in the report: each probe result stands for one probe interval,
the median spacing of the target's newest samples. So, per target,

    downtime    = failed probes x interval
    uptime      = successful probes x interval
    unmonitored = window - (uptime + downtime)   (never below 0)
    availability = uptime / (uptime + downtime)  = the share of successful probes

With several targets, uptime, downtime and unmonitored time are their means (so
they add up to the window) and availability is uptime over probed time of all of them.

Counts come from rollups (exact: a minute's sum is its successful probes). Outages
(runs of failed probes) are read raw, only for the minutes that had a failure.
"""

from __future__ import annotations

import statistics
from typing import Any

from qbconsole.report import measures as m
from qbconsole.report.figures import TIMESTAMP, figure, iso, missing
from qbconsole.report.window import MINUTE, Window

METRIC = "probe_success"
MAX_OUTAGE_MINUTES = 2000  # outages are listed only when failures touch fewer minutes
MAX_OUTAGES = 10


def _interval_ms(w: Window, sid: int) -> tuple[float | None, str]:
    """The probe interval: the median gap of the newest raw samples; where raw samples are
    purged, a minute divided by the median number of probes per minute (from rollups)."""
    gaps = [g for g in w.recent_spacing(sid) if g > 0]
    if gaps:
        return float(statistics.median(gaps)), "median spacing of the newest probe samples"
    counts = w.minutes(sid).counts
    if counts:
        return MINUTE / statistics.median(counts), "a minute ÷ the median probes per minute (rollups)"
    return None, ""


def _outages(w: Window, sid: int) -> list[tuple[int, int, int]]:
    """(first failed ts, last failed ts, failed probes) for each run of failures."""
    mm = w.minutes(sid)
    failing = [t for t, n, ok in zip(mm.minutes, mm.counts, mm.sums) if ok < n]  # a failure in that minute
    if not failing or len(failing) > MAX_OUTAGE_MINUTES:
        return []
    runs: list[list[int]] = []
    last_ok = True
    prev_minute = None
    for minute in failing:
        if prev_minute is not None and minute != prev_minute + MINUTE:
            last_ok = True  # a gap of whole minutes without failure ends a run
        for ts, v in w.conn.execute("SELECT ts, value FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ?"
                                    " AND typeof(value) = 'real' ORDER BY ts",
                                    (sid, max(minute, w.start + 1), min(minute + MINUTE - 1, w.end))):
            if v < 1:
                if last_ok:
                    runs.append([ts, ts, 0])
                runs[-1][1] = ts
                runs[-1][2] += 1
                last_ok = False
            else:
                last_ok = True
        prev_minute = minute
    return [tuple(r) for r in runs]


def build(w: Window, *, detail: bool = True) -> dict[str, Any]:
    targets, outages = [], []
    total_up = total_down = 0.0
    probes = failed = 0
    intervals = []
    for s in w.series(METRIC):
        st = w.stats(s.id)
        if st is None:
            continue
        interval, how = _interval_ms(w, s.id)
        if interval is None:
            continue
        ok = st.sum
        bad = st.count - st.sum
        up, down = ok * interval / 1000, bad * interval / 1000
        name = s.labels.get("target", "") or ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        targets.append({
            "target": name,
            "availability": figure(ok / st.count, "ratio", f"{name} availability", "successful probes ÷ probes"),
            "uptime": figure(up, "seconds", f"{name} uptime", "successful probes × probe interval"),
            "downtime": figure(down, "seconds", f"{name} downtime", "failed probes × probe interval"),
            "probe_interval": figure(interval / 1000, "seconds", f"{name} probe interval", how),
        })
        total_up, total_down = total_up + up, total_down + down
        probes, failed = probes + st.count, failed + int(bad)
        intervals.append(interval)
        if detail:
            for first, last, n in _outages(w, s.id):
                when = iso(first)[:16].replace("T", " ")
                outages.append({"target": name,
                                "start": figure(first, TIMESTAMP, "outage start"),
                                "end": figure(last + interval, TIMESTAMP, "outage end",
                                              "last failed probe + one interval"),
                                "duration": figure(n * interval / 1000, "seconds", f"{name} outage at {when} UTC",
                                                   f"{n} failed probes × probe interval")})
    assumption = ("each probe result stands for one probe interval (the median spacing of the "
                  "target's newest samples); downtime = failed probes × interval")
    if not targets:
        why = m.no_samples(METRIC)
        return {key: missing(unit, label, why) for key, unit, label in (
            ("availability", "ratio", "availability"), ("uptime", "seconds", "uptime"),
            ("downtime", "seconds", "downtime"))} | {"assumption": assumption}
    n = len(targets)
    per = f"mean over {n} targets" if n > 1 else f"target {targets[0]['target']}"
    out: dict[str, Any] = {
        "availability": figure(total_up / (total_up + total_down), "ratio", "availability",
                               f"uptime ÷ probed time ({m.count_text(probes - failed)} of "
                               f"{m.count_text(probes)} probes succeeded)"),
        "uptime": figure(total_up / n, "seconds", "uptime", f"successful probes × probe interval, {per}"),
        "downtime": figure(total_down / n, "seconds", "downtime", f"failed probes × probe interval, {per}"),
        "unmonitored": figure(max(0.0, w.seconds - (total_up + total_down) / n), "seconds", "unmonitored time",
                              f"window − probed time, {per}"),
        "probes": figure(probes, "count", "probes"),
        "failed_probes": figure(failed, "count", "failed probes"),
        "assumption": assumption,
        "targets": targets,
    }
    if detail:
        outages.sort(key=lambda o: -o["duration"].value)
        out["outages"] = outages[:MAX_OUTAGES]
    return out
