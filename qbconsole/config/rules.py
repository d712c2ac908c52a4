"""Rule sections: ``alert_rules``, ``recording_rules``, Prometheus-style ``groups``, ``slos``.

They are checked here and kept as the data written (with ``${ENV}``
substituted) for the rules engine, which parses the expressions.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from qbconsole.rules.promql import PromQLSyntaxError, parse as parse_promql

from . import schema as s
from .document import Document

SEVERITIES = ("critical", "warning", "info")

def promql(doc: Document, node: Node, *, window: str | None = None) -> str:
    """A PromQL expression; a syntax error is reported at its own line and column in the file."""
    text = s.nonempty_string(doc, node)
    try:
        parse_promql(text.replace(WINDOW, window) if window else text)
    except PromQLSyntaxError as err:
        if window:  # point into the text as written, before [W] was widened
            widened = len(window) - len(WINDOW)
            before = text.replace(WINDOW, window)[: err.col - 1].count(window)
            err = PromQLSyntaxError(err.message, err.col - widened * before, text)
        raise s.Invalid(f"bad expression: {err.message}", _expr_mark(node, err)) from None
    return text


def _expr_mark(node: Node, err: PromQLSyntaxError) -> yaml.Mark:
    """Where column ``err.col`` of an expression scalar is in the file (best effort)."""
    start = node.start_mark
    style = getattr(node, "style", None)
    if style in ("|", ">"):
        # Content starts on the next line; its first line sets the block's indentation.
        text_lines = (start.buffer or "").split("\n")
        first = text_lines[start.line + 1] if start.line + 1 < len(text_lines) else ""
        indent = len(first) - len(first.lstrip(" "))
        return yaml.Mark(start.name, 0, start.line + err.line, indent + err.line_col - 1, None, None)
    if err.line == 1:
        quote = 1 if style in ('"', "'") else 0
        return yaml.Mark(start.name, 0, start.line, start.column + quote + err.col - 1, None, None)
    return start


_RECORD = {
    "record": s.matching(s.METRIC_NAME, "metric name"),
    "expr": promql,
    "labels": s.string_map("labels"),
}
# Prometheus's alerting rule keys (the format of `groups`).
_PROMETHEUS_ALERT = {
    "alert": s.nonempty_string,
    "expr": promql,
    "for": s.non_negative(s.duration),
    "keep_firing_for": s.non_negative(s.duration),
    "labels": s.string_map("labels"),
    "annotations": s.string_map("annotations"),
}
# What the alert state machine does when the expression's selectors find no series
# (qbconsole.rules.alerts.NO_DATA_POLICIES; repeated here because config sits below rules).
NO_DATA_POLICIES = ("ok", "alerting", "keep_state")
# The top-level `alert_rules` also take `name` for `alert`, `severity`, and two
# qbconsole extensions: a recovery threshold and a no-data policy. Groups stay
# plain Prometheus so that they load unchanged in Prometheus.
_ALERT = {**_PROMETHEUS_ALERT, "name": s.nonempty_string, "severity": s.one_of(SEVERITIES, "severity"),
          "keep_firing_while": promql, "no_data": s.one_of(NO_DATA_POLICIES, "no_data policy")}
_GROUP = {
    "name": s.nonempty_string,
    "interval": s.positive(s.duration),
    "limit": s.non_negative(s.integer),
    "query_offset": s.non_negative(s.duration),
    "labels": s.string_map("labels"),
    "rules": lambda doc, node: node,  # checked rule by rule below
}

SLO_OPS = ("<", "<=", ">", ">=")
SLO_KINDS = ("objective", "capacity")
SLO_UNITS = ("percent", "ratio", "seconds", "bytes", "per_second", "count")
WINDOW = "[W]"


def _slo_expr(doc: Document, node: Node) -> str:
    value = s.nonempty_string(doc, node)
    if WINDOW not in value:
        raise s.Invalid(f"must contain the window placeholder {WINDOW}, "
                        "e.g. avg_over_time(system_cpu_percent[W])")
    return promql(doc, node, window="[1h]")


_SLO = {
    "name": s.matching(s.LABEL_NAME, "SLO name (letters, digits and '_')"),
    "description": s.string,
    "expr": _slo_expr,
    "op": s.one_of(SLO_OPS, "comparison"),
    "target": s.number,
    "unit": s.one_of(SLO_UNITS, "unit"),
    "kind": s.one_of(SLO_KINDS, "SLO kind"),
    "requires": s.list_of(s.string, "SLO names"),
}


def read_recording_rules(doc: Document, node: Node) -> list[dict[str, Any]]:
    return _each(doc, node, "recording rules", _recording_rule)


def read_alert_rules(doc: Document, node: Node) -> list[dict[str, Any]]:
    return _each(doc, node, "alert rules", _alert_rule)


def read_groups(doc: Document, node: Node) -> list[dict[str, Any]]:
    groups = _each(doc, node, "rule groups", _group)
    _check_unique(doc, node, "name", "group name")
    return groups


def read_slos(doc: Document, node: Node) -> list[dict[str, Any]]:
    slos = _each(doc, node, "SLOs", _slo)
    names = _check_unique(doc, node, "name", "SLO name")
    for item in node.value if isinstance(node, SequenceNode) else ():
        requires = _value_node(item, "requires")
        own = _value_node(item, "name")
        for ref in requires.value if isinstance(requires, SequenceNode) else ():
            if not isinstance(ref, ScalarNode):
                continue  # reported as a type error already
            if ref.value not in names:
                doc.error(ref, f"unknown SLO {doc.shown(ref)} in requires{s.did_you_mean(ref.value, names)}")
            elif own is not None and ref.value == own.value:
                doc.error(ref, "an SLO cannot require itself")
    return slos


def _checked_items(what: str, check):
    """A list of mappings, each validated by ``check(raw)`` (raising ValueError with the reason)."""
    def read(doc: Document, node: Node) -> list[dict[str, Any]]:
        def item(doc: Document, child: Node) -> dict[str, Any] | None:
            if not isinstance(child, MappingNode):
                raise s.expected(f"a mapping for each entry of {what}", doc, child)
            raw = s.to_python(doc, child)
            try:
                check(raw)
            except ValueError as err:
                raise s.Invalid(str(err)) from None
            return raw
        return _each(doc, node, what, item)
    return read


def _check_channel(raw) -> None:
    from qbconsole.notify.config import parse_channel  # the notifier owns the channel schema

    parse_channel(raw)


def _check_route(raw) -> None:
    from qbconsole.notify.config import parse_route

    parse_route(raw)  # channel names are checked against `channels` by check_route_channels


def _check_inhibit_rule(raw) -> None:
    from qbconsole.notify.config import parse_inhibit_rules

    parse_inhibit_rules([raw])


read_channels = _checked_items("channels", _check_channel)
read_routes = _checked_items("routes", _check_route)
read_inhibit_rules = _checked_items("inhibit_rules", _check_inhibit_rule)


def check_route_channels(doc: Document, routes_node: Node, channels: list[dict[str, Any]] | None) -> None:
    """Every channel a route names must exist (in `channels`, or among the defaults)."""
    from qbconsole.notify.config import parse_route
    from qbconsole.notify.defaults import DEFAULT_CHANNEL_TEMPLATES

    known = {c.get("name") for c in (channels if channels else DEFAULT_CHANNEL_TEMPLATES)}
    for child in routes_node.value if isinstance(routes_node, SequenceNode) else ():
        if not isinstance(child, MappingNode):
            continue
        try:
            parse_route(s.to_python(doc, child), known)
        except (ValueError, s.Invalid) as err:
            doc.error(child, str(err))


def read_optimizations(doc: Document, node: Node) -> list[dict[str, Any]]:
    """Optimization rules, checked by qbconsole.actions (which runs them), each problem at its node."""
    from qbconsole.actions.schema import check_rule  # the action engine owns the rule schema

    def item(doc: Document, child: Node) -> None:
        if not isinstance(child, MappingNode):
            raise s.expected("a mapping for each optimization rule", doc, child)
        for problem in check_rule(s.to_python(doc, child)):
            where = _node_at(child, problem.path, problem.at_key)
            if problem.syntax is not None and isinstance(where, ScalarNode):
                doc.error(_expr_mark(where, problem.syntax), problem.message)
            else:
                doc.error(where, problem.message)

    rules = _each(doc, node, "optimization rules", item)
    _check_unique(doc, node, "name", "optimization rule name")
    return rules


def read_experiments(doc: Document, node: Node) -> list[dict[str, Any]]:
    """A/B experiments, each key checked at its node by qbconsole.experiments.model (which owns the schema)."""
    from qbconsole.experiments import model as m

    def owned(parse):  # the model's ExperimentError, reported at the node being read
        def read(doc: Document, node: Node) -> Any:
            try:
                return parse(doc, node)
            except m.ExperimentError as err:
                raise s.Invalid(str(err)) from None
        return read

    def metrics(doc: Document, node: Node) -> dict[str, str]:
        if not isinstance(node, MappingNode) or not node.value:
            raise s.Invalid("expected a mapping of metrics such as {conversion: purchase, revenue: purchase.value}")
        for key, value in node.value:
            try:
                m.parse_metric(key.value, "event")  # the name, reported at the key
                m.parse_metric(key.value, s.string(doc, value))
            except (m.ExperimentError, s.Invalid) as err:
                doc.error(key if str(err).startswith("invalid metric name") else value,
                          f"metrics: {getattr(err, 'message', err)}")
        return {}

    fields = {
        "name": owned(lambda d, n: m.check_name(s.string(d, n))), "description": s.string,
        "variants": owned(lambda d, n: m.parse_variants(s.list_of(s.string, "variant names")(d, n))),
        "split": s.list_of(s.positive(s.number), "split weights"), "metrics": metrics,
        "duration": s.positive(s.duration), "start": s.boolean, "sequential": s.boolean,
        "mde": owned(lambda d, n: m.parse_mde(s.to_python(d, n))), "seed": s.nonempty_string,
        "alpha": _alpha, "min_users": _min_users,
    }

    def item(doc: Document, child: Node) -> None:
        f = s.read_mapping(doc, child, "experiment", fields, required=("name", "variants", "metrics"))
        if f is not None and f.valid("variants") and f.valid("split") and len(f.get("split")) != len(f.get("variants")):
            doc.error(f.nodes["split"], f"split has {len(f.get('split'))} weights but there are "
                                        f"{len(f.get('variants'))} variants")

    result = _each(doc, node, "experiments", item)
    _check_unique(doc, node, "name", "experiment name")
    return result


def _alpha(doc: Document, node: Node) -> float:
    value = s.number(doc, node)
    if not 0 < value <= 0.5:
        raise s.Invalid(f"must be in (0, 0.5], got {value:g}")
    return value


def _min_users(doc: Document, node: Node) -> int:
    value = s.integer(doc, node)
    if value < 2:
        raise s.Invalid(f"must be at least 2, got {value}")
    return value


def check_optimization_alerts(doc: Document, node: Node, alert_names: set[str]) -> None:
    """A notice for each alert an optimization rule links to that no alert rule of the file defines
    (a typo, or an alert that arrives from elsewhere, such as Alertmanager)."""
    for item in node.value if isinstance(node, SequenceNode) else ():
        value = _value_node(item, "alert")
        refs = value.value if isinstance(value, SequenceNode) else [value] if value is not None else []
        for ref in refs:
            if isinstance(ref, ScalarNode) and ref.value not in alert_names:
                doc.notice(ref, f"alert {doc.shown(ref)} is not an alert rule of this file"
                                f"{s.did_you_mean(ref.value, alert_names)} (the rule proposes only while "
                                "an alert of that name is firing)")


def _node_at(node: Node, path: tuple, at_key: bool) -> Node:
    """The node a problem's path names (the deepest one present), or its key."""
    for step in path:
        if isinstance(node, MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == step), None)
            if pair is None:
                return node
            if at_key and step == path[-1]:
                return pair[0]
            node = pair[1]
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


