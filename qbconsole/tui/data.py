"""What the console shows, read from the store in one go into an immutable snapshot.

``read_snapshot`` runs in the poll worker thread (never the UI thread); screens
only ever see the frozen ``Snapshot`` it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from qbconsole.notify.outbox import Backlog, OutboxRow, backlog, notifications_for_alert
from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.store import LeaseInfo, SourceStatus, Store
from qbconsole.store.alerts import AlertEvent, AlertRow, Silence, current_alerts, events, get_alert, silences
from qbconsole.tui.groups import part_key
from qbconsole.tui.metricdata import (  # noqa: F401  (re-exported: the screens' and tests' names)
    LOOPBACK_NICS, PAIR, RATE_BUCKET_MS, WINDOW_MS, MetricWindow, SeriesSource, counter_rates, read_windows,
)
from qbconsole.tui.windowmemo import WindowMemo  # noqa: F401  (re-exported for the poll)

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
class Figures:
    """The Overview's figures as last read from their source (the store, or Prometheus)."""

    windows: Mapping[str, MetricWindow] = field(default_factory=dict)
    read_ms: int | None = None
    """When they were read successfully (None: never)."""
    error: str | None = None
    """Why the last read failed (the windows are then the previous ones)."""


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip().rstrip(":")


def read_figures(source: SeriesSource, now_ms: int, window_ms: int = WINDOW_MS,
                 previous: Figures | None = None) -> Figures:
    """Read the figures; a failure keeps ``previous``'s windows and says why (never raises)."""
    try:
        return Figures(read_windows(source, now_ms, window_ms), now_ms)
    except PromQLEvalError as exc:  # the datasource's own message says it all
        return replace(previous or Figures(), error=str(exc) or error_text(exc))
    except Exception as exc:  # shown on the status line; the last figures stay
        return replace(previous or Figures(), error=error_text(exc))


FIGURES_WAIT_S = 0.5
"""How long a poll waits for figures being read elsewhere before showing the last ones."""


class FiguresReader:
    """Reads the figures from a remote source in one thread of its own, one read at a time.

    ``figures(now_ms, wait_s)`` starts a read unless one is under way, waits up to
    ``wait_s`` for it, and returns the latest figures: the new ones, or the previous ones
    while a slow read goes on (the next call picks its result up).
    """

    def __init__(self, source: SeriesSource, window_ms: int = WINDOW_MS) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.source = source
        self.window_ms = window_ms
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="qbconsole-figures")
        self._pending = None
        self._latest = Figures()

    def figures(self, now_ms: int, wait_s: float) -> Figures:
        from concurrent.futures import TimeoutError as Pending

        if self._pending is None:
            self._pending = self._pool.submit(read_figures, self.source, now_ms, self.window_ms, self._latest)
        try:
            self._latest = self._pending.result(timeout=wait_s)
            self._pending = None
        except Pending:
            pass
        return self._latest

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


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
    metrics_ms: int | None = None
    """When those were read (they can be older than ``read_ms`` when their source fails)."""
    metrics_error: str | None = None
    """Why the figures' last read failed (a Prometheus datasource that does not answer)."""
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
                  detail_id: int | None = None, metrics: SeriesSource | None = None,
                  figures: Figures | None = None, memo: WindowMemo | None = None) -> Snapshot:
    """Read everything the screens need; a store failure propagates (the caller reports it).

    The Overview figures cost one query per metric name (about 30, see ``metricdata``);
    alerts cost one query, active silences one (a small table) and the outbox backlog two
    indexed counts; ``detail_id`` adds the detail of one alert. ``metrics`` is where the
    figures are read from (default: the store; a PrometheusReader on that backend), unless
    ``figures`` were already read (the console reads Prometheus in a thread of its own, so
    that a slow or dead Prometheus never holds up the store's alerts, lease and sources).
    ``memo`` is the poll worker's ``WindowMemo``: each poll then derives the figures only from
    the points new since the previous one (the same figures).
    """
    conn = store.read()
    if figures is None:  # read here: a failure fails the snapshot (on the store, it is a store failure)
        figures = Figures(read_windows(store if metrics is None else metrics, now_ms, window_ms, memo=memo), now_ms)
    return Snapshot(
        now_ms=now_ms,
        read_ms=now_ms,
        lease=store.lease_info(),
        sources=tuple(sorted(store.source_statuses(), key=lambda s: s.name)),
        metrics=figures.windows,
        metrics_ms=figures.read_ms,
        metrics_error=figures.error,
        alerts=tuple(current_alerts(conn, now_ms)),
        silences=tuple(silences(conn, now_ms)),
        backlog=backlog(conn),
        detail_id=detail_id,
        detail=read_detail(store, detail_id) if detail_id is not None else None,
    )


def failed_snapshot(previous: Snapshot | None, now_ms: int, error: BaseException) -> Snapshot:
    """The last good data (if any) marked with the read error, so screens keep their content."""
    message = error_text(error)
    if previous is None:
        return Snapshot(now_ms=now_ms, error=message)
    return replace(previous, now_ms=now_ms, error=message)
