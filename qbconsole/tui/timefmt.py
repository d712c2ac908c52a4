"""Times for people: "3s ago", "in 8s", "12:04:05" (local time)."""

from __future__ import annotations

import time


def span(ms: int) -> str:
    """A duration, coarsened to its largest unit: 850 -> "0s", 75_000 -> "1m15s", 7_200_000 -> "2h"."""
    seconds = max(0, int(ms // 1000))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if seconds and minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m" if minutes and hours < 10 else f"{hours}h"
    return f"{hours // 24}d"


def ago(ts_ms: int | None, now_ms: int) -> str:
    """How long before ``now_ms`` the instant was: "3s ago", "never"; a future time says "in 3s"."""
    if ts_ms is None:
        return "never"
    delta = now_ms - ts_ms
    return f"in {span(-delta)}" if delta < 0 else f"{span(delta)} ago"


def until(ts_ms: int, now_ms: int) -> str:
    """How long until the instant: "in 8s", or "3s ago" once it has passed."""
    delta = ts_ms - now_ms
    return f"in {span(delta)}" if delta >= 0 else f"{span(-delta)} ago"


def clock(ts_ms: int | None) -> str:
    """Local wall-clock time of an instant, "HH:MM:SS" ("--:--:--" when unknown)."""
    if ts_ms is None:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000))


def clock_minutes(ts_ms: int) -> str:
    """Local wall-clock time to the minute, "HH:MM" (chart axes)."""
    return time.strftime("%H:%M", time.localtime(ts_ms / 1000))


def day_label(ts_ms: int) -> str:
    """Local weekday and day of month, "Mon 05" (axes of multi-day charts)."""
    return time.strftime("%a %d", time.localtime(ts_ms / 1000))
