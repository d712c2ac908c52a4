"""Per-client bookkeeping: token-bucket rate limits, failed-login lockouts, active sessions."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """A token bucket per client key (a session or an IP): ``rate`` tokens/s, ``burst`` at most."""

    def __init__(self, rate: float, burst: float, max_keys: int = 20_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self._max_keys:
                self._prune(now)
            return allowed

    def retry_after(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        return max(0.0, (1.0 - tokens) / self.rate)

    def _prune(self, now: float) -> None:
        refill = self.burst / self.rate
        for key in [k for k, (_, last) in self._buckets.items() if now - last > refill]:
            del self._buckets[key]


class LoginGuard:
    """Blocks logins from an IP for ``block_seconds`` after ``max_failures`` in ``window`` seconds."""

    def __init__(self, max_failures: int = 20, window: float = 60.0, block_seconds: float = 120.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self.block_seconds = block_seconds
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked_for(self, ip: str, now: float | None = None) -> float:
        """Seconds the IP stays blocked; 0 when it may try."""
        now = time.monotonic() if now is None else now
        with self._lock:
            until = self._blocked.get(ip, 0.0)
            if until <= now:
                self._blocked.pop(ip, None)
                return 0.0
            return until - now

    def failed(self, ip: str, now: float | None = None) -> bool:
        """Record a failed login; True when this failure blocks the IP."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._failures.setdefault(ip, deque())
            times.append(now)
            while times and now - times[0] > self.window:
                times.popleft()
            if len(times) >= self.max_failures:
                self._blocked[ip] = now + self.block_seconds
                times.clear()
                return True
            if len(self._failures) > 10_000:
                for key in [k for k, v in self._failures.items() if not v or now - v[-1] > self.window]:
                    del self._failures[key]
            return False


class ActiveSessions:
    """Sessions seen in the last ``window`` seconds: ``quickbid_active_users``."""

    def __init__(self, window: float = 300.0) -> None:
        self.window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, session: str, now: float | None = None) -> None:
        with self._lock:
            self._seen[session] = time.monotonic() if now is None else now

    def count(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [k for k, t in self._seen.items() if now - t > self.window]
            for key in stale:
                del self._seen[key]
            return len(self._seen)
