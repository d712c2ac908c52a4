"""The platform's Prometheus series (names from METRICS.md "Platform") on a private registry.

prometheus_client appends ``_total`` to counter names, so ``Counter("http_requests")``
is exposed as ``http_requests_total``.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from qbconsole.demo.capacity import BACKENDS

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class PlatformMetrics:
    """Every series the QuickBid platform exports; gauges of live state read callbacks at scrape."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter("http_requests", "HTTP requests by route template, method and status",
                                     ["route", "method", "status"], registry=r)
        self.http_duration = Histogram("http_request_duration_seconds",
                                       "Request latency including the wait for a worker", ["route"],
                                       buckets=HTTP_BUCKETS, registry=r)
        self.http_connections = Gauge("http_connections", "HTTP requests in flight", registry=r)
        self.active_users = Gauge("quickbid_active_users", "Sessions active in the last 5 minutes", registry=r)
        self.db_duration = Histogram("db_query_duration_seconds", "Database statement duration by query name",
                                     ["query"], buckets=DB_BUCKETS, registry=r)
        self.db_connections = Gauge("db_connections", "Database connections in use", registry=r)
        self.cache_hits = Counter("cache_hits", "Auction view cache hits", registry=r)
        self.cache_misses = Counter("cache_misses", "Auction view cache misses", registry=r)
        self.cache_size = Gauge("cache_size", "Entries in the auction view cache", registry=r)
        self.workers = Gauge("quickbid_workers", "Size of the worker pool", registry=r)
        self.workers_busy = Gauge("quickbid_workers_busy", "Workers doing a request now", registry=r)
        self.request_queue = Gauge("quickbid_request_queue", "Requests waiting for a worker", registry=r)
        self.backend_weight = Gauge("quickbid_backend_weight", "Routing weight per backend", ["backend"],
                                    registry=r)
        self.backend_requests = Counter("quickbid_backend_requests", "Requests routed per backend",
                                        ["backend"], registry=r)
        self.signups = Counter("quickbid_signups", "Accounts created", registry=r)
        self.sessions = Counter("quickbid_sessions", "Sessions started by a successful login", registry=r)
        self.active_auctions = Gauge("quickbid_active_auctions", "Auctions open for bids", registry=r)
        self.bids = Counter("quickbid_bids", "Bids accepted", registry=r)
        self.orders = Counter("quickbid_orders", "Orders checked out", registry=r)
        self.revenue = Counter("quickbid_revenue", "Order value checked out", registry=r)
        self.login_failures = Counter("quickbid_login_failures", "Logins refused for bad credentials",
                                      registry=r)
        self.rate_limited = Counter("quickbid_rate_limited", "Requests refused by the rate limiter",
                                    registry=r)
        for backend in BACKENDS:
            self.backend_requests.labels(backend)

    def bind(self, *, active_users: Callable[[], float], active_auctions: Callable[[], float],
             cache_size: Callable[[], float], workers: Callable[[], float],
             workers_busy: Callable[[], float], request_queue: Callable[[], float],
             db_connections: Callable[[], float], backend_weight: Callable[[str], float]) -> None:
        """Read live state at scrape time instead of mirroring it on every change."""
        self.active_users.set_function(active_users)
        self.active_auctions.set_function(active_auctions)
        self.cache_size.set_function(cache_size)
        self.workers.set_function(workers)
        self.workers_busy.set_function(workers_busy)
        self.request_queue.set_function(request_queue)
        self.db_connections.set_function(db_connections)
        for backend in BACKENDS:
            self.backend_weight.labels(backend).set_function(lambda b=backend: backend_weight(b))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route).observe(seconds)

    def observe_query(self, name: str, seconds: float) -> None:
        self.db_duration.labels(name).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
