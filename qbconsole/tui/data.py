"""What the console shows, read from the store in one go into an immutable snapshot.

``read_snapshot`` runs in the poll worker thread (never the UI thread); screens
only ever see the frozen ``Snapshot`` it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from qbconsole.notify.outbox import Backlog, OutboxRow, backlog, notifications_for_alert
from qbconsole.store import LeaseInfo, SourceStatus, Store
from qbconsole.store.alerts import AlertEvent, AlertRow, Silence, current_alerts, events, get_alert, silences
from qbconsole.tui.groups import part_key
from qbconsole.tui.metricdata import (  # noqa: F401  (re-exported: the screens' and tests' names)
    LOOPBACK_NICS, PAIR, RATE_BUCKET_MS, WINDOW_MS, MetricWindow, SeriesSource, counter_rates, read_windows,
)

CPU = "system_cpu_percent"
MEMORY = "system_memory_percent"
DISK = "system_disk_percent"
NET_RX = "system_network_received_bytes_total"
NET_TX = "system_network_sent_bytes_total"


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
    metrics: Mapping[str, MetricWindow] = field(default_factory=dict)
    """The Overview figures' recent windows, by ``groups`` spec key (and part key)."""
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

    def metric(self, key: str, name: str = "") -> MetricWindow:
        """The window of an Overview figure (empty when it was not read)."""
        return self.metrics.get(key) or MetricWindow(name)

    @property
    def cpu(self) -> MetricWindow:
        return self.metric("cpu", CPU)

    @property
    def memory(self) -> MetricWindow:
        return self.metric("memory", MEMORY)

    @property
    def disk(self) -> MetricWindow:
        return self.metric("disk", DISK)

    @property
    def net_rx(self) -> MetricWindow:
        return self.metric("network", NET_RX)

    @property
    def net_tx(self) -> MetricWindow:
        return self.metric(part_key("network", PAIR), NET_TX)

    @property
    def sources_down(self) -> tuple[SourceStatus, ...]:
        return tuple(s for s in self.sources if not s.up)

    def silenced(self, alert: AlertRow) -> bool:
        """Whether an active silence matches the alert's labels."""
        return any(s.matches(alert.labels) for s in self.silences)


def read_detail(store: Store, alert_id: int) -> AlertDetail | None:
    """An alert, its events and its notifications (three indexed queries; only while a detail is open)."""
    conn = store.read()
    alert = get_alert(conn, alert_id)
    if alert is None:
        return None
    return AlertDetail(alert, tuple(events(conn, alert_id)), tuple(notifications_for_alert(conn, alert_id)))


def read_snapshot(store: Store, now_ms: int, window_ms: int = WINDOW_MS, *,
                  detail_id: int | None = None, metrics: SeriesSource | None = None) -> Snapshot:
    """Read everything the screens need; exceptions propagate (the caller reports them).

    The Overview figures cost one query per metric name (about 30, see ``metricdata``);
    alerts cost one query, active silences one (a small table) and the outbox backlog two
    indexed counts; ``detail_id`` adds the detail of one alert. ``metrics`` is where the
    figures are read from (default: the store; a PrometheusReader on that backend).
    """
    conn = store.read()
    return Snapshot(
        now_ms=now_ms,
        read_ms=now_ms,
        lease=store.lease_info(),
        sources=tuple(sorted(store.source_statuses(), key=lambda s: s.name)),
        metrics=read_windows(store if metrics is None else metrics, now_ms, window_ms),
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
