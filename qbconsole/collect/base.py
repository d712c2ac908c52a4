"""What a source is, and the status the scheduler keeps for each one."""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

from qbconsole.model import Sample
from qbconsole.store.records import SourceStatus  # noqa: F401  (re-exported)

MAX_ERROR_CHARS = 300


@runtime_checkable
class Source(Protocol):
    """A producer of samples, run by the Scheduler on a worker thread.

    ``interval``, ``timeout`` in seconds; ``jitter`` is a fraction (0..1) of the
    interval by which each run is delayed at random, so sources do not align.
    """

    name: str
    interval: float
    timeout: float
    jitter: float

    def collect(self, now_ms: int) -> list[Sample]:
        """Blocking; returns this run's samples or raises on failure."""
        ...

    def close(self) -> None:
        """Release whatever the source holds (connections, files)."""
        ...


def error_line(exc: BaseException) -> str:
    """``ExceptionType: message`` on one line: no traceback, no locals."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def check_timing(name: str, interval: float, timeout: float, jitter: float) -> None:
    """Raise ValueError unless interval and timeout are positive and jitter in 0..1."""
    if not name:
        raise ValueError("a source needs a name")
    if not interval > 0:
        raise ValueError(f"source {name!r}: interval must be positive, got {interval!r}")
    if not timeout > 0:
        raise ValueError(f"source {name!r}: timeout must be positive, got {timeout!r}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"source {name!r}: jitter must be between 0 and 1, got {jitter!r}")
