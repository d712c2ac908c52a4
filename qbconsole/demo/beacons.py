"""Real-user-monitoring and security beacons, batched as NDJSON to an ingest endpoint.

Event shapes (``ts`` is integer ms UTC, always sent):

    {"type": "rum", "name": "page_view", "page": "auction", "page_load_seconds": 1.23,
     "interaction_seconds": 0.21}          # interaction only when the user acted on the page
    {"type": "rum", "name": "session_end", "session_duration_seconds": 83.2, "bounced": false}
    {"type": "rum", "name": "survey", "satisfaction": 4}   /   {"type": "rum", "name": "survey", "nps": 9}
    {"type": "rum", "name": "task", "task": "place_bid", "completed": true}
    {"type": "security", "kind": "failed_login" | "blocked_request" | "rate_limited", "source_ip": "127.0.0.x"}
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

EVENTS_PATH = "/v1/events"
SECURITY_KINDS = ("failed_login", "blocked_request", "rate_limited")


def _ts() -> int:
    return int(time.time() * 1000)


def page_view(page: str, load_seconds: float, interaction_seconds: float | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "rum", "name": "page_view", "page": page,
                             "page_load_seconds": round(load_seconds, 4)}
    if interaction_seconds is not None:
        event["interaction_seconds"] = round(interaction_seconds, 4)
    event["ts"] = _ts()
    return event


def session_end(duration_seconds: float, bounced: bool) -> dict[str, Any]:
    return {"type": "rum", "name": "session_end", "session_duration_seconds": round(duration_seconds, 3),
            "bounced": bounced, "ts": _ts()}


def satisfaction(score: int) -> dict[str, Any]:
    if not 1 <= score <= 5:
        raise ValueError("satisfaction is 1..5")
    return {"type": "rum", "name": "survey", "satisfaction": score, "ts": _ts()}


def nps(score: int) -> dict[str, Any]:
    if not 0 <= score <= 10:
        raise ValueError("nps is 0..10")
    return {"type": "rum", "name": "survey", "nps": score, "ts": _ts()}


def task(name: str, completed: bool) -> dict[str, Any]:
    return {"type": "rum", "name": "task", "task": name, "completed": completed, "ts": _ts()}


def security(kind: str, source_ip: str) -> dict[str, Any]:
    if kind not in SECURITY_KINDS:
        raise ValueError(f"security kind must be one of {SECURITY_KINDS}")
    return {"type": "security", "kind": kind, "source_ip": source_ip, "ts": _ts()}


def events_url(ingest: str) -> str:
    """The ingest base URL with ``/v1/events`` appended unless it is already there."""
    parts = urlsplit(ingest)
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class BeaconSink:
    """Collects events and posts them about once per ``interval`` as one NDJSON batch.

    Without an ingest URL events are only counted. The buffer is bounded: when
    the ingest is down, the oldest events beyond ``max_buffer`` are dropped.
    """

    def __init__(self, ingest: str | None, token: str | None, interval: float = 1.0,
                 max_buffer: int = 5000, max_batch: int = 1000) -> None:
        self.url = events_url(ingest) if ingest else None
        self._token = token
        self.interval = interval
        self.max_buffer = max_buffer
        self.max_batch = max_batch
        self._buffer: list[dict[str, Any]] = []
        self._client: httpx.AsyncClient | None = None
        self.emitted = 0
        self.sent = 0
        self.dropped = 0
        self.batches = 0
        self.failed_batches = 0
        self.last_error: str | None = None

    def emit(self, event: dict[str, Any]) -> None:
        self.emitted += 1
        if self.url is None:
            return
        self._buffer.append(event)
        overflow = len(self._buffer) - self.max_buffer
        if overflow > 0:
            del self._buffer[:overflow]
            self.dropped += overflow

    async def flush(self) -> None:
        """Post what is buffered, in batches of at most ``max_batch`` events."""
        if self.url is None:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0, trust_env=False,
                                             transport=httpx.AsyncHTTPTransport(retries=0))
        while self._buffer:
            batch, self._buffer = self._buffer[: self.max_batch], self._buffer[self.max_batch:]
            body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in batch).encode()
            headers = {"Content-Type": "application/x-ndjson"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            self.batches += 1
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                self._failed(len(batch), f"{type(exc).__name__}: {exc}")
                return
            if response.status_code >= 300:
                self._failed(len(batch), f"HTTP {response.status_code}: {response.text[:200]}")
                if response.status_code in (429, 503) or response.status_code >= 500:
                    return  # back off until the next tick
            else:
                self.sent += len(batch)

    def _failed(self, count: int, error: str) -> None:
        self.failed_batches += 1
        self.dropped += count
        self.last_error = error

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``interval`` seconds until ``stop`` is set, then once more."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            await self.flush()

    async def close(self) -> None:
        await self.flush()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
