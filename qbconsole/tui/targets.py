"""Targets the Overview tiles are judged against, and the judgement itself.

The figures are the source design's performance targets (DESIGN.md section 1).
For now they live in ``TARGETS`` below; when the ``slos`` section of rules.yaml is
built, it will feed this table (and the rules engine will own the judgement).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from qbconsole.tui.data import CPU, MEMORY, MetricWindow


class Status(Enum):
    """A tile's state; the value is the word shown next to its colour."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    NO_DATA = "no data"
    NO_TARGET = "no target"


@dataclass(frozen=True)
class Target:
    """``average(metric over the window) <op> threshold``, e.g. CPU < 70 % average."""

    op: str
    threshold: float

    @property
    def holds(self) -> Callable[[float, float], bool]:
        return {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[self.op]


TARGETS: dict[str, Target] = {
    CPU: Target("<", 70.0),
    MEMORY: Target("<", 80.0),
}
"""Metric name -> target. Fed by the slos section of rules.yaml once that exists."""


def judge(window: MetricWindow, target: Target | None) -> Status:
    """The status of a figure against its target, over the window's average.

    crit: the average misses the target. warn: the average meets it but the
    latest value does not (a spike that has not yet moved the average).
    """
    latest, average = window.latest, window.average
    if latest is None or average is None:
        return Status.NO_DATA
    if target is None:
        return Status.NO_TARGET
    if not target.holds(average, target.threshold):
        return Status.CRIT
    if not target.holds(latest[1], target.threshold):
        return Status.WARN
    return Status.OK
