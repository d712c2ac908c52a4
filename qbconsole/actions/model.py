"""Optimization rules: their format in rules.yaml, and the typed objects the engine uses.

A rule (one entry of ``optimizations`` in rules.yaml)::

    - name: scale_up                       # letters, digits, '_'
      description: "Add workers: {{ $labels.alertname }} is firing"   # template
      alert: [HighCPU, WorkersSaturated]   # propose while one of these alerts fires...
      expr: quickbid_workers < 20          # ...and/or while this PromQL condition returns a series
      for: 1m                              # the condition must hold this long first
      target: "{{ $labels.instance }}"     # optional; default: the result's labels (or "all")
      action: {kind: scale, workers: "quickbid_workers + 2"}
      bounds: {workers: {min: 1, max: 20}} # clamp: true (default) clamps, false refuses
      priority: high                       # high | medium | low
      cooldown: 10m                        # no new proposal for rule+target this long after one ran (or was rejected)
      expiry: 15m                          # an undecided proposal expires after this
      settle: 5m                           # verify this long after it ran
      verify: {expr: "quickbid:http_request_duration_seconds:avg5m", better: lower, min_change: 0.05}

Parameters (the built-ins' own keys such as ``workers``, or ``params:`` of
``command``/``http``/``sql``) are, when the proposal is made: a number (as
is); a string containing ``{{`` (a template of the condition's labels and
value, see qbconsole.rules.templates); any other string (a PromQL expression
whose value is taken: a scalar, or the series matching the target's labels);
or a mapping ``{expr|template|value: ..., type: int|number|string,
pattern: REGEX}``. Numbers are checked against ``bounds`` (and the built-in
API limits); strings may not hold NUL, are at most 1024 characters and must
fully match ``pattern`` when one is given. ``{name}`` in argv elements, URLs,
JSON bodies and SQL args is replaced by a parameter: always inside one argv
element or one JSON value, never splitting or adding one (and a value that
would start an argv element with '-' is refused: write ``--opt={name}``).

``min_change`` of ``verify`` is relative: 0.05 means the metric must move at
least 5 % in the better direction to count as improved.

qbconsole.actions.schema checks a rule as written and builds these objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from qbconsole.rules.promql import PromQLSyntaxError

PRIORITIES = ("high", "medium", "low")
PARAM_TYPES = ("int", "number", "string")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENV_NAME = NAME
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_STRING = 1024

# Where the built-ins find the platform when the action does not say.
URL_ENV, TOKEN_ENV, DSN_ENV = "QUICKBID_URL", "QUICKBID_ADMIN_TOKEN", "QUICKBID_DB"

DEFAULTS_MS = {"for": 0, "cooldown": 600_000, "expiry": 900_000, "settle": 300_000}
DEFAULT_TIMEOUT_S = {"command": 30.0, "sql": 30.0}  # others: 10 s

# Built-in parameters: name -> (default, type, hard limits of the platform's admin API).
BUILTIN_PARAMS: dict[str, dict[str, tuple[Any, str, tuple[float, float]]]] = {
    "scale": {"workers": ("quickbid_workers + 2", "int", (1, 20))},
    "cache_resize": {"size": ("max(cache_size) * 2", "int", (1, 100_000))},
    "weights": {"weight": (None, "number", (0, 1000))},  # computed by the strategy, one per backend
    "missing_indexes": {},
}


class Problem(NamedTuple):
    """One thing wrong with a rule: where (keys/indexes from the rule), what."""

    path: tuple
    message: str
    at_key: bool = False  # point at the key itself (unknown keys), not its value
    syntax: PromQLSyntaxError | None = None  # a PromQL error, for its exact column


class RuleError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, p.path)) or 'rule'}: {p.message}" for p in problems))


@dataclass(frozen=True)
class Param:
    name: str
    source: str  # expr | template | value
    text: Any  # the expression, the template, or the literal value
    type: str  # int | number | string
    pattern: str | None = None


@dataclass(frozen=True)
class Bound:
    min: float | None = None
    max: float | None = None
    clamp: bool = True


@dataclass(frozen=True)
class Verify:
    expr: str
    better: str = "lower"
    min_change: float = 0.0


@dataclass(frozen=True)
class OptimizationRule:
    name: str
    kind: str
    action: Mapping[str, Any]  # the action's own options (url, argv, ...), parameters excluded
    params: Mapping[str, Param]
    expr: str | None = None
    alerts: tuple[str, ...] = ()
    description: str = ""
    for_ms: int = 0
    target: str | None = None
    bounds: Mapping[str, Bound] = field(default_factory=dict)
    priority: str = "medium"
    cooldown_ms: int = DEFAULTS_MS["cooldown"]
    expiry_ms: int = DEFAULTS_MS["expiry"]
    settle_ms: int = DEFAULTS_MS["settle"]
    verify: Verify | None = None

    @property
    def timeout_s(self) -> float:
        return float(self.action.get("timeout_s", DEFAULT_TIMEOUT_S.get(self.kind, 10.0)))

    def limits(self, param: str) -> tuple[float, float] | None:
        """The built-in API limits of a parameter, if it has any."""
        spec = BUILTIN_PARAMS.get(self.kind, {}).get(param)
        return spec[2] if spec else None
