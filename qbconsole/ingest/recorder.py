"""Turns a validated batch into samples and writes it as one store transaction.

Timestamps. A sample without ``ts`` gets the receive time. The store keeps one
value per (series, ts), so two events of one series at the same millisecond
would overwrite each other; instead the later one is nudged by +1 ms (repeatedly
if need be). Within a batch this holds for every event; across batches it holds
for receive-time stamps (each series' last receive-time stamp is remembered);
two batches sending the same explicit ``ts`` for one series still overwrite.

Counters. ``security_events_total{kind}`` is a real counter: the recorder keeps
the cumulative count per kind, continuing from the store's latest value when it
starts, so the series only grows across restarts. A batch writes each touched
kind's new total once, at the receive time (after that kind's previous sample).
The count only advances once the write has committed.

Experiments. A batch with exposures or experiment events is written as one
transaction holding its samples and its experiment rows, so a refusal of any
of them (unknown experiment, not running) stores nothing of the batch.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Callable

from qbconsole.ingest.errors import Rejected
from qbconsole.ingest import experiments
from qbconsole.ingest.events import SECURITY_METRIC, ExperimentItem, Item
from qbconsole.model import Sample
from qbconsole.store import Store
from qbconsole.store.writer import SeriesIds, insert_samples

MAX_SECURITY_KINDS = 64  # distinct kinds kept as series; more are refused
MAX_REMEMBERED = 10_000  # series whose last receive-time stamp is remembered


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Recorder:
    """Writes batches for one ingest server; thread-safe (one batch at a time)."""

    def __init__(self, store: Store, clock_ms: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.clock_ms = clock_ms
        self._lock = threading.Lock()
        self._security: dict[str, float] = {}  # kind -> cumulative count
        self._security_ts: dict[str, int] = {}  # kind -> ts of its latest sample
        self._last_receive_ts: dict[tuple, int] = {}

    def load(self) -> None:
        """Continue the counters from the store's latest values."""
        rows = self.store.read().execute(
            """SELECT s.labels,
                      (SELECT value FROM samples WHERE series_id = s.id AND typeof(value) = 'real'
                        ORDER BY ts DESC LIMIT 1),
                      (SELECT max(ts) FROM samples WHERE series_id = s.id)
               FROM series s WHERE s.name = ?""", (SECURITY_METRIC,)).fetchall()
        with self._lock:
            for labels_text, value, ts in rows:
                labels = json.loads(labels_text)
                kind = labels.get("kind")
                if set(labels) != {"kind"} or value is None or not math.isfinite(value):
                    continue
                self._security[kind] = max(value, self._security.get(kind, 0.0))
                self._security_ts[kind] = max(ts or 0, self._security_ts.get(kind, 0))

    def security_totals(self) -> dict[str, float]:
        with self._lock:
            return dict(self._security)

    def record(self, items: list[Item | ExperimentItem]) -> int:
        """Write the batch in one transaction; returns the number of samples written."""
        with self._lock:
            now = self.clock_ms()
            increments: dict[str, int] = {}
            samples: list[Sample] = []
            used: set[tuple] = set()
            remembered: dict[tuple, int] = {}
            trial = [item for item in items if isinstance(item, ExperimentItem)]
            for item in items:
                if isinstance(item, ExperimentItem):
                    continue
                if item.count:
                    kind = item.labels["kind"]
                    increments[kind] = increments.get(kind, 0) + 1
                    continue
                key = (item.name, tuple(sorted(item.labels.items())))
                ts = item.ts
                if ts is None:
                    ts = max(now, remembered.get(key, self._last_receive_ts.get(key, now - 1)) + 1)
                while (key, ts) in used:
                    ts += 1
                used.add((key, ts))
                if item.ts is None:
                    remembered[key] = ts
                samples.append(Sample(item.name, item.labels, ts, item.value))
            new_kinds = set(increments) - set(self._security)
            if len(self._security) + len(new_kinds) > MAX_SECURITY_KINDS:
                raise Rejected(400, f"more than {MAX_SECURITY_KINDS} distinct security event kinds",
                               field="kind")
            totals = {k: self._security.get(k, 0.0) + n for k, n in increments.items()}
            stamps = {k: max(now, self._security_ts.get(k, now - 1) + 1) for k in increments}
            samples += [Sample(SECURITY_METRIC, {"kind": k}, stamps[k], totals[k]) for k in sorted(totals)]
            if trial:
                written = self.store.transaction(lambda conn: self._write_with_experiments(conn, samples, trial, now))
            else:
                written = self.store.write(samples)
            self._security.update(totals)
            self._security_ts.update(stamps)
            self._remember(remembered, now)
            return written

    @staticmethod
    def _write_with_experiments(conn, samples: list[Sample], trial: list[ExperimentItem], now: int) -> int:
        experiments.record_items(conn, trial, now)  # Rejected rolls the whole batch back
        return insert_samples(conn, SeriesIds(), samples) if samples else 0

    def _remember(self, remembered: dict[tuple, int], now: int) -> None:
        self._last_receive_ts.update(remembered)
        if len(self._last_receive_ts) > MAX_REMEMBERED:
            # A stamp before now can no longer collide with a new receive time.
            self._last_receive_ts = {k: v for k, v in self._last_receive_ts.items() if v >= now}

