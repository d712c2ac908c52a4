"""The QuickBid demo platform: a real HTTP auction service on 127.0.0.1.

    python -m qbconsole.demo.platform --port 0 --db PATH --admin-token-env QUICKBID_ADMIN_TOKEN \
        [--seed N] [--ready-file PATH]

Once listening it prints ``{"url": "http://127.0.0.1:PORT", "pid": N}`` on one
line (and writes it to --ready-file). Every ``/api`` request holds one of the N
workers while it does its database work plus a fixed service time, so capacity
is about N / service time; requests beyond that queue, and the queueing is part
of the latency they report. The shipped weaknesses: 2 workers, a 20-entry view
cache for 500 auctions, backend weights 70/20/10 and no index on bids.auction_id.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from prometheus_client import disable_created_metrics

from qbconsole.demo.admin import Admin
from qbconsole.demo.cache import LruCache
from qbconsole.demo.capacity import BACKENDS, Backends, Faults, WorkerPool, WorkerTimeout
from qbconsole.demo.db import Database
from qbconsole.demo.limits import ActiveSessions, LoginGuard, RateLimiter
from qbconsole.demo.metrics import CONTENT_TYPE, PlatformMetrics
from qbconsole.demo.seed import SeedSize, ensure_seeded
from qbconsole.demo.shop import Shop, bearer_token, token_hash
from qbconsole.demo.validation import ApiError, positive_id

HOST = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024


@dataclass
class Settings:
    workers: int = 2
    cache_size: int = 20
    weights: dict[str, float] = field(default_factory=lambda: {"a": 70.0, "b": 20.0, "c": 10.0})
    service_ms: float = 15.0
    rate_limit: float = 20.0
    rate_burst: float = 40.0
    queue_timeout_s: float = 30.0
    seed: int = 1
    admin_token: str | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    client_ip: str

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    kind: str  # "api" (rate-limited, holds a worker), "admin" (token), "system"
    action: Callable[..., tuple[int, Any]]
    pattern: re.Pattern[str]


class Platform:
    """All of the platform's state and its routing; the HTTP handler only moves bytes."""

    def __init__(self, db_path: str, settings: Settings, log: Any = None) -> None:
        self.settings = settings
        self.metrics = PlatformMetrics()
        self.faults = Faults(settings.seed)
        self.db = Database(db_path, observe=self.metrics.observe_query, extra_delay=self.faults.db_delay)
        self.cache = LruCache(settings.cache_size)
        self.workers = WorkerPool(settings.workers)
        self.backends = Backends(settings.weights, seed=settings.seed)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.active = ActiveSessions()
        self.shop = Shop(self.db, self.cache, self.metrics, LoginGuard(), self.active)
        self.admin = Admin(settings.admin_token, self.db, self.workers, self.cache, self.backends,
                           self.faults, log=log)
        self.metrics.bind(
            active_users=self.active.count, active_auctions=self.shop.count_active_auctions,
            cache_size=lambda: len(self.cache), workers=lambda: self.workers.size,
            workers_busy=lambda: self.workers.busy, request_queue=lambda: self.workers.waiting,
            db_connections=lambda: self.db.connections_in_use, backend_weight=self.backends.share)
        self.routes = self._routes()

    def _routes(self) -> list[Route]:
        shop, admin = self.shop, self.admin
        table: list[tuple[str, str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", "/healthz", "system", lambda r, p: (200, {"status": "ok"})),
            ("GET", "/metrics", "system", lambda r, p: (200, self.metrics.exposition())),
            ("POST", "/api/signup", "api", lambda r, p: shop.signup(r.body)),
            ("POST", "/api/login", "api", lambda r, p: shop.login(r.body, r.client_ip)),
            ("GET", "/api/auctions", "api", self._list_auctions),
            ("POST", "/api/auctions", "api",
             lambda r, p: shop.create_auction(shop.authenticate(r.authorization), r.body)),
            ("GET", "/api/auctions/{id}", "api", self._view_auction),
            ("POST", "/api/auctions/{id}/bids", "api", lambda r, p: shop.place_bid(
                shop.authenticate(r.authorization), positive_id(p["id"], "auction id"), r.body)),
            ("POST", "/api/checkout", "api",
             lambda r, p: shop.checkout(shop.authenticate(r.authorization), r.body)),
            ("GET", "/admin/config", "admin", lambda r, p: admin.config()),
            ("POST", "/admin/workers", "admin", lambda r, p: admin.set_workers(r.body)),
            ("POST", "/admin/cache", "admin", lambda r, p: admin.set_cache(r.body)),
            ("POST", "/admin/index", "admin", lambda r, p: admin.create_index(r.body)),
            ("POST", "/admin/weights", "admin", lambda r, p: admin.set_weights(r.body)),
            ("GET", "/admin/slow_queries", "admin", lambda r, p: admin.slow_queries(r.query)),
            ("POST", "/admin/fault", "admin", lambda r, p: admin.set_fault(r.body)),
        ]
        routes = []
        for method, template, kind, action in table:
            regex = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            routes.append(Route(method, template, kind, action, re.compile(regex)))
        return routes

    def _list_auctions(self, req: Request, params: dict[str, str]) -> tuple[int, Any]:
        self.shop.authenticate(req.authorization, required=False)
        return self.shop.list_auctions(req.query)

    def _view_auction(self, req: Request, params: dict[str, str]) -> tuple[int, Any]:
        auction_id = positive_id(params["id"], "auction id")
        self.shop.authenticate(req.authorization, required=False)
        return self.shop.view_auction(auction_id)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], str | None]:
        """The route for method+path; else (None, {}, template) when only the method is wrong."""
        template = None
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                if route.method == method:
                    return route, found.groupdict(), route.template
                template = route.template
        return None, {}, template

    def allowed_methods(self, template: str) -> str:
        return ", ".join(sorted({r.method for r in self.routes if r.template == template}))

    def handle(self, route: Route, params: dict[str, str], req: Request,
               response_headers: dict[str, str]) -> tuple[int, Any]:
        """Run one matched request: admin check, or rate limit + worker + backend for the API."""
        if route.kind == "system":
            return route.action(req, params)
        if route.kind == "admin":
            self.admin.check(req.authorization)
            return route.action(req, params)
        token = bearer_token(req.authorization)
        key = "session:" + token_hash(token) if token else "ip:" + req.client_ip
        if not self.limiter.allow(key):
            self.metrics.rate_limited.inc()
            wait = self.limiter.retry_after(key)
            error = ApiError(429, "rate limit exceeded; slow down", retry_after_s=round(wait, 2))
            error.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
            raise error
        try:
            with self.workers.hold(self.settings.queue_timeout_s):
                backend = self.backends.pick()
                response_headers["X-Backend"] = backend
                self.metrics.backend_requests.labels(backend).inc()
                if self.faults.should_fail():
                    raise ApiError(500, "internal error (injected fault)")
                try:
                    return route.action(req, params)
                finally:
                    time.sleep(self.settings.service_ms / 1000.0 + self.backends.extra_latency(backend))
        except WorkerTimeout:
            raise ApiError(503, "overloaded: no worker became free in time") from None

    def close(self) -> None:
        self.db.close()


