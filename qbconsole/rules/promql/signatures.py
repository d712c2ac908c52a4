"""Argument and result types of the supported functions and aggregations.

The parser checks calls against this table; the evaluator implements each name.
"""

from __future__ import annotations

from typing import NamedTuple

from qbconsole.rules.promql.nodes import MATRIX, SCALAR, VECTOR


class Signature(NamedTuple):
    args: tuple[str, ...]
    min_args: int  # fewer than len(args) when trailing arguments are optional
    returns: str


def _sig(*args: str, returns: str = VECTOR, optional: int = 0) -> Signature:
    return Signature(tuple(args), len(args) - optional, returns)


_RANGE_FUNCS = ("rate", "irate", "increase", "delta", "idelta", "changes", "resets",
                "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
                "count_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
                "present_over_time", "absent_over_time")
_MATH_FUNCS = ("abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn")

FUNCTIONS: dict[str, Signature] = {
    **{name: _sig(MATRIX) for name in _RANGE_FUNCS},
    **{name: _sig(VECTOR) for name in _MATH_FUNCS},
    "quantile_over_time": _sig(SCALAR, MATRIX),
    "absent": _sig(VECTOR),
    "histogram_quantile": _sig(SCALAR, VECTOR),
    "clamp": _sig(VECTOR, SCALAR, SCALAR),
    "clamp_min": _sig(VECTOR, SCALAR),
    "clamp_max": _sig(VECTOR, SCALAR),
    "round": _sig(VECTOR, SCALAR, optional=1),
    "scalar": _sig(VECTOR, returns=SCALAR),
    "vector": _sig(SCALAR),
    "time": _sig(returns=SCALAR),
    "sort": _sig(VECTOR),
    "sort_desc": _sig(VECTOR),
}

# Aggregation operators; those with a parameter name its type.
AGGREGATIONS: dict[str, str | None] = {
    "sum": None, "avg": None, "min": None, "max": None, "count": None,
    "stddev": None, "stdvar": None, "group": None, "quantile": SCALAR,
}
