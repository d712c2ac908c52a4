"""Per-client token buckets: ``rate`` requests per second on average, bursts up to ``burst``."""

from __future__ import annotations

import threading
import time
from typing import Callable

MAX_CLIENTS = 4096  # idle buckets are forgotten past this many clients


class RateLimiter:
    """``take(client)`` spends one token: None when allowed, else seconds until one is free."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, 2 * rate))
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float | None:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > MAX_CLIENTS:
                    self._forget_full(now)
                return None
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        full = [c for c, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.rate >= self.burst]
        for client in full:
            del self._buckets[client]
