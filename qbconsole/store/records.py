"""Row types the store returns, and how float values map to SQLite.

SQLite stores every bound NaN as NULL, so the store encodes values as:

* the Prometheus staleness marker (``STALE_NAN``) -> NULL
* any other NaN                                 -> the text ``'NaN'``
* everything else (including +/-Inf)            -> REAL

and decodes them back the same way. Quantiles and rollups skip both kinds of NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from qbconsole.model import STALE_NAN, is_stale

NAN_TEXT = "NaN"


class SeriesInfo(NamedTuple):
    """One series: a metric name with one label set."""

    id: int
    name: str
    labels: dict[str, str]


class Point(NamedTuple):
    """One sample of a series."""

    series: SeriesInfo
    ts: int
    value: float


class LeaseInfo(NamedTuple):
    """Who holds the agent lease; all times integer ms UTC."""

    holder: str
    acquired: int
    heartbeat: int
    expires: int


class SourceStatus(NamedTuple):
    """The last scrape of a source, as shown on the Sources screen."""

    name: str
    up: bool
    last_ts: int | None
    duration_s: float | None
    last_error: str | None


def encode_nan(value: float) -> str | None:
    """The stored form of a NaN value: NULL for the staleness marker, 'NaN' otherwise."""
    return None if is_stale(value) else NAN_TEXT


def encode_value(value: float) -> float | str | None:
    """The stored form of any sample value."""
    value = float(value)
    return value if value == value else encode_nan(value)


def decode_value(stored: float | str | None) -> float:
    """The float a stored value stands for (NULL -> STALE_NAN, 'NaN' -> NaN)."""
    if stored is None:
        return STALE_NAN
    if stored.__class__ is str:
        return math.nan
    return stored


def decode_points(rows: list[tuple[int, float | str | None]]) -> list[tuple[int, float]]:
    """Decode (ts, stored value) rows; rows that are all plain floats are returned as they are."""
    for _, v in rows:
        if v.__class__ is not float:
            return [(ts, decode_value(v)) for ts, v in rows]
    return rows
