"""The typed syntax tree of a parsed expression, and label matchers.

Every node knows its value ``type`` (one of SCALAR, VECTOR, MATRIX, STRING) and its
``pos``, the 0-based offset in the expression text where it starts (not part of
equality, so two parses of equivalent text compare equal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Union

SCALAR, VECTOR, MATRIX, STRING = "scalar", "instant vector", "range vector", "string"

ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^"})
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPS = frozenset({"and", "or", "unless"})

ONE_TO_ONE, MANY_TO_ONE, ONE_TO_MANY, MANY_TO_MANY = "one-to-one", "many-to-one", "one-to-many", "many-to-many"


def _pos():
    return field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher ``name op "value"``; op is one of ``=``, ``!=``, ``=~``, ``!~``.

    Regular expressions are anchored at both ends, as in Prometheus. A missing label
    matches as the empty string.
    """

    name: str
    op: str
    value: str
    regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is missing) satisfies this matcher."""
        op = self.op
        if op == "=":
            return value == self.value
        if op == "!=":
            return value != self.value
        hit = self.regex.fullmatch(value) is not None
        return hit if op == "=~" else not hit

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return self.matches(labels.get(self.name, ""))


@dataclass(frozen=True, slots=True)
class NumberLiteral:
    value: float
    pos: int = _pos()
    type = SCALAR


@dataclass(frozen=True, slots=True)
class StringLiteral:
    value: str
    pos: int = _pos()
    type = STRING


@dataclass(frozen=True, slots=True)
class VectorSelector:
    """``name{matchers} offset d``. ``name`` is None for ``{__name__=~"..."}`` selectors;
    ``matchers`` never repeat the metric name given as ``name``."""

    name: str | None
    matchers: tuple[Matcher, ...] = ()
    offset_ms: int = 0
    pos: int = _pos()
    type = VECTOR


@dataclass(frozen=True, slots=True)
class MatrixSelector:
    vector: VectorSelector
    range_ms: int
    pos: int = _pos()
    type = MATRIX


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    type: str = field(default=VECTOR, compare=False)
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    expr: "Expr"
    param: "Expr | None" = None
    grouping: tuple[str, ...] = ()
    without: bool = False
    pos: int = _pos()
    type = VECTOR


@dataclass(frozen=True, slots=True)
class VectorMatching:
    """How the two vectors of a binary operation pair up."""

    card: str = ONE_TO_ONE
    labels: tuple[str, ...] = ()
    on: bool = False
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: "Expr"
    rhs: "Expr"
    bool: bool = False
    matching: VectorMatching | None = None
    pos: int = _pos()
    type: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", VECTOR if VECTOR in (self.lhs.type, self.rhs.type) else SCALAR)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    expr: "Expr"
    pos: int = _pos()
    type: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", self.expr.type)


@dataclass(frozen=True, slots=True)
class Paren:
    expr: "Expr"
    pos: int = _pos()
    type: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", self.expr.type)


Expr = Union[NumberLiteral, StringLiteral, VectorSelector, MatrixSelector, Call,
             Aggregate, Binary, Unary, Paren]
