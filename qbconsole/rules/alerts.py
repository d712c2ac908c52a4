"""The alert state machine, as Prometheus runs it, plus hysteresis and no-data.

One alert per rule and label set. At each evaluation the rule's expression
gives the label sets whose condition holds; :func:`step` moves every alert of
the rule along inactive → pending (``for``) → firing → resolved, keeping a
firing alert for ``keep_firing_for`` after its condition stops holding. It is
pure: states in, states and transitions out; the engine persists them.

Beyond Prometheus:

* ``keep_firing_while`` is a recovery threshold. Once active, an alert stays
  active while this second expression still returns its label set (fire on
  ``x > 1000``, stay while ``x > 900``: it resolves only below 900).
* ``no_data`` says what an empty result means when none of the expression's
  selectors returned any series: ``ok`` (Prometheus: the alerts resolve),
  ``keep_state`` (nothing changes), ``alerting`` (one alert labelled
  ``nodata="true"`` goes through ``for`` like any other).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Mapping, NamedTuple

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
NO_DATA_POLICIES = ("ok", "alerting", "keep_state")
RESOLVED_RETENTION_MS = 15 * 60 * 1000  # as Prometheus: resolved alerts are kept 15 min for notifiers


_FINGERPRINTS: dict[tuple, str] = {}


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable identity of a label set (the alert's identity within its rule).

    Stored in the alerts table, so it must not change between versions or runs.
    """
    key = tuple(sorted(labels.items()))
    fp = _FINGERPRINTS.get(key)
    if fp is None:
        blob = json.dumps(dict(key), separators=(",", ":"))
        fp = hashlib.sha256(blob.encode()).hexdigest()[:16]
        if len(_FINGERPRINTS) > 200_000:  # bounded: label sets churn over months
            _FINGERPRINTS.clear()
        _FINGERPRINTS[key] = fp
    return fp


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    keep_firing_while: str | None = None
    no_data: str = "ok"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str = "default"

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert (one rule, one label set) in one episode of activity."""

    rule: str
    labels: Mapping[str, str]
    state: str
    value: float
    active_at: int
    fired_at: int | None = None
    resolved_at: int | None = None
    keep_firing_since: int | None = None
    last_eval: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def is_active(self) -> bool:
        return self.state in (PENDING, FIRING)


class Transition(NamedTuple):
    fingerprint: str
    old: str | None  # None: a new alert
    new: str  # pending, firing, resolved, or "inactive" (a pending alert that went away)
    ts: int
    value: float


def alert_labels(rule: AlertRule, result_labels: Mapping[str, str]) -> dict[str, str]:
    """Result labels without ``__name__``, then the rule's labels, then ``alertname``."""
    labels = {k: v for k, v in result_labels.items() if k != "__name__"}
    labels.update(rule.labels)
    labels["alertname"] = rule.name
    return labels


def step(
    rule: AlertRule,
    alerts: Mapping[str, Alert],
    results: Mapping[str, tuple[Mapping[str, str], float]],
    t: int,
    *,
    still_while: set[str] | None = None,
    no_data: bool = False,
) -> tuple[dict[str, Alert], list[Transition]]:
    """Advance every alert of ``rule`` to time ``t``.

    ``alerts``: the rule's current alerts by fingerprint (active and recently
    resolved). ``results``: fingerprint -> (full alert labels, value) for the
    label sets whose condition holds now (see :func:`alert_labels`).
    ``still_while``: fingerprints for which ``keep_firing_while`` holds.
    ``no_data``: the expression's selectors returned no series at all.
    """
    if no_data and rule.no_data == "keep_state":
        return dict(alerts), []
    if no_data and rule.no_data == "alerting":
        labels = alert_labels(rule, {"nodata": "true"})
        results = {**results, fingerprint(labels): (labels, float("nan"))}

    out: dict[str, Alert] = {}
    transitions: list[Transition] = []

    for fp, (labels, value) in results.items():
        old = alerts.get(fp)
        if old is None or not old.is_active:
            new = Alert(rule.name, dict(labels), PENDING, value, active_at=t, last_eval=t)
            transitions.append(Transition(fp, old.state if old else None, PENDING, t, value))
        else:  # still active: positional construction is much cheaper than replace()
            new = Alert(old.rule, labels, old.state, value, old.active_at, old.fired_at, None, None, t)
        out[fp] = _maybe_fire(rule, new, t, transitions)

    for fp, old in alerts.items():
        if fp in out:
            continue
        if not old.is_active:
            if old.resolved_at is not None and t - old.resolved_at <= RESOLVED_RETENTION_MS:
                out[fp] = old
            continue
        if still_while is not None and fp in still_while:
            out[fp] = _maybe_fire(rule, replace(old, keep_firing_since=None, last_eval=t), t, transitions)
            continue
        if old.state == FIRING and rule.keep_firing_for_ms > 0:
            since = old.keep_firing_since if old.keep_firing_since is not None else t
            if t - since < rule.keep_firing_for_ms:
                out[fp] = replace(old, keep_firing_since=since, last_eval=t)
                continue
        if old.state == PENDING:
            transitions.append(Transition(fp, PENDING, "inactive", t, old.value))
            continue
        out[fp] = replace(old, state=RESOLVED, resolved_at=t, keep_firing_since=None, last_eval=t)
        transitions.append(Transition(fp, FIRING, RESOLVED, t, old.value))
    return out, transitions


def _maybe_fire(rule: AlertRule, alert: Alert, t: int, transitions: list[Transition]) -> Alert:
    if alert.state == PENDING and t - alert.active_at >= rule.for_ms:
        transitions.append(Transition(alert.fingerprint, PENDING, FIRING, t, alert.value))
        return replace(alert, state=FIRING, fired_at=t)
    return alert
