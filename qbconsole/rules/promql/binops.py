"""Binary operators: arithmetic, comparisons (filter or ``bool``), and/or/unless,
with Prometheus's vector matching (one-to-one, group_left/group_right)."""

from __future__ import annotations

import operator
from typing import Callable

from qbconsole.rules.promql import gomath
from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.rules.promql.nodes import ONE_TO_MANY, ONE_TO_ONE, VectorMatching
from qbconsole.rules.promql.values import NAME, VSample, Vector, check_unique, drop_name, several_names

ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": gomath.div, "%": gomath.mod, "^": gomath.pow,
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt,
    "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}


def scalar_scalar(op: str, a: float, b: float) -> float:
    """Two scalars: arithmetic, or a ``bool`` comparison giving 1 or 0."""
    arith = ARITHMETIC.get(op)
    if arith is not None:
        return arith(a, b)
    return 1.0 if COMPARE[op](a, b) else 0.0


def vector_scalar(op: str, vector: Vector, scalar: float, scalar_left: bool, is_bool: bool) -> Vector:
    """A vector and a scalar, in either order. Comparisons keep the vector's value."""
    arith = ARITHMETIC.get(op)
    if arith is not None:
        if scalar_left:
            out = [VSample(drop_name(s.labels), arith(scalar, s.value)) for s in vector]
        else:
            out = [VSample(drop_name(s.labels), arith(s.value, scalar)) for s in vector]
    else:
        cmp = COMPARE[op]
        if scalar_left:
            cmp = (lambda f: lambda v, x: f(x, v))(cmp)
        if not is_bool:
            return [s for s in vector if cmp(s.value, scalar)]
        out = [VSample(drop_name(s.labels), 1.0 if cmp(s.value, scalar) else 0.0) for s in vector]
    if several_names(s.labels for s in vector):
        check_unique(out)
    return out


def _signature(matching: VectorMatching) -> Callable[[dict[str, str]], object]:
    names = matching.labels
    if matching.on:
        return lambda labels: tuple([labels.get(n, "") for n in names])
    ignored = frozenset(names) | {NAME}
    if len(ignored) == 1:
        return lambda labels: frozenset([kv for kv in labels.items() if kv[0] != NAME])
    return lambda labels: frozenset([kv for kv in labels.items() if kv[0] not in ignored])


def _describe(labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != NAME)
    return labels.get(NAME, "") + "{" + inner + "}"


def set_operation(op: str, lhs: Vector, rhs: Vector, matching: VectorMatching) -> Vector:
    """``and`` / ``or`` / ``unless``: elements kept by whether their match group exists
    on the other side. Labels (including the name) stay as they are."""
    if op == "or":
        if not lhs:
            return list(rhs)
        if not rhs:
            return list(lhs)
        sig = _signature(matching)
        left = {sig(s.labels) for s in lhs}
        return list(lhs) + [s for s in rhs if sig(s.labels) not in left]
    if not lhs or not rhs:
        return [] if op == "and" else list(lhs)
    sig = _signature(matching)
    right = {sig(s.labels) for s in rhs}
    if op == "and":
        return [s for s in lhs if sig(s.labels) in right]
    return [s for s in lhs if sig(s.labels) not in right]


def _result_labels(many: dict[str, str], one: dict[str, str], op: str, m: VectorMatching) -> dict[str, str]:
    out = dict(many)
    if op in ARITHMETIC:
        out.pop(NAME, None)
    if m.card == ONE_TO_ONE:
        if m.on:
            out = {k: v for k, v in out.items() if k in m.labels}
        else:
            for name in m.labels:
                out.pop(name, None)
    for name in m.include:
        value = one.get(name, "")
        if value:
            out[name] = value
        else:
            out.pop(name, None)
    return out


def vector_vector(op: str, lhs: Vector, rhs: Vector, m: VectorMatching, is_bool: bool) -> Vector:
    """Arithmetic or comparison between two vectors: each element of the 'many' side
    pairs with the one element of the other side that has its match signature."""
    if not lhs or not rhs:
        return []
    if m.card == ONE_TO_MANY:
        lhs, rhs = rhs, lhs
    sig = _signature(m)
    one_side: dict[object, VSample] = {}
    for s in rhs:
        key = sig(s.labels)
        if key in one_side:
            side = "left" if m.card == ONE_TO_MANY else "right"
            raise PromQLEvalError(
                f"found duplicate series for the match group on the {side} hand-side of the operation: "
                f"[{_describe(s.labels)}, {_describe(one_side[key].labels)}];many-to-many matching not "
                "allowed: matching labels must be unique on one side")
        one_side[key] = s
    arith, cmp = ARITHMETIC.get(op), COMPARE.get(op)
    swapped = m.card == ONE_TO_MANY
    matched: dict[object, set | None] = {}
    out: Vector = []
    for ls in lhs:
        key = sig(ls.labels)
        rs = one_side.get(key)
        if rs is None:
            continue
        vl, vr = (rs.value, ls.value) if swapped else (ls.value, rs.value)
        if arith is not None:
            value, keep = arith(vl, vr), True
        else:
            value, keep = vl, cmp(vl, vr)
        if is_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        labels = _result_labels(ls.labels, rs.labels, op, m)
        if is_bool:
            labels.pop(NAME, None)
        if m.card == ONE_TO_ONE:
            if key in matched:
                raise PromQLEvalError("multiple matches for labels: many-to-one matching must be "
                                      "explicit (group_left/group_right)")
            matched[key] = None
        else:
            inserted = matched.setdefault(key, set())
            label_key = frozenset(labels.items())
            if label_key in inserted:
                raise PromQLEvalError("multiple matches for labels: grouping labels must ensure unique matches")
            inserted.add(label_key)
        out.append(VSample(labels, value))
    return out

