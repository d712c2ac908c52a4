"""Value types shared by every layer: a sample is a metric value at a time."""

from __future__ import annotations

import json
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
