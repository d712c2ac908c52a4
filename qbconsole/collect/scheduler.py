"""Runs sources on their own intervals: one scheduler thread, a bounded pool.

Each source starts on a grid of its interval, each start delayed by a random
fraction (``jitter``) of the interval so sources do not align. A source never
runs twice at once: a run that overstays its timeout marks the source down and
the source waits until that run returns. Every finished run goes to the sink as
one list (one store transaction): its samples plus ``qbconsole_source_up`` and
``qbconsole_source_duration_seconds``. Sink and status callbacks are called from
the scheduler thread only, in order.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from concurrent.futures import Future
from typing import Callable

from qbconsole.collect.base import Source, SourceStatus, error_line
from qbconsole.collect.pool import DaemonPool
from qbconsole.model import Sample

log = logging.getLogger(__name__)

UP_METRIC = "qbconsole_source_up"
DURATION_METRIC = "qbconsole_source_duration_seconds"
MAX_SLEEP_S = 1.0  # the loop re-checks at least this often, whatever is due


def next_start(tick: float, interval: float, jitter: float, now: float, rng: random.Random) -> tuple[float, float]:
    """The next grid point after ``tick`` not already passed by ``now``, and its start time.

    The start is the grid point plus a random offset in [0, jitter*interval);
    a run that ended past one or more grid points starts again at once.
    """
    nxt = tick + interval
    if nxt <= now:
        return tick + interval * math.floor((now - tick) / interval), now
    return nxt, nxt + rng.random() * jitter * interval


def source_samples(name: str, up: bool, duration_s: float, ts: int) -> list[Sample]:
    """The two samples every run records about its source."""
    labels = {"source": name}
    return [Sample(UP_METRIC, labels, ts, 1.0 if up else 0.0), Sample(DURATION_METRIC, labels, ts, duration_s)]


class _Run:
    """One submitted collection."""

    __slots__ = ("source", "timeout", "now_ms", "submitted", "started", "timed_out", "future")

    def __init__(self, source: Source, now_ms: int, submitted: float) -> None:
        self.source = source
        self.timeout = float(source.timeout)
        self.now_ms = now_ms
        self.submitted = submitted
        self.started: float | None = None
        self.timed_out = False
        self.future: Future | None = None


class _State:
    """The scheduler's book on one source."""

    __slots__ = ("source", "status", "tick", "due", "run")

    def __init__(self, source: Source, tick: float, due: float) -> None:
        self.source = source
        self.status = SourceStatus(source.name, False, None, None, None)
        self.tick = tick
        self.due = due
        self.run: _Run | None = None


def _close(source: Source) -> None:
    try:
        source.close()
    except Exception as exc:
        log.warning("closing source %s failed: %s", getattr(source, "name", "?"), error_line(exc))