def read_list_section(what: str):
    """A section not specified yet: a list of mappings, kept as written."""
    def read(doc: Document, node: Node) -> list[dict[str, Any]]:
        def check(doc: Document, child: Node) -> None:
            if not isinstance(child, MappingNode):
                raise s.expected(f"a mapping for each entry of {what}", doc, child)
        return _each(doc, node, what, check)
    return read


def read_mapping_section(what: str):
    """A section not specified yet: a mapping, kept as written."""
    def read(doc: Document, node: Node) -> dict[str, Any]:
        if s.is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            doc.error(node, f"expected a mapping for {what}, got {s.kind_of(doc, node)}")
            return {}
        try:
            return s.to_python(doc, node)
        except s.Invalid as exc:
            doc.error(exc.node or node, exc.message)
            return {}
    return read


# -- items --------------------------------------------------------------------


def _recording_rule(doc: Document, node: Node) -> None:
    s.read_mapping(doc, node, "recording rule", _RECORD, required=("record", "expr"))


def _alert_rule(doc: Document, node: Node) -> None:
    fields = s.read_mapping(doc, node, "alert rule", _ALERT, required=("expr",))
    if fields is None:
        return
    if fields.present("alert") and fields.present("name"):
        doc.error(fields.keys["name"], "use either 'alert' or 'name', not both")
    elif not fields.present("alert") and not fields.present("name"):
        doc.error(node, "missing required key 'alert' (or 'name') in alert rule")


