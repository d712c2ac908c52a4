"""Capacity of the demo platform: the worker pool, the weighted backends and injected faults."""

from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

MIN_WORKERS, MAX_WORKERS = 1, 20
BACKENDS = ("a", "b", "c")


class WorkerTimeout(Exception):
    """No worker became free within the queue timeout."""


class WorkerPool:
    """A resizable counting semaphore: at most ``size`` requests do work at once.

    ``busy`` and ``waiting`` are the live figures behind ``quickbid_workers_busy``
    and ``quickbid_request_queue``.
    """

    def __init__(self, size: int) -> None:
        self._check(size)
        self._size = size
        self._busy = 0
        self._waiting = 0
        self._cond = threading.Condition()

    @staticmethod
    def _check(size: Any) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_WORKERS <= size <= MAX_WORKERS:
            raise ValueError(f"workers must be an integer from {MIN_WORKERS} to {MAX_WORKERS}")

    @property
    def size(self) -> int:
        return self._size

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def waiting(self) -> int:
        return self._waiting

    def resize(self, size: int) -> None:
        self._check(size)
        with self._cond:
            self._size = size
            self._cond.notify_all()

    @contextmanager
    def hold(self, timeout: float = 30.0) -> Iterator[None]:
        """Wait for a free worker (at most ``timeout`` s), hold it for the block."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            try:
                while self._busy >= self._size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._cond.wait(remaining):
                        if self._busy >= self._size:
                            raise WorkerTimeout(f"no worker free within {timeout:g} s")
            finally:
                self._waiting -= 1
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify()


class Backends:
    """Three named backends chosen per request by weight, with a seeded RNG.

    A backend's extra latency is ``penalty * share**2`` where share is its part
    of the total weight: the busier a backend, the slower each of its requests.
    """

    def __init__(self, weights: Mapping[str, float], seed: int = 1, penalty_seconds: float = 0.04) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.penalty = penalty_seconds
        self._weights: dict[str, float] = {}
        self.set_weights(weights)

    @staticmethod
    def validate(weights: Any) -> dict[str, float]:
        if not isinstance(weights, Mapping):
            raise ValueError("weights must be an object like {\"a\": 1, \"b\": 1, \"c\": 1}")
        unknown = sorted(set(weights) - set(BACKENDS))
        if unknown:
            raise ValueError(f"unknown backend(s) {', '.join(map(str, unknown))}; backends are a, b, c")
        missing = [b for b in BACKENDS if b not in weights]
        if missing:
            raise ValueError(f"missing weight for backend(s) {', '.join(missing)}")
        clean = {}
        for name in BACKENDS:
            value = weights[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
                raise ValueError(f"weight of {name} must be a number from 0 to 1000")
            clean[name] = float(value)
        if sum(clean.values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return clean

    def set_weights(self, weights: Mapping[str, float]) -> dict[str, float]:
        clean = self.validate(weights)
        with self._lock:
            self._weights = clean
        return clean

    def weights(self) -> dict[str, float]:
        with self._lock:
            return dict(self._weights)

    def share(self, name: str) -> float:
        with self._lock:
            return self._weights[name] / sum(self._weights.values())

    def pick(self) -> str:
        with self._lock:
            return self._rng.choices(BACKENDS, weights=[self._weights[b] for b in BACKENDS])[0]

    def extra_latency(self, name: str) -> float:
        return self.penalty * self.share(name) ** 2


class Faults:
    """An incident in progress: a share of requests fail and every DB statement is delayed."""

    def __init__(self, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._error_rate = 0.0
        self._db_delay = 0.0
        self._until = 0.0

    def set(self, error_rate: float, db_delay_ms: float, duration_s: float) -> dict[str, Any]:
        with self._lock:
            self._error_rate = error_rate
            self._db_delay = db_delay_ms / 1000.0
            self._until = time.monotonic() + duration_s if (error_rate or db_delay_ms) else 0.0
        return self.state()

    def _active(self) -> bool:
        return time.monotonic() < self._until

    def should_fail(self) -> bool:
        with self._lock:
            return self._active() and self._error_rate > 0 and self._rng.random() < self._error_rate

    def db_delay(self) -> float:
        return self._db_delay if self._active() else 0.0

    def state(self) -> dict[str, Any]:
        active = self._active()
        return {
            "active": active,
            "error_rate": self._error_rate if active else 0.0,
            "db_delay_ms": round(self._db_delay * 1000, 3) if active else 0.0,
            "remaining_s": round(max(0.0, self._until - time.monotonic()), 3) if active else 0.0,
        }
