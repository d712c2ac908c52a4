"""Result values of an evaluation, and the label-set helpers every operation shares."""

from __future__ import annotations

from typing import NamedTuple

from qbconsole.rules.promql.errors import PromQLEvalError

NAME = "__name__"


class Scalar(NamedTuple):
    value: float


class String(NamedTuple):
    value: str


class VSample(NamedTuple):
    """One element of an instant vector. ``labels`` includes ``__name__`` where
    Prometheus keeps it; treat it as read-only (results may share dicts)."""

    labels: dict[str, str]
    value: float


Vector = list[VSample]


def drop_name(labels: dict[str, str]) -> dict[str, str]:
    """The label set without ``__name__`` (the same dict when it has none)."""
    if NAME not in labels:
        return labels
    out = dict(labels)
    del out[NAME]
    return out


def check_unique(vector: Vector) -> Vector:
    """Raise as Prometheus does when two elements have the same label set."""
    if len(vector) > 1:
        seen = set()
        for sample in vector:
            key = frozenset(sample.labels.items())
            if key in seen:
                raise PromQLEvalError("vector cannot contain metrics with the same labelset")
            seen.add(key)
    return vector


def several_names(labels_seq) -> bool:
    """Whether dropping ``__name__`` could make label sets collide (more than one name)."""
    first = None
    for i, labels in enumerate(labels_seq):
        name = labels.get(NAME)
        if i == 0:
            first = name
        elif name != first:
            return True
    return False
