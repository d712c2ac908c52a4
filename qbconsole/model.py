"""Value types shared by every layer: a sample is a metric value at a time."""

from __future__ import annotations

import json
import struct
from typing import Mapping, NamedTuple


class Sample(NamedTuple):
    """One metric value: ``name{labels} value @ts``; ts is integer milliseconds UTC."""

    name: str
    labels: Mapping[str, str]
    ts: int
    value: float


def canonical_labels(labels: Mapping[str, str]) -> str:
    """The canonical JSON of a label set: keys sorted, no spaces. Unique per label set."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Prometheus's staleness marker: a NaN with a distinct bit pattern, written when a
# series disappears. The store keeps it as NULL; readers get STALE_NAN back.
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def is_stale(value: float) -> bool:
    """True when value is the staleness marker (not merely any NaN)."""
    return value != value and struct.pack("<d", value) == struct.pack("<d", STALE_NAN)
