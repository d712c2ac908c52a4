"""The ingest event schema: each event checked in full and turned into what to store.

Types (fields beyond those listed are refused, so a misspelt field is an
error rather than silently lost):

* ``rum`` ``page_view``: ``page``, ``page_load_seconds``, optional ``interaction_seconds``
  -> ``rum_page_load_seconds{page}``, ``rum_interaction_seconds{page}``
* ``rum`` ``session_end``: ``session_duration_seconds``, ``bounced`` (bool)
  -> ``rum_session_duration_seconds``, ``rum_bounce`` (1/0)
* ``rum`` ``survey``: ``satisfaction`` (integer 1-5) and/or ``nps`` (integer 0-10)
  -> ``rum_satisfaction_score``, ``rum_nps_score``
* ``rum`` ``task``: ``task``, ``completed`` (bool) -> ``rum_task_completed{task}`` (1/0)
* ``security``: ``kind``, optional ``source_ip`` -> one count on ``security_events_total{kind}``
* ``metric``: ``name``, optional ``labels``, ``value`` -> ``name{labels}``
* ``exposure``: ``experiment``, ``user``, optional ``variant`` (must be the user's
  assigned one) -> the user's first exposure (later ones are no-ops)
* ``experiment_event``: ``experiment``, ``user``, ``event``, optional ``value``
  -> one experiment event (it counts only if the user was exposed at or before it)

The experiment types become :class:`ExperimentItem` and are checked against the
store when the batch is written (unknown experiment: 400; not running: 409), in
the same transaction as the rest of the batch (:mod:`qbconsole.ingest.experiments`).

Every type takes an optional ``ts`` (integer ms UTC, within the last 24 h and
at most 5 min ahead). Numbers are JSON numbers: strings and booleans are refused.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any, Mapping, NamedTuple

from qbconsole.experiments.model import EVENT_NAME, EXPERIMENT_NAME, USER_ID, VARIANT_NAME
from qbconsole.ingest.errors import Rejected

MAX_AGE_MS = 24 * 3600 * 1000
MAX_AHEAD_MS = 5 * 60 * 1000
MAX_SECONDS = 3600.0  # page load and interaction times above an hour are not measurements
MAX_SESSION_SECONDS = 7 * 86400.0
MAX_LABELS = 32
MAX_LABEL_VALUE = 1024
SECURITY_METRIC = "security_events_total"
MAX_EVENT_VALUE = 1e12  # an experiment event value beyond this is a bug, not an amount

METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # colons are for recording rules
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:-]{0,127}")  # page, task: bounded label values
KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
RESERVED_PREFIXES = ("qbconsole_", "__")
OWNED_NAMES = (SECURITY_METRIC,)  # counted by the server itself

RUM_FIELDS = {
    "page_view": {"page", "page_load_seconds", "interaction_seconds"},
    "session_end": {"session_duration_seconds", "bounced"},
    "survey": {"satisfaction", "nps"},
    "task": {"task", "completed"},
}
COMMON_FIELDS = {"type", "ts"}


class Item(NamedTuple):
    """One thing to store: a sample (``ts`` None = receive time) or, with ``count``, a counter step."""

    type: str
    name: str
    labels: dict[str, str]
    value: float
    ts: int | None
    count: bool = False


class ExperimentItem(NamedTuple):
    """An exposure (``event`` None) or an experiment event; ``index`` is its place in the batch."""

    type: str
    experiment: str
    user: str
    event: str | None
    value: float | None
    ts: int | None
    index: int
    variant: str | None = None


class _Event:
    """Field access for one event, every failure naming the event's index and the field."""

    def __init__(self, event: Any, index: int) -> None:
        if not isinstance(event, dict):
            raise Rejected(400, "an event must be a JSON object", index=index)
        self.data, self.index = event, index

    def fail(self, field: str | None, message: str) -> Rejected:
        return Rejected(400, message, index=self.index, field=field)

    def only(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown field {key!r} (fields: {', '.join(sorted(allowed))})")

    def has(self, field: str) -> bool:
        return field in self.data and self.data[field] is not None

    def get(self, field: str) -> Any:
        if not self.has(field):
            raise self.fail(field, f"missing field {field!r}")
        return self.data[field]

    def number(self, field: str, low: float, high: float) -> float:
        value = self.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(field, f"{field} must be a number, got {_json_kind(value)}")
        if not math.isfinite(value) or not low <= value <= high:
            raise self.fail(field, f"{field} must be between {low:g} and {high:g}, got {value!r}")
        return float(value)

    def integer(self, field: str, low: int, high: int) -> int:
        value = self.get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"{field} must be an integer, got {_json_kind(value)}")
        if not low <= value <= high:
            raise self.fail(field, f"{field} must be between {low} and {high}, got {value}")
        return value

    def text(self, field: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.get(field)
        if not isinstance(value, str):
            raise self.fail(field, f"{field} must be a string, got {_json_kind(value)}")
        if not pattern.fullmatch(value):
            raise self.fail(field, f"{field} {value[:64]!r} is not {what}")
        return value

    def boolean(self, field: str) -> bool:
        value = self.get(field)
        if not isinstance(value, bool):
            raise self.fail(field, f"{field} must be true or false, got {_json_kind(value)}")
        return value

    def word(self, field: str, pattern: re.Pattern[str] = WORD) -> str:
        value = self.get(field)
        if not isinstance(value, str):
            raise self.fail(field, f"{field} must be a string, got {_json_kind(value)}")
        if not pattern.fullmatch(value):
            raise self.fail(field, f"{field} {value[:64]!r} is not allowed (pattern {pattern.pattern})")
        return value

    def ts(self, now_ms: int) -> int | None:
        if not self.has("ts"):
            return None
        value = self.data["ts"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail("ts", f"ts must be an integer (ms since the epoch), got {_json_kind(value)}")
        if value < now_ms - MAX_AGE_MS:
            raise self.fail("ts", "ts is more than 24 h in the past")
        if value > now_ms + MAX_AHEAD_MS:
            raise self.fail("ts", "ts is more than 5 min in the future")
        return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def validate_event(event: Any, index: int, now_ms: int) -> list[Item | ExperimentItem]:
    """What one event stores; Rejected(400) naming index and field if anything is wrong."""
    e = _Event(event, index)
    kind = e.get("type")
    if kind == "rum":
        return _rum(e, now_ms)
    if kind == "security":
        return _security(e, now_ms)
    if kind == "metric":
        return _metric(e, now_ms)
    if kind in ("exposure", "experiment_event"):
        return [_experiment(e, kind, index, now_ms)]
    shown = repr(kind) if isinstance(kind, str) else _json_kind(kind)
    raise e.fail("type", f"unknown event type {shown} (expected rum, security, metric, exposure or "
                         "experiment_event)")


def validate_events(events: list[Any], now_ms: int) -> list[Item | ExperimentItem]:
    """Every event checked before any is kept: all items, or Rejected for the first bad event."""
    items: list[Item | ExperimentItem] = []
    for index, event in enumerate(events):
        items.extend(validate_event(event, index, now_ms))
    return items


def _rum(e: _Event, now_ms: int) -> list[Item]:
    name = e.get("name")
    fields = RUM_FIELDS.get(name) if isinstance(name, str) else None
    if fields is None:
        raise e.fail("name", f"unknown rum event name {name!r} (expected one of: {', '.join(RUM_FIELDS)})")
    e.only(COMMON_FIELDS | {"name"} | fields)
    ts = e.ts(now_ms)

    def item(metric: str, value: float, labels: dict[str, str] | None = None) -> Item:
        return Item("rum", metric, labels or {}, value, ts)

    if name == "page_view":
        page = {"page": e.word("page")}
        out = [item("rum_page_load_seconds", e.number("page_load_seconds", 0, MAX_SECONDS), page)]
        if e.has("interaction_seconds"):
            out.append(item("rum_interaction_seconds", e.number("interaction_seconds", 0, MAX_SECONDS), page))
        return out
    if name == "session_end":
        return [item("rum_session_duration_seconds", e.number("session_duration_seconds", 0, MAX_SESSION_SECONDS)),
                item("rum_bounce", 1.0 if e.boolean("bounced") else 0.0)]
    if name == "survey":
        if not (e.has("satisfaction") or e.has("nps")):
            raise e.fail("satisfaction", "a survey needs satisfaction (1-5) or nps (0-10)")
        out = []
        if e.has("satisfaction"):
            out.append(item("rum_satisfaction_score", float(e.integer("satisfaction", 1, 5))))
        if e.has("nps"):
            out.append(item("rum_nps_score", float(e.integer("nps", 0, 10))))
        return out
    return [item("rum_task_completed", 1.0 if e.boolean("completed") else 0.0, {"task": e.word("task")})]


def _security(e: _Event, now_ms: int) -> list[Item]:
    e.only(COMMON_FIELDS | {"kind", "source_ip"})
    kind = e.word("kind", KIND)
    if e.has("source_ip"):
        ip = e.get("source_ip")
        try:
            ipaddress.ip_address(ip if isinstance(ip, str) else "")
        except ValueError:
            raise e.fail("source_ip", "source_ip must be an IPv4 or IPv6 address") from None
    return [Item("security", SECURITY_METRIC, {"kind": kind}, 1.0, e.ts(now_ms), count=True)]


def _metric(e: _Event, now_ms: int) -> list[Item]:
    e.only(COMMON_FIELDS | {"name", "labels", "value"})
    name = e.get("name")
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise e.fail("name", f"name must be a metric name ([a-zA-Z_][a-zA-Z0-9_]*), got {str(name)[:64]!r}")
    if name.startswith(RESERVED_PREFIXES) or name in OWNED_NAMES:
        raise e.fail("name", f"metric name {name!r} is reserved")
    labels = _labels(e, e.data.get("labels"))
    value = e.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise e.fail("value", f"value must be a finite number, got {_json_kind(value)}")
    return [Item("metric", name, labels, float(value), e.ts(now_ms))]


def _experiment(e: _Event, kind: str, index: int, now_ms: int) -> ExperimentItem:
    if kind == "exposure":
        e.only(COMMON_FIELDS | {"experiment", "user", "variant"})
    else:
        e.only(COMMON_FIELDS | {"experiment", "user", "event", "value"})
    experiment = e.text("experiment", EXPERIMENT_NAME, "an experiment name")
    user = e.text("user", USER_ID, "a user id (1 to 256 characters, no control characters)")
    ts = e.ts(now_ms)
    if kind == "exposure":
        variant = e.text("variant", VARIANT_NAME, "a variant name") if e.has("variant") else None
        return ExperimentItem(kind, experiment, user, None, None, ts, index, variant)
    event = e.text("event", EVENT_NAME, "an event name (lower-case letters, digits and '_')")
    value = e.number("value", -MAX_EVENT_VALUE, MAX_EVENT_VALUE) if e.has("value") else None
    return ExperimentItem(kind, experiment, user, event, value, ts, index)


def _labels(e: _Event, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise e.fail("labels", f"labels must be an object of strings, got {_json_kind(raw)}")
    if len(raw) > MAX_LABELS:
        raise e.fail("labels", f"at most {MAX_LABELS} labels")
    labels = {}
    for key, value in raw.items():
        if not LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise e.fail("labels", f"invalid label name {key[:64]!r}")
        if not isinstance(value, str):
            raise e.fail("labels", f"label {key!r} must be a string, got {_json_kind(value)}")
        if len(value) > MAX_LABEL_VALUE:
            raise e.fail("labels", f"label {key!r} is longer than {MAX_LABEL_VALUE} characters")
        if value:  # an empty label value is no label, as in Prometheus
            labels[key] = value
    return labels
