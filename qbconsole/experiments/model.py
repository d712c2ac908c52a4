"""What an experiment is: its definition (:class:`Spec`), its stored row (:class:`Experiment`), and parsing.

An experiment has a name, a seed, two or more variants (the first is the
control) with split weights, one or more metrics (the first is the primary
one, which the verdict is about), an optional planned duration, and an
analysis plan (``sequential``, ``mde``, ``alpha``, ``min_users``). Its status
goes draft -> running -> stopped and never back.

Metrics are written ``NAME=EVENT[.value|.count]``:

* ``conversion=purchase``: the proportion of exposed users with at least one
  ``purchase`` event (at or after their exposure);
* ``revenue=purchase.value``: the mean per exposed user of the summed
  ``value`` of their ``purchase`` events (0 for users without one);
* ``purchases=purchase.count``: the mean number of ``purchase`` events per exposed user.

Everything here is pure; :mod:`qbconsole.experiments.lifecycle` stores it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

STATUSES = ("draft", "running", "stopped")
KINDS = {"": "conversion", "value": "value", "count": "count"}  # spec suffix -> metric kind
DEFAULT_MDE = 0.05  # smallest relative lift worth detecting: +5 %
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_USERS = 100  # per variant, before any decision
POWER = 0.8  # of the sample-size estimate

EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
USER_ID = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


class ExperimentError(ValueError):
    """A request about an experiment that cannot be done; the message is the reason."""


class UnknownExperiment(ExperimentError):
    """No experiment has that name."""


class NotRunning(ExperimentError):
    """The experiment is not in a state that accepts this (e.g. exposures of a draft)."""


class SplitLocked(ExperimentError):
    """Refused: the split, variants or seed of a started experiment would change."""


class Metric(NamedTuple):
    """``name`` measured on ``event``; ``kind`` is conversion, value or count."""

    name: str
    event: str
    kind: str

    @property
    def spec(self) -> str:
        suffix = next(s for s, k in KINDS.items() if k == self.kind)
        return f"{self.event}.{suffix}" if suffix else self.event

    def __str__(self) -> str:
        return f"{self.name}={self.spec}"


@dataclass(frozen=True)
class Spec:
    """An experiment's definition, as created or configured. Validated on construction."""

    name: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    metrics: tuple[Metric, ...]
    duration_s: float | None = None
    sequential: bool = False
    mde: float = DEFAULT_MDE
    alpha: float = DEFAULT_ALPHA
    min_users: int = DEFAULT_MIN_USERS
    description: str = ""
    seed: str | None = None  # None: the name and a random salt, chosen at creation

    def __post_init__(self) -> None:
        check_name(self.name)
        check_variants(self.variants)
        if len(self.weights) != len(self.variants):
            raise ExperimentError(f"{len(self.variants)} variants but {len(self.weights)} split weights")
        for w in self.weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
                raise ExperimentError(f"split weights must be positive numbers, got {w!r}")
        if not self.metrics:
            raise ExperimentError("an experiment needs at least one metric, e.g. conversion=purchase")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ExperimentError(f"metric names must be unique, got {', '.join(names)}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ExperimentError(f"duration must be positive, got {self.duration_s!r}")
        if not (math.isfinite(self.mde) and 0 < self.mde <= 10):
            raise ExperimentError(f"mde is a relative lift in (0, 10] (0.05 = 5 %), got {self.mde!r}")
        if not 0 < self.alpha <= 0.5:
            raise ExperimentError(f"alpha must be in (0, 0.5], got {self.alpha!r}")
        if isinstance(self.min_users, bool) or not isinstance(self.min_users, int) or self.min_users < 2:
            raise ExperimentError(f"min_users must be a whole number >= 2, got {self.min_users!r}")
        if self.seed is not None and not (isinstance(self.seed, str) and self.seed.strip()):
            raise ExperimentError("seed must be a non-empty string")

    @property
    def control(self) -> str:
        return self.variants[0]

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    @property
    def shares(self) -> tuple[float, ...]:
        """The weights normalised to sum to 1."""
        total = float(sum(self.weights))
        return tuple(w / total for w in self.weights)


@dataclass(frozen=True)
class Experiment(Spec):
    """A stored experiment: its spec plus identity, status and who did what when (ms UTC)."""

    id: int = 0
    status: str = "draft"
    origin: str = "cli"
    created_by: str = ""
    created_at: int = 0
    started_at: int | None = None
    stopped_at: int | None = None
    stopped_by: str | None = None

    @property
    def horizon_at(self) -> int | None:
        """When the planned duration ends (ms), if it has started and has a duration."""
        if self.started_at is None or self.duration_s is None:
            return None
        return self.started_at + int(self.duration_s * 1000)

    def spec(self) -> Spec:
        return Spec(self.name, self.variants, self.weights, self.metrics, self.duration_s, self.sequential,
                    self.mde, self.alpha, self.min_users, self.description, self.seed)


# ---- parsing: the CLI's and the config's words -> values -----------------------------
def check_name(name: object) -> str:
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise ExperimentError(f"invalid experiment name {name!r}: letters, digits, '_', '.', '-', "
                              "starting with a letter or digit, at most 64 characters")
    return name


def check_user(user: object) -> str:
    if not isinstance(user, str) or not USER_ID.fullmatch(user):
        raise ExperimentError("a user id is 1 to 256 characters without control characters")
    return user


def check_event(event: object) -> str:
    if not isinstance(event, str) or not EVENT_NAME.fullmatch(event):
        raise ExperimentError(f"invalid event name {event!r}: lower-case letters, digits and '_'")
    return event


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    variants = tuple(variants)
    if len(variants) < 2:
        raise ExperimentError("an experiment needs at least two variants (the first is the control)")
    for v in variants:
        if not isinstance(v, str) or not VARIANT_NAME.fullmatch(v):
            raise ExperimentError(f"invalid variant name {v!r}: letters, digits, '_', '.', '-'")
    if len(set(variants)) != len(variants):
        raise ExperimentError(f"variant names must be unique, got {', '.join(variants)}")
    return variants


def parse_variants(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"control,treatment"`` or a list of names."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return check_variants([v.strip() if isinstance(v, str) else v for v in items])


def parse_split(value: str | Iterable[float], count: int) -> tuple[float, ...]:
    """``"50,50"`` or a list of positive numbers, one per variant (any scale: 90,10 = 0.9,0.1)."""
    if isinstance(value, str):
        try:
            weights = [float(w) for w in value.split(",")]
        except ValueError:
            raise ExperimentError(f"split {value!r} must be numbers separated by commas, e.g. 50,50") from None
    else:
        weights = list(value)
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
            raise ExperimentError(f"split weights must be positive numbers, got {w!r}")
    if len(weights) != count:
        raise ExperimentError(f"split has {len(weights)} weights but there are {count} variants")
    return tuple(float(w) for w in weights)


def parse_metric(name: str, spec: object) -> Metric:
    """``("revenue", "purchase.value")`` -> Metric("revenue", "purchase", "value")."""
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise ExperimentError(f"invalid metric name {name!r}: lower-case letters, digits and '_'")
    if not isinstance(spec, str):
        raise ExperimentError(f"metric {name}: expected EVENT, EVENT.value or EVENT.count, got {spec!r}")
    event, _, suffix = spec.strip().partition(".")
    if suffix not in KINDS or (not suffix and spec.strip().endswith(".")):
        raise ExperimentError(f"metric {name}: unknown measure {suffix!r} in {spec!r} "
                              "(expected EVENT, EVENT.value or EVENT.count)")
    try:
        check_event(event)
    except ExperimentError as err:
        raise ExperimentError(f"metric {name}: {err}") from None
    return Metric(name, event, KINDS[suffix])


def parse_metric_arg(text: str) -> Metric:
    """``"conversion=purchase"`` (the CLI's ``--metric``)."""
    name, sep, spec = text.partition("=")
    if not sep:
        raise ExperimentError(f"metric {text!r} must be NAME=EVENT, NAME=EVENT.value or NAME=EVENT.count")
    return parse_metric(name.strip(), spec.strip())


def parse_mde(value: str | float) -> float:
    """``"5%"`` or ``0.05`` -> 0.05 (a relative lift)."""
    if isinstance(value, bool):
        raise ExperimentError("mde must be a number such as 0.05 or a percentage such as 5%")
    if isinstance(value, str):
        text = value.strip()
        try:
            mde = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ExperimentError(f"mde {value!r} must be a number such as 0.05 or a percentage such as 5%") from None
    elif isinstance(value, (int, float)):
        mde = float(value)
    else:
        raise ExperimentError(f"mde must be a number or a percentage, got {value!r}")
    if not (math.isfinite(mde) and 0 < mde <= 10):
        raise ExperimentError(f"mde is a relative lift in (0, 10] (5% = 0.05), got {value!r}")
    return mde


CONFIG_KEYS = ("name", "description", "variants", "split", "metrics", "duration", "start", "sequential",
               "mde", "alpha", "min_users", "seed")


def spec_from_config(raw: Mapping[str, Any]) -> tuple[Spec, bool]:
    """(spec, start) from one ``experiments:`` entry of rules.yaml, as the config keeps it."""
    from qbconsole.config.durations import parse_duration

    unknown = set(raw) - set(CONFIG_KEYS)
    if unknown:
        raise ExperimentError(f"unknown key(s) {', '.join(sorted(unknown))} in experiment")
    variants = parse_variants(raw.get("variants") or ())
    split = raw.get("split")
    weights = parse_split(split, len(variants)) if split is not None else (1.0,) * len(variants)
    metrics_raw = raw.get("metrics")
    if not isinstance(metrics_raw, Mapping):
        raise ExperimentError("metrics must be a mapping such as {conversion: purchase, revenue: purchase.value}")
    metrics = tuple(parse_metric(k, v) for k, v in metrics_raw.items())
    duration = raw.get("duration")
    try:
        duration_s = parse_duration(duration) if duration is not None else None
    except ValueError as err:
        raise ExperimentError(f"duration: {err}") from None
    spec = Spec(
        name=check_name(raw.get("name")), variants=variants, weights=weights, metrics=metrics,
        duration_s=duration_s, sequential=_flag(raw, "sequential"),
        mde=parse_mde(raw["mde"]) if raw.get("mde") is not None else DEFAULT_MDE,
        alpha=_number(raw, "alpha", DEFAULT_ALPHA), min_users=raw.get("min_users", DEFAULT_MIN_USERS),
        description=str(raw.get("description") or ""), seed=raw.get("seed"))
    return spec, _flag(raw, "start")


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ExperimentError(f"{key} must be true or false, got {value!r}")
    return value


def _number(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExperimentError(f"{key} must be a number, got {value!r}")
    return float(value)


# ---- rows ------------------------------------------------------------------------------
COLUMNS = ("id, name, description, seed, variants, weights, metrics, status, origin, duration_s, sequential,"
           " mde, alpha, min_users, created_by, created_at, started_at, stopped_at, stopped_by")


def from_row(row: Sequence[Any]) -> Experiment:
    (id_, name, description, seed, variants, weights, metrics, status, origin, duration_s, sequential,
     mde, alpha, min_users, created_by, created_at, started_at, stopped_at, stopped_by) = row
    return Experiment(
        name=name, variants=tuple(json.loads(variants)), weights=tuple(json.loads(weights)),
        metrics=tuple(Metric(m["name"], m["event"], m["kind"]) for m in json.loads(metrics)),
        duration_s=duration_s, sequential=bool(sequential), mde=mde, alpha=alpha, min_users=min_users,
        description=description, seed=seed, id=id_, status=status, origin=origin, created_by=created_by,
        created_at=created_at, started_at=started_at, stopped_at=stopped_at, stopped_by=stopped_by)


def metrics_json(metrics: Iterable[Metric]) -> str:
    return json.dumps([m._asdict() for m in metrics], separators=(",", ":"))


def describe(spec: Spec) -> dict[str, Any]:
    """The definition as plain data (audit details, ``--json``)."""
    return {"variants": list(spec.variants), "split": list(spec.weights),
            "metrics": {m.name: m.spec for m in spec.metrics}, "duration_s": spec.duration_s,
            "sequential": spec.sequential, "mde": spec.mde, "alpha": spec.alpha, "min_users": spec.min_users,
            "description": spec.description}


def with_changes(spec: Spec, **changes: Any) -> Spec:
    """A copy of ``spec`` (validated again) with the fields given changed."""
    return Spec(**{**{f: getattr(spec, f) for f in Spec.__dataclass_fields__}, **changes})


__all__ = [
    "CONFIG_KEYS", "DEFAULT_ALPHA", "DEFAULT_MDE", "DEFAULT_MIN_USERS", "Experiment", "ExperimentError",
    "Metric", "NotRunning", "POWER", "STATUSES", "Spec", "SplitLocked", "UnknownExperiment", "check_event",
    "check_name", "check_user", "describe", "from_row", "metrics_json", "parse_metric", "parse_metric_arg",
    "parse_mde", "parse_split", "parse_variants", "spec_from_config", "with_changes",
]
