"""A thread-safe LRU cache of auction views with a resizable capacity."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable


class LruCache:
    """Least-recently-used mapping holding at most ``max_entries`` values.

    ``get`` counts hits and misses; ``update`` applies a function to a cached
    value (write-through) and drops the entry when the function returns None.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("cache size must be >= 0")
        self._max = max_entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def max_entries(self) -> int:
        return self._max

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            if self._max == 0:
                return
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def update(self, key: Hashable, change: Callable[[Any], Any | None]) -> None:
        with self._lock:
            if key not in self._data:
                return
            new = change(self._data[key])
            if new is None:
                del self._data[key]
            else:
                self._data[key] = new

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def resize(self, max_entries: int) -> None:
        """Change the capacity; shrinking evicts the least recently used entries."""
        if max_entries < 0:
            raise ValueError("cache size must be >= 0")
        with self._lock:
            self._max = max_entries
            while len(self._data) > self._max:
                self._data.popitem(last=False)