def _group_rule(doc: Document, node: Node) -> None:
    if not isinstance(node, MappingNode):
        raise s.expected("a mapping for each rule", doc, node)
    record, alert = _value_node(node, "record"), _value_node(node, "alert")
    if record is not None and alert is not None:
        doc.error(node, "a rule has either 'record' or 'alert', not both")
    elif record is None and alert is None:
        doc.error(node, "missing required key 'record' or 'alert' in rule")
    elif record is not None:
        _recording_rule(doc, node)
    else:
        s.read_mapping(doc, node, "alerting rule", _PROMETHEUS_ALERT, required=("expr",))


def _group(doc: Document, node: Node) -> None:
    fields = s.read_mapping(doc, node, "rule group", _GROUP, required=("name", "rules"))
    if fields is not None and fields.present("rules"):
        _each(doc, fields.nodes["rules"], "rules", _group_rule)


def _slo(doc: Document, node: Node) -> None:
    fields = s.read_mapping(doc, node, "SLO", _SLO, required=("name", "expr", "op", "target"))
    if fields is None:
        return
    if fields.present("requires") and fields.get("kind", "objective") != "capacity":
        doc.error(fields.keys["requires"], "'requires' applies to kind: capacity only")


# -- helpers ------------------------------------------------------------------


def _each(doc: Document, node: Node, what: str, check) -> list[dict[str, Any]]:
    """Run ``check`` on every entry of a list section; the entries that passed, as data."""
    if s.is_null(node):
        return []
    if not isinstance(node, SequenceNode):
        doc.error(node, f"expected a list of {what}, got {s.kind_of(doc, node)}")
        return []
    result = []
    for child in node.value:
        before = len(doc.errors)
        try:
            check(doc, child)
            if len(doc.errors) == before:
                result.append(s.to_python(doc, child))
        except s.Invalid as exc:
            doc.error(exc.node or child, exc.message)
    return result


def _value_node(node: Node, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    return next((v for k, v in node.value if k.value == key), None)


def _check_unique(doc: Document, node: Node, key: str, what: str) -> set[str]:
    """Report repeated ``key`` values among a list's mappings; the set of names seen."""
    first: dict[str, int] = {}
    for item in node.value if isinstance(node, SequenceNode) else ():
        value = _value_node(item, key)
        if value is None or not isinstance(value.value, str):
            continue
        if value.value in first:
            doc.error(value, f"duplicate {what} {doc.shown(value)} (first at line {first[value.value]})")
        else:
            first[value.value] = value.start_mark.line + 1
    return set(first)