class Scheduler:
    """Runs ``sources`` and hands each run's samples to ``sink``.

    ``on_status`` gets the source's SourceStatus after every run (and when a
    run times out). ``record``, if given, takes both at once instead (one store
    transaction for a run's samples and status); should it fail, the status still
    goes to ``on_status``. ``clock`` gives wall time in seconds for sample
    timestamps; timing uses the monotonic clock.
    """

    def __init__(
        self,
        sink: Callable[[list[Sample]], object],
        sources: list[Source],
        *,
        on_status: Callable[[SourceStatus], object] | None = None,
        record: Callable[[list[Sample], SourceStatus], object] | None = None,
        clock: Callable[[], float] = time.time,
        max_workers: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        self._sink = sink
        self._on_status = on_status
        self._record = record
        self._clock = clock
        self._max_workers = max_workers
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._states: dict[str, _State] = {}
        self._thread: threading.Thread | None = None
        self._executor: DaemonPool | None = None
        self._pending_sources = _unique(sources)

    # ---- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler thread; sources get their first run within one jitter."""
        if self._stopping.is_set():
            raise RuntimeError("a stopped Scheduler cannot be started again")
        if self._thread is not None:
            return
        self._executor = DaemonPool(self._max_workers, name="qbconsole-source")
        now = time.monotonic()
        with self._lock:
            for source in self._pending_sources:
                self._states[source.name] = self._new_state(source, now)
            self._pending_sources = []
        self._thread = threading.Thread(target=self._loop, name="qbconsole-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """Stop scheduling and close the sources; does not wait for hung runs."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._executor is not None:
            self._executor.shutdown()
        with self._lock:
            states, self._states = list(self._states.values()), {}
            pending, self._pending_sources = self._pending_sources, []
        for state in states:
            self._retire(state.source, state.run)
        for source in pending:
            _close(source)

    def replace_sources(self, sources: list[Source]) -> None:
        """Swap in a new source list (config reload).

        A source whose name stays keeps its status, its schedule (unless its
        interval changed) and any run in flight; the old object is closed once
        idle. Sources no longer listed are closed.
        """
        sources = _unique(sources)
        if self._thread is None:
            for old in self._pending_sources:
                if old not in sources:
                    _close(old)
            self._pending_sources = sources
            return
        now = time.monotonic()
        retired: list[tuple[Source, _Run | None]] = []
        with self._lock:
            old_states, self._states = self._states, {}
            for source in sources:
                state = old_states.pop(source.name, None)
                if state is None:
                    state = self._new_state(source, now)
                else:
                    if state.source is not source:
                        retired.append((state.source, state.run))
                        if source.interval != state.source.interval:
                            state.tick, state.due = self._first_start(source, now)
                        state.source = source
                self._states[source.name] = state
            retired.extend((state.source, state.run) for state in old_states.values())
        for source, run in retired:
            self._retire(source, run)
        self._wake.set()

    def status(self) -> dict[str, SourceStatus]:
        """The latest status of every source, by name."""
        with self._lock:
            if self._thread is None:
                return {s.name: SourceStatus(s.name, False, None, None, None) for s in self._pending_sources}
            return {name: state.status for name, state in self._states.items()}

    # ---- the loop ----------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            deliveries: list[tuple[list[Sample] | None, SourceStatus]] = []
            with self._lock:
                now = time.monotonic()
                for state in self._states.values():
                    self._finish(state, now, deliveries)
                    self._check_timeout(state, now, deliveries)
                    if state.run is None and now >= state.due and not self._stopping.is_set():
                        self._submit(state, now)
                sleep = self._sleep_for(time.monotonic())
            for batch, status in deliveries:
                self._deliver(batch, status)
            self._wake.wait(sleep)

    def _new_state(self, source: Source, now: float) -> _State:
        tick, due = self._first_start(source, now)
        return _State(source, tick, due)

    def _first_start(self, source: Source, now: float) -> tuple[float, float]:
        return now, now + self._rng.random() * source.jitter * source.interval

    def _submit(self, state: _State, now: float) -> None:
        run = _Run(state.source, int(self._clock() * 1000), now)
        assert self._executor is not None
        try:
            run.future = self._executor.submit(self._execute, run)
        except RuntimeError:  # executor shut down: we are stopping
            return
        state.run = run
        run.future.add_done_callback(lambda _f: self._wake.set())

    @staticmethod
    def _execute(run: _Run) -> tuple[list[Sample] | None, float, str | None]:
        """Worker thread: one collection, never raises."""
        run.started = time.monotonic()
        try:
            samples = list(run.source.collect(run.now_ms))
            for item in samples:
                if not isinstance(item, Sample):
                    raise TypeError(f"collect() returned a {type(item).__name__}, not a Sample")
            return samples, time.monotonic() - run.started, None
        except Exception as exc:
            # A source may attach what a failure itself means in samples (a scrape's
            # up=0 and staleness markers for the series it can no longer see).
            partial = getattr(exc, "samples", None)
            kept = [s for s in partial if isinstance(s, Sample)] if isinstance(partial, list) else None
            return kept or None, time.monotonic() - run.started, error_line(exc)

    def _finish(self, state: _State, now: float, out: list) -> None:
        """Record a run that has returned and schedule the next one."""
        run = state.run
        if run is None or run.future is None or not run.future.done():
            return
        state.run = None
        state.tick, state.due = next_start(state.tick, state.source.interval, state.source.jitter, now, self._rng)
        if run.future.cancelled():
            return
        samples, duration, error = run.future.result()
        if run.timed_out:
            late = f"timed out after {run.timeout:g}s (the run returned after {duration:.1f}s)"
            state.status = state.status._replace(duration_s=duration, last_error=late)
            out.append((None, state.status))
            return
        if duration > run.timeout:
            samples, error = None, error or f"timed out after {run.timeout:g}s"
        up = error is None
        state.status = SourceStatus(state.source.name, up, run.now_ms, duration, error)
        batch = (samples or []) + source_samples(state.source.name, up, duration, run.now_ms)
        out.append((batch, state.status))

    def _check_timeout(self, state: _State, now: float, out: list) -> None:
        run = state.run
        if run is None or run.timed_out or now - run.submitted < run.timeout:
            return
        run.timed_out = True
        error = f"timed out after {run.timeout:g}s"
        if run.started is None:
            error += " (waiting for a free worker)"
        duration = now - (run.started if run.started is not None else run.submitted)
        state.status = SourceStatus(state.source.name, False, run.now_ms, duration, error)
        out.append((source_samples(state.source.name, False, duration, run.now_ms), state.status))

    def _sleep_for(self, now: float) -> float:
        wake_at = now + MAX_SLEEP_S
        for state in self._states.values():
            if state.run is None:
                wake_at = min(wake_at, state.due)
            elif not state.run.timed_out:
                wake_at = min(wake_at, state.run.submitted + state.run.timeout)
        return max(0.0, wake_at - now)

    def _deliver(self, batch: list[Sample] | None, status: SourceStatus) -> None:
        if self._record is not None:
            try:
                self._record(batch or [], status)
                return
            except Exception as exc:  # the samples went with the transaction; the status must show
                log.error("could not record %d samples of source %s: %s", len(batch or ()), status.name,
                          error_line(exc))
                batch = None
        if batch:
            try:
                self._sink(batch)
            except Exception as exc:
                log.error("sink refused %d samples of source %s: %s", len(batch), status.name, error_line(exc))
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception as exc:
                log.error("status callback failed for source %s: %s", status.name, error_line(exc))

    @staticmethod
    def _retire(source: Source, run: _Run | None) -> None:
        """Close ``source`` now, or when its run in flight returns."""
        if run is not None and run.source is source and run.future is not None and not run.future.done():
            run.future.add_done_callback(lambda _f: _close(source))
        else:
            _close(source)


def _unique(sources: list[Source]) -> list[Source]:
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
    return list(sources)
