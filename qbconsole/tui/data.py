"""What the console shows, read from the store in one go into an immutable snapshot.

``read_snapshot`` runs in the poll worker thread (never the UI thread); screens
only ever see the frozen ``Snapshot`` it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from qbconsole.notify.outbox import Backlog, OutboxRow, backlog, notifications_for_alert
from qbconsole.store import LeaseInfo, SourceStatus, Store
from qbconsole.store.alerts import AlertEvent, AlertRow, Silence, current_alerts, events, get_alert, silences

WINDOW_MS = 15 * 60 * 1000
"""How much history the Overview charts show."""

RATE_BUCKET_MS = 10_000
"""Counter rates are summed across NICs in buckets this wide (a collector tick's spread)."""

LOOPBACK_NICS = frozenset({"lo", "lo0"})
"""Loopback traffic is local chatter, not what leaves the machine; it is left out of the network tile."""

CPU = "system_cpu_percent"
MEMORY = "system_memory_percent"
DISK = "system_disk_percent"
NET_RX = "system_network_received_bytes_total"
NET_TX = "system_network_sent_bytes_total"

Points = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class MetricWindow:
    """The recent history of one figure: ``points`` are (ts ms, value), oldest first."""

    name: str
    points: Points = ()
    label: str = ""
    """Which series, when the metric has several (e.g. the mount of the disk tile)."""

    @property
    def latest(self) -> tuple[int, float] | None:
        return self.points[-1] if self.points else None

    @property
    def average(self) -> float | None:
        values = [v for _, v in self.points]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class AlertDetail:
    """One alert with its state history and every notification that carried it."""

    alert: AlertRow
    events: tuple[AlertEvent, ...] = ()
    notifications: tuple[OutboxRow, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything the screens show, as of ``now_ms``; ``error`` is set when the last read failed."""

    now_ms: int
    read_ms: int | None = None
    """When the data below was last read successfully (None: never)."""
    lease: LeaseInfo | None = None
    sources: tuple[SourceStatus, ...] = ()
    cpu: MetricWindow = field(default_factory=lambda: MetricWindow(CPU))
    memory: MetricWindow = field(default_factory=lambda: MetricWindow(MEMORY))
    disk: MetricWindow = field(default_factory=lambda: MetricWindow(DISK))
    net_rx: MetricWindow = field(default_factory=lambda: MetricWindow(NET_RX))
    net_tx: MetricWindow = field(default_factory=lambda: MetricWindow(NET_TX))
    alerts: tuple[AlertRow, ...] = ()
    """Active alerts and those resolved in the last 15 minutes, in the store's feed order."""
    silences: tuple[Silence, ...] = ()
    """Silences active at ``now_ms``."""
    backlog: Backlog | None = None
    """The notification outbox: pending, oldest pending, failed."""
    detail_id: int | None = None
    """The alert whose detail was asked for (the detail screen's), if any."""
    detail: AlertDetail | None = None
    """That alert's detail; None when none was asked for or it no longer exists."""
    error: str | None = None

    @property
    def sources_down(self) -> tuple[SourceStatus, ...]:
        return tuple(s for s in self.sources if not s.up)

    def silenced(self, alert: AlertRow) -> bool:
        """Whether an active silence matches the alert's labels."""
        return any(s.matches(alert.labels) for s in self.silences)


def _finite(points: Iterable[tuple[int, float]]) -> Points:
    """Drop NaNs (staleness markers and NaN samples): they are gaps, not values."""
    return tuple((int(ts), float(v)) for ts, v in points if not math.isnan(v))


def _gauge(store: Store, name: str, start: int, end: int) -> MetricWindow:
    """A gauge with one series (or the first of several)."""
    for _series, points in store.select(name, start, end):
        return MetricWindow(name, _finite(points))
    return MetricWindow(name)


def _fullest(store: Store, name: str, start: int, end: int, label: str) -> MetricWindow:
    """Of a gauge with one series per ``label`` value, the series whose latest value is highest."""
    best: MetricWindow | None = None
    for series, points in store.select(name, start, end):
        window = MetricWindow(name, _finite(points), series.labels.get(label, ""))
        if window.latest is None:
            continue
        if best is None or window.latest[1] > best.latest[1]:  # type: ignore[index]
            best = window
    return best or MetricWindow(name)


def counter_rates(points: Sequence[tuple[int, float]]) -> Points:
    """Per-second rates between consecutive counter samples, stamped at the later sample.

    A decrease is a counter reset: the new value is the increase since the reset,
    as Prometheus's ``rate`` assumes.
    """
    rates = []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t1 <= t0:
            continue
        increase = v1 - v0 if v1 >= v0 else v1
        rates.append((t1, increase * 1000.0 / (t1 - t0)))
    return tuple(rates)


def summed_rate(store: Store, name: str, start: int, end: int) -> MetricWindow:
    """The total per-second rate of a byte counter over all non-loopback NICs.

    NICs are sampled at slightly different instants, so per-NIC rates are put in
    ``RATE_BUCKET_MS`` buckets (averaged per NIC) and the buckets summed.
    When recording rules exist (``rate(...[1m])`` in rules.yaml), read those instead.
    """
    buckets: dict[int, float] = {}
    stamps: dict[int, int] = {}
    for series, points in store.select(name, start, end):
        if series.labels.get("nic") in LOOPBACK_NICS:
            continue
        per_bucket: dict[int, list[float]] = {}
        for ts, rate in counter_rates(_finite(points)):
            key = ts // RATE_BUCKET_MS
            per_bucket.setdefault(key, []).append(rate)
            stamps[key] = max(stamps.get(key, ts), ts)
        for key, rates in per_bucket.items():
            buckets[key] = buckets.get(key, 0.0) + sum(rates) / len(rates)
    return MetricWindow(name, tuple((stamps[k], buckets[k]) for k in sorted(buckets)))


def read_detail(store: Store, alert_id: int) -> AlertDetail | None:
    """An alert, its events and its notifications (three indexed queries; only while a detail is open)."""
    conn = store.read()
    alert = get_alert(conn, alert_id)
    if alert is None:
        return None
    return AlertDetail(alert, tuple(events(conn, alert_id)), tuple(notifications_for_alert(conn, alert_id)))


def read_snapshot(store: Store, now_ms: int, window_ms: int = WINDOW_MS, *,
                  detail_id: int | None = None) -> Snapshot:
    """Read everything the screens need; exceptions propagate (the caller reports them).

    Alerts cost one query, active silences one (a small table) and the outbox backlog two
    indexed counts; ``detail_id`` adds the detail of one alert.
    """
    start = now_ms - window_ms
    conn = store.read()
    return Snapshot(
        now_ms=now_ms,
        read_ms=now_ms,
        lease=store.lease_info(),
        sources=tuple(sorted(store.source_statuses(), key=lambda s: s.name)),
        cpu=_gauge(store, CPU, start, now_ms),
        memory=_gauge(store, MEMORY, start, now_ms),
        disk=_fullest(store, DISK, start, now_ms, "mount"),
        net_rx=summed_rate(store, NET_RX, start, now_ms),
        net_tx=summed_rate(store, NET_TX, start, now_ms),
        alerts=tuple(current_alerts(conn, now_ms)),
        silences=tuple(silences(conn, now_ms)),
        backlog=backlog(conn),
        detail_id=detail_id,
        detail=read_detail(store, detail_id) if detail_id is not None else None,
    )


def failed_snapshot(previous: Snapshot | None, now_ms: int, error: BaseException) -> Snapshot:
    """The last good data (if any) marked with the read error, so screens keep their content."""
    message = f"{type(error).__name__}: {error}".strip().rstrip(":")
    if previous is None:
        return Snapshot(now_ms=now_ms, error=message)
    return replace(previous, now_ms=now_ms, error=message)
