"""qbconsole's own ``/metrics``, in the Prometheus text format, for an existing Prometheus to scrape.

:class:`StoreCollector` is a prometheus_client custom collector (registered on
its own registry, never the global one) that reports, at each scrape:

* the store's latest sample of every series, typed from the metric catalogue
  (gauge, counter, histogram, summary; untyped when unknown), skipping
  samples older than ``stale_s`` and staleness markers, and skipping the names
  Prometheus makes itself for every target (``up``, ``scrape_*``);
* qbconsole's health: ``qbconsole_source_up`` and
  ``qbconsole_source_duration_seconds`` per source, the last rule-group
  evaluation (``qbconsole_rule_evaluation_duration_seconds``,
  ``qbconsole_rule_evaluation_failures``), the outbox backlog
  (``qbconsole_outbox_pending``, ``qbconsole_outbox_failed``), active alerts
  (``qbconsole_alerts``), and the lease (``qbconsole_lease_info{holder} 1``,
  ``qbconsole_lease_expiry_seconds``).

:class:`MetricsServer` serves it over HTTP (the agent runs one on
``settings.metrics_listen``); a bearer token is required when one is given,
and always on an address other than loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import re
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable, Mapping

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from qbconsole.catalog import describe
from qbconsole.notify.outbox import backlog
from qbconsole.store import Store

log = logging.getLogger("qbconsole.exporter")

STALE_S = 300.0  # Prometheus's lookback: older samples are not "current"
RESERVED = re.compile(r"^(up|scrape_.*)$")  # what Prometheus writes itself for every target
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

RULE_DURATION = "qbconsole_rule_evaluation_duration_seconds"
RULE_FAILURES = "qbconsole_rule_evaluation_failures"
HEALTH_NAMES = frozenset({
    "qbconsole_source_up", "qbconsole_source_duration_seconds", RULE_DURATION, RULE_FAILURES,
    "qbconsole_outbox_pending", "qbconsole_outbox_failed", "qbconsole_alerts",
    "qbconsole_lease_info", "qbconsole_lease_expiry_seconds",
})

# group -> (duration seconds, failed rules): the agent's last evaluation of each rule group.
RuleHealth = Callable[[], Mapping[str, tuple[float, int]]]


def _family(name: str) -> tuple[str, str]:
    """(family name, type) of a series name, from the catalogue."""
    info = describe(name)
    if info is None:
        return name, "unknown"
    if info.name != name:  # x_bucket / x_sum / x_count of histogram or summary x
        return info.name, info.kind
    if info.kind == "counter":
        return (name[:-6], "counter") if name.endswith("_total") else (name, "unknown")
    if info.kind in ("gauge", "summary"):
        return name, info.kind
    return name, "unknown"


def _gauge(name: str, doc: str, rows: Iterable[tuple[Mapping[str, str], float]]) -> Metric:
    metric = Metric(name, doc, "gauge")
    for labels, value in rows:
        metric.add_sample(name, dict(labels), float(value))
    return metric


class StoreCollector:
    """A custom collector over one store; see the module docstring."""

    def __init__(self, store: Store, *, rule_health: RuleHealth | None = None,
                 clock: Callable[[], float] = time.time, stale_s: float = STALE_S) -> None:
        self.store = store
        self.rule_health = rule_health
        self.clock = clock
        self.stale_ms = int(stale_s * 1000)

    def collect(self) -> Iterable[Metric]:
        now_ms = int(self.clock() * 1000)
        yield from self._samples(now_ms)
        yield from self._health(now_ms)

    # ---- the store's latest samples ----------------------------------------------------
    def _samples(self, now_ms: int) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for point in self.store.latest():
            name = point.series.name
            if (name in HEALTH_NAMES or RESERVED.match(name) or not _METRIC.match(name)
                    or math.isnan(point.value) or point.ts < now_ms - self.stale_ms):
                continue
            labels = {k: v for k, v in point.series.labels.items() if _LABEL.match(k) and not k.startswith("__")}
            family, kind = _family(name)
            metric = families.get(family)
            if metric is None:
                info = describe(name)
                doc = info.description if info is not None and info.name == family else f"{family} from the qbconsole store"
                metric = families[family] = Metric(family, doc, kind)
            if metric.type != kind:  # a name clash across kinds: keep the first
                continue
            metric.add_sample(name, labels, point.value)
        for name in sorted(families):
            yield families[name]

    # ---- qbconsole's health ---------------------------------------------------------------
    def _health(self, now_ms: int) -> Iterable[Metric]:
        conn = self.store.read()
        statuses = self.store.source_statuses()
        yield _gauge("qbconsole_source_up", "Last collection of a source succeeded (1) or not (0)",
                     (({"source": s.name}, 1.0 if s.up else 0.0) for s in statuses))
        yield _gauge("qbconsole_source_duration_seconds", "Time the last collection of a source took",
                     (({"source": s.name}, s.duration_s) for s in statuses if s.duration_s is not None))
        rules = self._rule_health(now_ms)
        yield _gauge(RULE_DURATION, "Time the last evaluation of a rule group took",
                     (({"group": g}, d) for g, (d, _) in sorted(rules.items())))
        yield _gauge(RULE_FAILURES, "Rules of a group that failed at the last evaluation",
                     (({"group": g}, f) for g, (_, f) in sorted(rules.items())))
        pending = backlog(conn)
        yield _gauge("qbconsole_outbox_pending", "Notifications waiting to be delivered", [({}, pending.pending)])
        yield _gauge("qbconsole_outbox_failed", "Notifications given up on", [({}, pending.failed)])
        counts = conn.execute("SELECT state, severity, source, count(*) FROM alerts"
                              " WHERE state IN ('pending', 'firing') GROUP BY state, severity, source").fetchall()
        yield _gauge("qbconsole_alerts", "Active alerts by state, severity and where they come from",
                     (({"state": st, "severity": sev, "source": src}, n) for st, sev, src, n in counts))
        lease = self.store.lease_info()
        held = lease is not None and lease.expires > now_ms
        yield _gauge("qbconsole_lease_info", "Who holds the agent lease (the agent doing the work)",
                     [({"holder": lease.holder}, 1.0)] if held else [])
        yield _gauge("qbconsole_lease_expiry_seconds", "When the current lease expires unless renewed (Unix time)",
                     [({}, lease.expires / 1000)] if held else [])

    def _rule_health(self, now_ms: int) -> Mapping[str, tuple[float, int]]:
        if self.rule_health is not None:
            return self.rule_health()
        # Without an agent at hand, the last evaluation samples the agent wrote to the store.
        out: dict[str, list[float]] = defaultdict(lambda: [math.nan, 0.0])
        for index, name in enumerate((RULE_DURATION, RULE_FAILURES)):
            for point in self.store.latest(name):
                if point.ts >= now_ms - self.stale_ms and not math.isnan(point.value):
                    out[point.series.labels.get("group", "")][index] = point.value
        return {g: (d, int(f)) for g, (d, f) in out.items() if not math.isnan(d)}


def registry_for(collector: StoreCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        token = self.server.token
        if token is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                self._reply(401, b"bearer token required\n", "text/plain; charset=utf-8",
                            {"WWW-Authenticate": "Bearer"})
                return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = generate_latest(self.server.registry)
            except Exception as exc:  # a store problem: say so, keep serving
                log.error("metrics collection failed: %s", type(exc).__name__)
                self._reply(500, f"collection failed: {type(exc).__name__}\n".encode(), "text/plain; charset=utf-8")
                return
            self._reply(200, body, CONTENT_TYPE_PLAIN_0_0_4)  # what every Prometheus 2.x reads
        elif path == "/":
            self._reply(200, b"qbconsole: metrics at /metrics\n", "text/plain; charset=utf-8")
        else:
            self._reply(404, b"not found\n", "text/plain; charset=utf-8")

    def _reply(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("metrics %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, registry: CollectorRegistry, token: str | None) -> None:
        self.registry = registry
        self.token = token
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """A scraper that hung up mid-answer is not worth a traceback on stderr."""
        log.debug("metrics request from %s failed", client_address[0], exc_info=True)


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (port 0 picks a free one) in a thread of its own.

    Raises ValueError for a non-loopback host without a token.
    """

    def __init__(self, collector: StoreCollector, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        if not is_loopback(host) and not token:
            raise ValueError(f"/metrics on {host} (not loopback) needs a bearer token")
        self._server = _Server((host.strip("[]"), port), registry_for(collector), token or None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="qbconsole-metrics", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/metrics"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
