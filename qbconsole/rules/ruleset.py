"""Rule groups from a loaded config: recording rules and alert rules, typed.

``groups`` (Prometheus's rule-group format, accepted unchanged) come first;
the top-level ``recording_rules`` and ``alert_rules`` form one more group,
``qbconsole``, evaluated every ``settings.evaluation_interval``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from qbconsole.config import parse_duration
from qbconsole.rules.alerts import AlertRule

DEFAULT_GROUP = "qbconsole"


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval_ms: int
    rules: tuple[RecordingRule | AlertRule, ...] = ()  # in file order, evaluated in this order

    @property
    def alerting(self) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, AlertRule))


def _ms(value: Any, default: float = 0.0) -> int:
    if value is None:
        return int(default * 1000)
    return int(parse_duration(value) * 1000)


def alert_rule(raw: Mapping[str, Any], group: str) -> AlertRule:
    labels = dict(raw.get("labels") or {})
    if raw.get("severity"):
        labels.setdefault("severity", raw["severity"])
    return AlertRule(
        name=raw.get("alert") or raw["name"],
        expr=raw["expr"],
        for_ms=_ms(raw.get("for")),
        keep_firing_for_ms=_ms(raw.get("keep_firing_for")),
        keep_firing_while=raw.get("keep_firing_while"),
        no_data=raw.get("no_data", "ok"),
        labels=labels,
        annotations=dict(raw.get("annotations") or {}),
        group=group,
    )


def recording_rule(raw: Mapping[str, Any]) -> RecordingRule:
    return RecordingRule(raw["record"], raw["expr"], dict(raw.get("labels") or {}))


def _group(name: str, interval_ms: int, raws: Iterable[Mapping[str, Any]]) -> RuleGroup:
    rules = tuple(recording_rule(r) if "record" in r else alert_rule(r, name) for r in raws)
    return RuleGroup(name, interval_ms, rules)


def rule_groups(config) -> list[RuleGroup]:
    """Every rule group of a loaded :class:`qbconsole.config.Config`."""
    default_ms = int(config.settings.evaluation_interval * 1000)
    groups = [_group(g["name"], _ms(g.get("interval"), config.settings.evaluation_interval), g.get("rules") or [])
              for g in config.groups]
    own = [*config.recording_rules, *config.alert_rules]
    if own:
        groups.append(_group(DEFAULT_GROUP, default_ms, own))
    return groups


def groups_from_prometheus_file(data: Mapping[str, Any], default_interval_s: float = 60.0) -> list[RuleGroup]:
    """Groups of a Prometheus rule file (``{groups: [...]}``) already parsed from YAML."""
    return [_group(g["name"], _ms(g.get("interval"), default_interval_s), g.get("rules") or [])
            for g in data.get("groups") or []]
