"""Admin endpoints of the demo platform: the knobs an approved optimization turns.

All need ``Authorization: Bearer <token>`` with the token from the environment
variable named at start-up (missing header → 401, wrong token → 403). Each
change writes one line to stderr.
"""

from __future__ import annotations

import hmac
import sys
import time
from typing import Any, Callable, Mapping, TextIO

from qbconsole.demo.cache import LruCache
from qbconsole.demo.capacity import MAX_WORKERS, MIN_WORKERS, Backends, Faults, WorkerPool
from qbconsole.demo.db import Database
from qbconsole.demo.validation import ApiError, number_field, parse_json_object, query_int, reject_unknown

MAX_CACHE_ENTRIES = 100_000
Result = tuple[int, dict[str, Any]]


class Admin:
    """Token check plus one method per admin route."""

    def __init__(self, token: str | None, db: Database, workers: WorkerPool, cache: LruCache,
                 backends: Backends, faults: Faults, log: TextIO | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._token = token.encode() if token else None
        self.db = db
        self.workers = workers
        self.cache = cache
        self.backends = backends
        self.faults = faults
        self._log = log or sys.stderr
        self._clock = clock

    def check(self, header: str | None) -> None:
        """Raise 401 without a bearer token, 403 for a wrong one (or when admin is not configured)."""
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            error = ApiError(401, "admin token required: send Authorization: Bearer <token>")
            error.headers["WWW-Authenticate"] = "Bearer"
            raise error
        if self._token is None:
            raise ApiError(403, "admin is disabled: no admin token was configured at start-up")
        if not hmac.compare_digest(header[7:].strip().encode(), self._token):
            raise ApiError(403, "admin token is not valid")

    def _note(self, what: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        print(f"{stamp} quickbid admin: {what}", file=self._log, flush=True)

    def set_workers(self, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"workers"})
        workers = number_field(body, "workers", minimum=MIN_WORKERS, maximum=MAX_WORKERS, integer=True)
        before = self.workers.size
        self.workers.resize(int(workers))  # type: ignore[arg-type]
        self._note(f"workers {before} -> {self.workers.size}")
        return 200, {"workers": self.workers.size, "previous": before}

    def set_cache(self, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"size"})
        size = int(number_field(body, "size", minimum=0, maximum=MAX_CACHE_ENTRIES, integer=True))  # type: ignore
        before = self.cache.max_entries
        self.cache.resize(size)
        self._note(f"cache size {before} -> {size}")
        return 200, {"size": size, "previous": before, "entries": len(self.cache)}

    def create_index(self, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"table", "columns"})
        if "table" not in body or "columns" not in body:
            raise ApiError(400, "need fields 'table' and 'columns'")
        try:
            result = self.db.create_index(body["table"], body["columns"])
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        verb = "created" if result["created"] else "already present:"
        self._note(f"index {verb} {result['index']} on {result['table']}({', '.join(result['columns'])}) "
                   f"in {result['seconds']:.3f} s")
        return (201 if result["created"] else 200), result

    def set_weights(self, raw: bytes) -> Result:
        body = parse_json_object(raw)
        before = self.backends.weights()
        try:
            weights = self.backends.set_weights(body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        self._note(f"backend weights {_fmt(before)} -> {_fmt(weights)}")
        return 200, {"weights": weights, "previous": before}

    def slow_queries(self, query: Mapping[str, list[str]]) -> Result:
        limit = query_int(query, "limit", 10, 1, 100)
        return 200, {"window_seconds": self.db.log.window, "queries": self.db.log.slowest(limit)}

    def set_fault(self, raw: bytes) -> Result:
        body = parse_json_object(raw)
        reject_unknown(body, {"error_rate", "db_delay_ms", "duration_s"})
        error_rate = number_field(body, "error_rate", minimum=0, maximum=1, required=False) or 0.0
        delay = number_field(body, "db_delay_ms", minimum=0, maximum=10_000, required=False) or 0.0
        duration = number_field(body, "duration_s", minimum=0, maximum=3600, required=False)
        if (error_rate or delay) and not duration:
            raise ApiError(400, "duration_s (1..3600) is required when error_rate or db_delay_ms is set")
        state = self.faults.set(float(error_rate), float(delay), float(duration or 0))
        if state["active"]:
            self._note(f"fault injected: error_rate {error_rate:g}, db delay {delay:g} ms for {duration:g} s")
        else:
            self._note("fault cleared")
        return 200, state

    def config(self) -> Result:
        """The current settings, for an optimizer that wants to know before it proposes."""
        return 200, {"workers": self.workers.size, "cache_size": self.cache.max_entries,
                     "cache_entries": len(self.cache), "weights": self.backends.weights(),
                     "fault": self.faults.state(), "indexes": self.db.indexes()}


def _fmt(weights: Mapping[str, float]) -> str:
    return "/".join(f"{k}={v:g}" for k, v in weights.items())
