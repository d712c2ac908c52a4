"""Function implementations, written to give Prometheus 2.42's results float for float.

Range functions take one series' points in the window, ``[(ts_ms, value), ...]``
(ascending, never empty, staleness markers removed) and return a value or None
(no output for that series). Instant functions map a value.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from qbconsole.rules.promql import gomath
from qbconsole.rules.promql.literals import parse_go_float

Points = list[tuple[int, float]]
INF, NAN = math.inf, math.nan


class Window(NamedTuple):
    """Where the range of a range function lies: [start, end] in ms, its length in s."""

    start: int
    end: int
    seconds: float
    v3: bool  # Prometheus 3 extrapolation order


def range_seconds(range_ms: int) -> float:
    """Go's Duration.Seconds() of a millisecond range, rounded as Go rounds it."""
    return float(range_ms // 1000) + float(range_ms % 1000 * 1_000_000) / 1e9


def extrapolated_rate(points: Points, w: Window, is_counter: bool, is_rate: bool) -> float | None:
    """rate / increase / delta: the change over the window, counter resets corrected,
    extrapolated to the window's edges unless a sample is missing there (gap > 1.1 x
    the average interval: then by half an interval), never below a counter's zero."""
    n = len(points)
    if n < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if is_counter:
        prev = first_v
        for _, v in points:
            if v < prev:
                result += prev
            prev = v
    to_start = (first_t - w.start) / 1000
    to_end = (w.end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (n - 1)
    threshold = average * 1.1
    interval = sampled
    if w.v3:
        if to_start >= threshold:
            to_start = average / 2
        if is_counter and result > 0 and first_v >= 0:
            to_zero = sampled * (first_v / result)
            if to_zero < to_start:
                to_start = to_zero
        interval += to_start
        interval += to_end if to_end < threshold else average / 2
    else:
        if is_counter and result > 0 and first_v >= 0:
            to_zero = sampled * (first_v / result)
            if to_zero < to_start:
                to_start = to_zero
        interval += to_start if to_start < threshold else average / 2
        interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    if is_rate:
        factor /= w.seconds
    return result * factor


def instant_value(points: Points, is_rate: bool) -> float | None:
    """irate / idelta: from the last two samples."""
    if len(points) < 2:
        return None
    (prev_t, prev_v), (last_t, last_v) = points[-2], points[-1]
    result = last_v if is_rate and last_v < prev_v else last_v - prev_v
    interval = last_t - prev_t
    if interval == 0:
        return None
    return result / (interval / 1000) if is_rate else result


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def sum_over_time(points: Points) -> float:
    total = c = 0.0
    for _, v in points:
        total, c = _kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def avg_over_time(points: Points) -> float:
    mean = count = c = 0.0
    for _, v in points:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and v == v:
                continue
        mean, c = _kahan_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def _variance(points: Points) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for _, v in points:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def min_over_time(points: Points) -> float:
    best = points[0][1]
    for _, v in points:
        if v < best or best != best:
            best = v
    return best


def max_over_time(points: Points) -> float:
    best = points[0][1]
    for _, v in points:
        if v > best or best != best:
            best = v
    return best


def changes(points: Points) -> float:
    count, prev = 0, points[0][1]
    for _, v in points[1:]:
        if v != prev and not (v != v and prev != prev):
            count += 1
        prev = v
    return float(count)


def resets(points: Points) -> float:
    count, prev = 0, points[0][1]
    for _, v in points[1:]:
        if v < prev:
            count += 1
        prev = v
    return float(count)


def quantile(q: float, values: list[float]) -> float:
    """Prometheus's quantile: rank q*(N-1) with linear interpolation; q<0 -> -Inf, q>1 -> +Inf."""
    if not values:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    if q != q:
        return NAN
    ordered = sorted(values, key=lambda v: (v == v, v))  # NaN first, as Go's sort puts them
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1.0, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


RANGE_FUNCTIONS: dict[str, Callable[[Points, Window], float | None]] = {
    "rate": lambda p, w: extrapolated_rate(p, w, True, True),
    "increase": lambda p, w: extrapolated_rate(p, w, True, False),
    "delta": lambda p, w: extrapolated_rate(p, w, False, False),
    "irate": lambda p, w: instant_value(p, True),
    "idelta": lambda p, w: instant_value(p, False),
    "avg_over_time": lambda p, w: avg_over_time(p),
    "sum_over_time": lambda p, w: sum_over_time(p),
    "min_over_time": lambda p, w: min_over_time(p),
    "max_over_time": lambda p, w: max_over_time(p),
    "count_over_time": lambda p, w: float(len(p)),
    "last_over_time": lambda p, w: p[-1][1],
    "stdvar_over_time": lambda p, w: _variance(p),
    "stddev_over_time": lambda p, w: _sqrt(_variance(p)),
    "present_over_time": lambda p, w: 1.0,
    "changes": lambda p, w: changes(p),
    "resets": lambda p, w: resets(p),
}


def _guard(fn: Callable[[float], float]) -> Callable[[float], float]:
    """Wrap a math function so domain and range errors give Go's NaN / +Inf."""

    def wrapped(v: float) -> float:
        try:
            return fn(v)
        except OverflowError:
            return INF
        except ValueError:
            return NAN

    return wrapped


_sqrt = _guard(math.sqrt)

MATH_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "abs": math.fabs,
    "ceil": gomath.ceil,
    "floor": gomath.floor,
    "sqrt": _sqrt,
    "exp": gomath.exp,
    "ln": gomath.log,
    "log2": gomath.log2,
    "log10": gomath.log10,
    "sgn": lambda v: -1.0 if v < 0 else 1.0 if v > 0 else v,
}


def round_to(v: float, inverse: float) -> float:
    """round(v, to_nearest) with inverse = 1 / to_nearest; ties round up."""
    return gomath.div(gomath.floor(v * inverse + 0.5), inverse)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile over (upper bound, cumulative count) buckets, as Prometheus 2.42."""
    if q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    buckets = sorted(buckets, key=lambda b: b[0])
    if buckets[-1][0] != INF:
        return NAN
    merged: list[list[float]] = []
    for bound, count in buckets:  # coalesce equal bounds
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    top = -INF
    for b in merged:  # force monotonic counts
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1] = top
    if len(merged) < 2:
        return NAN
    observations = merged[-1][1]
    if observations == 0:
        return NAN
    rank = q * observations
    last = len(merged) - 1
    b = next((i for i in range(last) if merged[i][1] >= rank), last)
    if b == last:
        return merged[last - 1][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


def histogram_groups(vector) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    """Group bucket samples by their labels other than ``le`` (and by metric name);
    samples without a parseable ``le`` are skipped. Result labels drop name and le."""
    groups: dict[tuple, tuple[dict[str, str], list]] = {}
    for labels, value in vector:
        bound = parse_go_float(labels.get("le", ""))
        if bound is None:
            continue
        key = frozenset((k, v) for k, v in labels.items() if k != "le")
        group = groups.get(key)
        if group is None:
            out = {k: v for k, v in labels.items() if k != "le" and k != "__name__"}
            group = groups[key] = (out, [])
        group[1].append((bound, value))
    return list(groups.values())
