"""Prometheus-style durations: ``30s``, ``5m``, ``1h30m``, ``500ms``, ``1d`` or a number of seconds."""

from __future__ import annotations

import math
import re

_UNITS = (("y", 365 * 86400.0), ("w", 7 * 86400.0), ("d", 86400.0), ("h", 3600.0),
          ("m", 60.0), ("s", 1.0), ("ms", 0.001))
# Units must appear largest first, each at most once, as Prometheus requires.
_DURATION = re.compile("".join(rf"(?:(?P<{u}>\d+){u})?" for u, _ in _UNITS))
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; raises ValueError when it is not a duration.

    Numbers (and numeric strings) are seconds; strings otherwise follow
    Prometheus's ``[0-9]+(y|w|d|h|m|s|ms)`` sequence, largest unit first.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            match = _DURATION.fullmatch(text)
            if not text or match is None:
                raise ValueError(f"not a duration: {value!r}")
            seconds = sum(float(match[u]) * factor for u, factor in _UNITS if match[u])
    else:
        raise ValueError(f"not a duration: {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError("a duration must be finite")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of ``seconds`` (``90`` -> ``1m30s``; ``0`` -> ``0s``)."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, factor in _UNITS:
        step = round(factor * 1000)
        count, ms = divmod(ms, step)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
