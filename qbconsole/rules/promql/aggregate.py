"""Aggregation operators (sum, avg, min, max, count, quantile, stddev, stdvar, group)
over groups chosen with ``by`` / ``without``, computed in Prometheus 2.42's order."""

from __future__ import annotations

import math

from qbconsole.rules.promql.functions import quantile
from qbconsole.rules.promql.values import NAME, VSample, Vector


def _group_key(grouping: tuple[str, ...], without: bool):
    if without:
        ignored = frozenset(grouping) | {NAME}
        return lambda labels: frozenset([kv for kv in labels.items() if kv[0] not in ignored])
    if not grouping:
        return lambda labels: ()
    return lambda labels: tuple([labels.get(n, "") for n in grouping])


def _group_labels(labels: dict[str, str], grouping: tuple[str, ...], without: bool) -> dict[str, str]:
    if without:
        return {k: v for k, v in labels.items() if k not in grouping and k != NAME}
    return {k: v for k, v in labels.items() if k in grouping}


class _Group:
    __slots__ = ("labels", "value", "mean", "count", "values")

    def __init__(self, labels: dict[str, str], value: float) -> None:
        self.labels, self.value, self.mean, self.count = labels, value, value, 1
        self.values = [value]


def aggregate(op: str, vector: Vector, grouping: tuple[str, ...], without: bool,
              param: float | None = None) -> Vector:
    """One output element per group, labelled by the grouping labels."""
    key_of = _group_key(grouping, without)
    groups: dict[object, _Group] = {}
    for labels, v in vector:
        key = key_of(labels)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(_group_labels(labels, grouping, without), v)
            if op in ("stddev", "stdvar"):
                g.value = 0.0
            continue
        g.count += 1
        if op == "sum":
            g.value += v
        elif op == "avg":
            if math.isinf(g.mean) and ((math.isinf(v) and (g.mean > 0) == (v > 0))
                                       or (not math.isinf(v) and v == v)):
                continue
            g.mean += v / g.count - g.mean / g.count
        elif op == "max":
            if g.value < v or g.value != g.value:
                g.value = v
        elif op == "min":
            if g.value > v or g.value != g.value:
                g.value = v
        elif op in ("stddev", "stdvar"):
            delta = v - g.mean
            g.mean += delta / g.count
            g.value += delta * (v - g.mean)
        elif op == "quantile":
            g.values.append(v)
    return [VSample(g.labels, _result(op, g, param)) for g in groups.values()]


def _result(op: str, g: _Group, param: float | None) -> float:
    if op == "avg":
        return g.mean
    if op == "count":
        return float(g.count)
    if op == "group":
        return 1.0
    if op == "stdvar":
        return g.value / g.count
    if op == "stddev":
        variance = g.value / g.count
        return math.sqrt(variance) if variance >= 0 else math.nan
    if op == "quantile":
        return quantile(param, g.values)
    return g.value