class Handler(BaseHTTPRequestHandler):
    """Reads a request, lets the Platform answer it, writes JSON (or the exposition text)."""

    protocol_version = "HTTP/1.1"
    server_version = "QuickBid/1.0"
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    server: "PlatformServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request would drown the admin log

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            raise ApiError(411, "send a Content-Length; chunked bodies are not accepted")
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        if not text.isdigit():
            self.close_connection = True
            raise ApiError(400, "Content-Length must be a non-negative integer")
        length = int(text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, f"body too large: {length} bytes, limit {MAX_BODY_BYTES}")
        return self.rfile.read(length)

    def _dispatch(self) -> None:
        platform = self.server.platform
        started = time.perf_counter()
        platform.metrics.http_connections.inc()
        route_label, status, payload = "unmatched", 500, None
        headers: dict[str, str] = {}
        try:
            body = self._read_body()
            parts = urlsplit(self.path)
            route, params, template = platform.match(self.command, parts.path)
            if route is None:
                if template is not None:
                    route_label = template
                    error = ApiError(405, f"method {self.command} not allowed on {template}")
                    error.headers["Allow"] = platform.allowed_methods(template)
                    raise error
                raise ApiError(404, "no such endpoint")
            route_label = route.template
            request = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body,
                              self.client_address[0])
            status, payload = platform.handle(route, params, request, headers)
        except ApiError as exc:
            status, payload = exc.status, exc.body()
            headers.update(exc.headers)
        except Exception as exc:  # a bug: answer 500, log one line without locals
            status, payload = 500, {"error": "internal error"}
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"quickbid error: {type(exc).__name__}: {exc} at {where.filename}:{where.lineno}",
                  file=sys.stderr, flush=True)
        try:
            self._send(status, payload, headers)
        finally:
            platform.metrics.http_connections.dec()
            platform.metrics.observe_request(route_label, self.command, status, time.perf_counter() - started)

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        if isinstance(payload, bytes):
            data, ctype = payload, CONTENT_TYPE
        else:
            data, ctype = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class PlatformServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, platform: Platform, port: int = 0) -> None:
        self.platform = platform
        super().__init__((HOST, port), Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        """A client that hung up mid-answer (a scraper's timeout, the load generator stopping) is
        routine, not a traceback on stderr; anything else is reported as usual."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def parse_weights(text: str) -> dict[str, float]:
    parts = text.split(",")
    if len(parts) != len(BACKENDS):
        raise argparse.ArgumentTypeError("weights are three numbers a,b,c such as 70,20,10")
    try:
        return Backends.validate(dict(zip(BACKENDS, (float(p) for p in parts))))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qbconsole.demo.platform", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--db", required=True, help="SQLite file; seeded on first use, reused afterwards")
    p.add_argument("--admin-token-env", default="QUICKBID_ADMIN_TOKEN",
                   help="environment variable holding the admin token")
    p.add_argument("--seed", type=int, default=1, help="seed for the data and the request routing")
    p.add_argument("--ready-file", help="also write the ready JSON line to this file")
    p.add_argument("--users", type=int, default=SeedSize.users)
    p.add_argument("--auctions", type=int, default=SeedSize.auctions)
    p.add_argument("--bids", type=int, default=SeedSize.bids)
    p.add_argument("--workers", type=int, default=Settings.workers, choices=range(1, 21), metavar="1..20")
    p.add_argument("--cache-size", type=int, default=Settings.cache_size)
    p.add_argument("--weights", type=parse_weights, default=None, help="backend weights a,b,c (70,20,10)")
    p.add_argument("--service-ms", type=float, default=Settings.service_ms,
                   help="fixed time each API request holds its worker besides its DB work")
    p.add_argument("--rate-limit", type=float, default=Settings.rate_limit, help="requests/s per client")
    p.add_argument("--rate-burst", type=float, default=Settings.rate_burst)
    p.add_argument("--keep-indexes", action="store_true",
                   help="keep indexes added through /admin/index by an earlier run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    disable_created_metrics()  # this process only: no *_created series next to each counter
    if args.cache_size < 0 or args.service_ms < 0 or args.rate_limit <= 0 or args.rate_burst < 1:
        print("quickbid: --cache-size and --service-ms must be >= 0, --rate-limit > 0, --rate-burst >= 1",
              file=sys.stderr)
        return 2
    token = os.environ.get(args.admin_token_env) or None
    if token is None:
        print(f"quickbid: ${args.admin_token_env} is not set; admin endpoints will refuse every request",
              file=sys.stderr, flush=True)
    try:
        seeded = ensure_seeded(args.db, args.seed, SeedSize(args.users, args.auctions, args.bids))
    except ValueError as exc:
        print(f"quickbid: {exc}", file=sys.stderr)
        return 2
    how = "reused" if seeded["reused"] else "seeded"
    print(f"quickbid: {how} {args.db} in {seeded['seconds']:.2f} s: {seeded['users']} users, "
          f"{seeded['auctions']} auctions, {seeded['bids']} bids, {seeded['orders']} orders",
          file=sys.stderr, flush=True)
    settings = Settings(workers=args.workers, cache_size=args.cache_size, service_ms=args.service_ms,
                        rate_limit=args.rate_limit, rate_burst=args.rate_burst, seed=args.seed,
                        admin_token=token)
    if args.weights:
        settings.weights = args.weights
    platform = Platform(args.db, settings)
    with platform.db.connection() as conn:
        platform.db.run(conn, "session_purge", (int(time.time()),))
    if not args.keep_indexes:
        for name in platform.db.drop_admin_indexes():
            print(f"quickbid: dropped index {name} from an earlier run", file=sys.stderr, flush=True)
    try:
        server = PlatformServer(platform, args.port)
    except OSError as exc:
        print(f"quickbid: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        platform.close()
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="quickbid-http", daemon=True)
    thread.start()
    ready = json.dumps({"url": server.url, "pid": os.getpid()})
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(ready + "\n")
        os.replace(tmp, args.ready_file)
    print(ready, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    platform.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
