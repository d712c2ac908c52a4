"""The HTTP ingest endpoint: ``POST /v1/events``, ``POST /v1/assign`` and ``GET /healthz`` on a thread of its own.

A request is checked in this order, each failure answered with a JSON body
``{"error": ..., "index": ..., "field": ...}`` and nothing stored: path (404),
per-client rate (429 with Retry-After), ``Authorization: Bearer`` token (401
when missing, 403 when wrong), content type (415), body size (413; at most
``max_body`` bytes are ever read, chunked bodies included), UTF-8 and JSON
(400), then every event (400). A good batch is one store transaction and is
answered ``202 {"accepted": N}`` (N events). ``/v1/assign`` goes through the
same checks and answers ``200`` with the user's variant (see
:mod:`qbconsole.ingest.experiments`: 404 unknown experiment, 409 not running). Nothing a client sends can put a
traceback on the wire or on stderr; the server's own failures are logged as
one line and answered 500/503.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from qbconsole.ingest.body import check_content_type, decode_events
from qbconsole.ingest.errors import Rejected
from qbconsole.ingest.events import validate_events
from qbconsole.ingest.experiments import ASSIGN_PATH, assign_user
from qbconsole.ingest.ratelimit import RateLimiter
from qbconsole.ingest.recorder import Recorder
from qbconsole.store import Store, StoreClosed

log = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
HEALTH_PATH = "/healthz"
MAX_CONNECTIONS = 64  # connections served at once; more are answered 503 and closed
SOCKET_TIMEOUT_S = 10.0  # a client that stalls longer is dropped
LINGER_S, LINGER_BYTES = 2.0, 4 << 20  # what is discarded of a refused request's body
_BUSY_BODY = b'{"error": "too many connections", "index": null, "field": null}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


def error_line(exc: BaseException | None) -> str:
    """``Type: message`` on one line, for the log."""
    if exc is None:
        return "unknown error"
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def linger(conn: socket.socket) -> None:
    """After refusing a request whose body was not read: signal the end of the answer, then
    discard what the client still sends (bounded), so closing does not reset the connection
    before the client has read the answer."""
    deadline = time.monotonic() + LINGER_S
    try:
        conn.shutdown(socket.SHUT_WR)
        drained = 0
        while drained < LINGER_BYTES and time.monotonic() < deadline:
            conn.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = conn.recv(65536)
            if not chunk:
                break
            drained += len(chunk)
    except OSError:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, handler, ingest: "IngestServer") -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.ingest = ingest
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        log.debug("ingest connection from %s ended: %s", client_address[0], error_line(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qbconsole-ingest"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _HTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("ingest %s: %s", self.client_address[0], format % args)

    # ---- routes ----------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            self._send(200, {"status": "ok"})
        elif path in (EVENTS_PATH, ASSIGN_PATH):
            self._send(405, {"error": "use POST", "index": None, "field": None}, {"Allow": "POST"})
        else:
            self._send(404, {"error": "not found", "index": None, "field": None})

    def finish(self) -> None:
        super().finish()
        if getattr(self, "command", None) == "POST" and not getattr(self, "_body_read", True):
            linger(self.connection)

    def do_POST(self) -> None:
        ingest = self.server.ingest
        self._body_read = False
        try:
            status, answer = self._accept(ingest)
        except Rejected as exc:
            ingest.count_rejected(exc.reason)
            self._send(exc.status, exc.body(), exc.headers, close=self.close_connection)
        except StoreClosed:
            ingest.count_rejected("unavailable")
            self._send(503, {"error": "the store is closed", "index": None, "field": None}, close=True)
        except Exception as exc:  # a bug or a store failure: one line in the log, no traceback
            ingest.count_rejected("internal")
            log.error("ingest: request failed: %s", error_line(exc))
            self._send(500, {"error": "internal error", "index": None, "field": None}, close=True)
        else:
            self._send(status, answer)

    def _accept(self, ingest: "IngestServer") -> tuple[int, dict]:
        """(status, answer) of a request that was served, or Rejected."""
        path = urlsplit(self.path).path
        if path not in (EVENTS_PATH, ASSIGN_PATH):
            self.close_connection = True
            raise Rejected(404, "not found", reason="not_found")
        wait = ingest.limiter.take(self.client_address[0])
        if wait is not None:
            self.close_connection = True
            raise Rejected(429, "too many requests; slow down", reason="rate_limited",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})
        self._authorize(ingest.token)
        kind = self._content_type()
        raw = self._read_body(ingest.max_body)
        events = decode_events(raw, kind)
        if path == ASSIGN_PATH:
            answer = assign_user(ingest.store, events, ingest.recorder.clock_ms())
            ingest.count_accepted([{"type": "assign"}])
            return 200, answer
        items = validate_events(events, ingest.recorder.clock_ms())
        ingest.recorder.record(items)
        ingest.count_accepted(events)
        return 202, {"accepted": len(events)}

    # ---- checks ------------------------------------------------------------------
    def _authorize(self, token: bytes) -> None:
        header = self.headers.get("Authorization")
        scheme, _, given = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            self.close_connection = True
            raise Rejected(401, "missing bearer token (Authorization: Bearer <token>)",
                           reason="unauthenticated", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token):
            self.close_connection = True
            raise Rejected(403, "wrong token", reason="forbidden")

    def _content_type(self) -> str:
        try:
            return check_content_type(self.headers.get("Content-Type"))
        except Rejected:
            self.close_connection = True
            raise

    def _read_body(self, max_body: int) -> bytes:
        """The body, never reading more than ``max_body`` bytes of it."""
        self.close_connection = True  # until the body is read in full
        try:
            encoding = self.headers.get("Transfer-Encoding")
            if encoding is not None:
                if encoding.strip().lower() != "chunked":
                    raise Rejected(400, f"transfer encoding {encoding!r} is not supported")
                body = self._read_chunked(max_body)
            else:
                body = self._read_sized(max_body)
        except TimeoutError:
            raise Rejected(408, "the body did not arrive in time", reason="timeout") from None
        self.close_connection = False
        self._body_read = True
        return body

    def _read_sized(self, max_body: int) -> bytes:
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise Rejected(411, "Content-Length (or chunked encoding) is required")
        if len(lengths) > 1 or not lengths[0].strip().isdigit():
            raise Rejected(400, "invalid Content-Length")
        length = int(lengths[0])
        if length > max_body:
            raise Rejected(413, f"body larger than {max_body} bytes", reason="too_large")
        body = self.rfile.read(length)
        if len(body) < length:
            raise Rejected(400, "the body is shorter than its Content-Length")
        return body

    def _read_chunked(self, max_body: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise Rejected(400, "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(8194) not in (b"\r\n", b"\n", b""):
                    pass  # trailers, ignored
                return bytes(body)
            if len(body) + size > max_body:
                raise Rejected(413, f"body larger than {max_body} bytes", reason="too_large")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3).strip():
                raise Rejected(400, "malformed chunked body")
            body += chunk

    # ---- answers -------------------------------------------------------------------
    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None, close: bool = False) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)


class IngestServer:
    """The ingest endpoint over ``store``; ``start()`` serves on a thread, ``stop()`` ends it.

    ``rate`` is requests per second per client address (bursts up to ``burst``,
    default twice the rate). ``stats()`` gives events accepted per type and
    requests refused per reason since start.
    """

    def __init__(self, store: Store, *, host: str = "127.0.0.1", port: int = 0, token: str,
                 max_body: int = 1_000_000, rate: float = 100.0, burst: float | None = None) -> None:
        if not isinstance(token, str) or not token or token != token.strip() or " " in token:
            raise ValueError("the ingest endpoint needs a token (a non-empty string without spaces)")
        if not isinstance(max_body, int) or max_body < 1:
            raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")
        self.store = store
        self.host, self.port = host, port
        self.token = token.encode("utf-8")
        self.max_body = max_body
        self.limiter = RateLimiter(rate, burst)
        self.recorder = Recorder(store)
        self._stats_lock = threading.Lock()
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        if self._httpd is None:
            raise RuntimeError("the ingest server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Load the counters from the store, bind and serve on a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the ingest server is already started")
        self.recorder.load()
        httpd = _HTTPServer((self.host, self.port), _Handler, self)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="qbconsole-ingest", daemon=True)
        self._thread.start()
        log.info("ingest endpoint listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving and close the socket (connections in progress are not waited for)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "IngestServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def count_accepted(self, events: list[dict]) -> None:
        with self._stats_lock:
            self._accepted.update(e["type"] for e in events)

    def count_rejected(self, reason: str) -> None:
        with self._stats_lock:
            self._rejected[reason] += 1

    def stats(self) -> dict[str, dict[str, int]]:
        with self._stats_lock:
            return {"accepted": dict(self._accepted), "rejected": dict(self._rejected)}
