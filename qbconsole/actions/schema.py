"""Checking an optimization rule as written (see qbconsole.actions.model for the format).

:func:`parse_rule` builds an :class:`OptimizationRule` or raises
:class:`RuleError` listing every problem, each with the path of keys that
leads to it, so that ``rules check`` reports it at its line and column.
The config loader and the engine both use it: one definition of a valid rule.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Mapping

from qbconsole.actions.model import (
    BUILTIN_PARAMS, DEFAULTS_MS, ENV_NAME, HTTP_METHODS, NAME, PARAM_TYPES, PLACEHOLDER, PRIORITIES, Bound,
    OptimizationRule, Param, Problem, RuleError, Verify,
)
from qbconsole.config.durations import parse_duration
from qbconsole.rules.promql import PromQLSyntaxError, parse as parse_promql
from qbconsole.rules.templates import TemplateError, check as check_template


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: tuple, message: str, **kw: Any) -> None:
        self.problems.append(Problem(path, message, **kw))

    def keys(self, raw: Mapping, path: tuple, allowed, required=()) -> None:
        for key in raw:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
                self.add((*path, key), f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                         at_key=True)
        for key in required:
            if key not in raw:
                self.add(path, f"missing required key {key!r}")

    def duration_ms(self, raw: Mapping, key: str, path: tuple) -> int | None:
        if key not in raw:
            return None
        try:
            seconds = parse_duration(raw[key])
        except ValueError:
            self.add((*path, key), f"invalid duration {raw[key]!r}: use e.g. 30s, 5m, 1h")
            return None
        if seconds < 0:
            self.add((*path, key), "must not be negative")
            return None
        return int(seconds * 1000)

    def promql(self, text: Any, path: tuple) -> str | None:
        if not isinstance(text, str) or not text.strip():
            self.add(path, "expected a PromQL expression (a non-empty string)")
            return None
        try:
            parse_promql(text)
        except PromQLSyntaxError as err:
            self.add(path, f"bad expression: {err.message}", syntax=err)
            return None
        return text

    def template(self, text: Any, path: tuple) -> str | None:
        if not isinstance(text, str):
            self.add(path, "expected a string")
            return None
        try:
            check_template(text)
        except TemplateError as err:
            self.add(path, f"bad template: {err}")
            return None
        return text

    def env_name(self, raw: Mapping, key: str, path: tuple) -> None:
        if key in raw and not (isinstance(raw[key], str) and ENV_NAME.fullmatch(raw[key])):
            self.add((*path, key), f"{key} must be an environment variable name, got {raw[key]!r}")

    def string(self, raw: Mapping, key: str, path: tuple, choices=None) -> None:
        if key not in raw:
            return
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            self.add((*path, key), "expected a non-empty string")
        elif choices and value not in choices:
            self.add((*path, key), f"expected one of {', '.join(choices)}, got {value!r}")


def _param(ck: _Checker, name: str, raw: Any, path: tuple, default_type: str | None = None) -> Param | None:
    """A parameter in any of its forms (see the module docstring)."""
    if isinstance(raw, bool):
        ck.add(path, "expected a number, an expression, a template or a mapping, got a boolean")
        return None
    if isinstance(raw, (int, float)):
        return Param(name, "value", raw, default_type or ("int" if isinstance(raw, int) else "number"))
    if isinstance(raw, str):
        if "{{" in raw:
            text = ck.template(raw, path)
            return Param(name, "template", text, default_type or "string") if text is not None else None
        text = ck.promql(raw, path)
        return Param(name, "expr", text, default_type or "number") if text is not None else None
    if not isinstance(raw, Mapping):
        ck.add(path, "expected a number, an expression, a template or a mapping")
        return None
    ck.keys(raw, path, ("expr", "template", "value", "type", "pattern"))
    sources = [k for k in ("expr", "template", "value") if k in raw]
    if len(sources) != 1:
        ck.add(path, "a parameter needs exactly one of 'expr', 'template' or 'value'")
        return None
    kind = raw.get("type", default_type or ("string" if sources[0] == "template" else "number"))
    if kind not in PARAM_TYPES:
        ck.add((*path, "type"), f"expected one of {', '.join(PARAM_TYPES)}, got {kind!r}")
        return None
    pattern = raw.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as err:
            ck.add((*path, "pattern"), f"bad regular expression: {err}")
            return None
    source = sources[0]
    if source == "expr":
        text = ck.promql(raw["expr"], (*path, "expr"))
    elif source == "template":
        text = ck.template(raw["template"], (*path, "template"))
    else:
        text = raw["value"]
        if not isinstance(text, (int, float, str)) or isinstance(text, bool):
            ck.add((*path, "value"), "expected a number or a string")
            return None
    return None if text is None else Param(name, source, text, kind, pattern)


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_placeholders(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value), set())
    return set()


_PLATFORM = ("url", "token_env")
_KIND_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (keys, required)
    "command": (("argv", "params", "env", "executable_env", "cwd"), ("argv",)),
    "http": (("method", "url", "json", "headers", "headers_env", "bearer_token_env", "params"), ("url",)),
    "sql": (("dsn", "statement", "args", "params"), ("statement",)),
    "scale": (("workers", *_PLATFORM), ()),
    "cache_resize": (("size", *_PLATFORM), ()),
    "weights": (("strategy", "weights_expr", "load_expr", *_PLATFORM), ()),
    "missing_indexes": (("dsn", "via", "min_avg", "limit", *_PLATFORM), ()),
}
ACTION_KINDS = tuple(_KIND_KEYS)


def _action(ck: _Checker, raw: Any, path: tuple) -> tuple[str, dict, dict[str, Param]] | None:
    if not isinstance(raw, Mapping):
        ck.add(path, "expected a mapping with 'kind' and the action's options")
        return None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _KIND_KEYS:
        ck.add((*path, "kind") if "kind" in raw else path,
               f"action kind must be one of {', '.join(ACTION_KINDS)}" + (f", got {kind!r}" if kind else ""))
        return None
    keys, required = _KIND_KEYS[kind]
    before = len(ck.problems)
    ck.keys(raw, path, ("kind", "timeout", *keys), required)
    options: dict[str, Any] = {}
    if "timeout" in raw:
        ms = ck.duration_ms(raw, "timeout", path)
        if ms is not None and ms <= 0:
            ck.add((*path, "timeout"), "must be positive")
        elif ms is not None:
            options["timeout_s"] = ms / 1000
    for key in ("token_env", "executable_env", "bearer_token_env"):
        ck.env_name(raw, key, path)
    for key in ("url", "dsn", "cwd", "statement"):
        ck.string(raw, key, path)
    ck.string(raw, "method", path, HTTP_METHODS)
    ck.string(raw, "via", path, ("http", "sql"))
    ck.string(raw, "strategy", path, ("equal", "inverse_load"))
    for key in ("weights_expr", "load_expr"):
        if key in raw:
            ck.promql(raw[key], (*path, key))
    if "min_avg" in raw:
        ck.duration_ms(raw, "min_avg", path)
    if "limit" in raw and not (isinstance(raw["limit"], int) and 1 <= raw["limit"] <= 100):
        ck.add((*path, "limit"), "expected an integer from 1 to 100")
    params: dict[str, Param] = {}
    if kind in BUILTIN_PARAMS:
        for name, (default, ptype, _) in BUILTIN_PARAMS[kind].items():
            if default is None and name not in raw:
                continue
            p = _param(ck, name, raw.get(name, default), (*path, name), ptype)
            if p is not None:
                params[name] = p
    else:
        declared = raw.get("params") or {}
        if not isinstance(declared, Mapping):
            ck.add((*path, "params"), "expected a mapping of parameter names")
            declared = {}
        for name, spec in declared.items():
            if not NAME.fullmatch(str(name)):
                ck.add((*path, "params", name), f"invalid parameter name {name!r}", at_key=True)
                continue
            p = _param(ck, name, spec, (*path, "params", name))
            if p is not None:
                params[name] = p
    _check_shapes(ck, kind, raw, path, set(params) | set(declared_names(raw)))
    options.update({k: v for k, v in raw.items() if k not in ("kind", "timeout", "params")
                    and k not in BUILTIN_PARAMS.get(kind, {})})
    return (kind, options, params) if len(ck.problems) == before else None


def declared_names(raw: Mapping) -> list[str]:
    declared = raw.get("params")
    return [str(k) for k in declared] if isinstance(declared, Mapping) else []


def _check_shapes(ck: _Checker, kind: str, raw: Mapping, path: tuple, names: set[str]) -> None:
    """argv / URL / body / args shapes, and that every {placeholder} names a parameter."""
    if kind == "command" and "argv" in raw:
        argv = raw["argv"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            ck.add((*path, "argv"), "expected a non-empty list of strings")
        elif PLACEHOLDER.search(argv[0]):
            ck.add((*path, "argv", 0), "the program (argv[0]) must be written out, not a parameter")
        elif not argv[0]:
            ck.add((*path, "argv", 0), "the program (argv[0]) must not be empty")
    for key in ("env",):
        if key in raw and not (isinstance(raw[key], list) and all(isinstance(n, str) and ENV_NAME.fullmatch(n)
                                                                  for n in raw[key])):
            ck.add((*path, key), "expected a list of environment variable names")
    for key in ("headers", "headers_env"):
        if key in raw and not (isinstance(raw[key], Mapping) and all(isinstance(v, str) for v in raw[key].values())):
            ck.add((*path, key), "expected a mapping of header names to strings")
    if isinstance(raw.get("headers_env"), Mapping):
        for header, env in raw["headers_env"].items():
            if not ENV_NAME.fullmatch(str(env)):
                ck.add((*path, "headers_env", header), f"{env!r} is not an environment variable name")
    if "args" in raw and not (isinstance(raw["args"], list)
                              and all(isinstance(a, (str, int, float)) for a in raw["args"])):
        ck.add((*path, "args"), "expected a list of strings or numbers")
    if kind == "sql" and isinstance(raw.get("statement"), str) and PLACEHOLDER.search(raw["statement"]):
        ck.add((*path, "statement"), "SQL statements take parameters as ? bound from 'args', never as {name}")
    for key in ("argv", "url", "json", "args"):
        for missing in sorted(_placeholders(raw.get(key)) - names):
            ck.add((*path, key), f"{{{missing}}} is not a parameter of this action"
                   + (f" (parameters: {', '.join(sorted(names))})" if names else " (it declares no params)"))


def check_rule(raw: Any) -> list[Problem]:
    """Every problem of one rule (empty when it is good)."""
    try:
        parse_rule(raw)
    except RuleError as err:
        return err.problems
    return []


_RULE_KEYS = ("name", "description", "expr", "alert", "for", "target", "action", "bounds", "priority",
              "cooldown", "expiry", "settle", "verify")


def parse_rule(raw: Any) -> OptimizationRule:
    """The rule in ``raw`` (one entry of ``optimizations``); RuleError lists every problem."""
    ck = _Checker()
    if not isinstance(raw, Mapping):
        raise RuleError([Problem((), "expected a mapping for each optimization rule")])
    ck.keys(raw, (), _RULE_KEYS, ("name", "action"))
    name = raw.get("name")
    if "name" in raw and not (isinstance(name, str) and NAME.fullmatch(name)):
        ck.add(("name",), "invalid rule name: use letters, digits and '_'")
    expr = ck.promql(raw["expr"], ("expr",)) if "expr" in raw else None
    alerts = raw.get("alert", [])
    alerts = [alerts] if isinstance(alerts, str) else alerts
    if not isinstance(alerts, list) or not all(isinstance(a, str) and a for a in alerts):
        ck.add(("alert",), "expected an alert name or a list of alert names")
        alerts = []
    if "expr" not in raw and "alert" not in raw:
        ck.add((), "a rule needs 'expr' (a condition), 'alert' (alert names), or both")
    for key in ("description", "target"):
        if key in raw:
            ck.template(raw[key], (key,))
    ck.string(raw, "priority", (), PRIORITIES)
    times = {k: ck.duration_ms(raw, k, ()) for k in DEFAULTS_MS}
    action = _action(ck, raw["action"], ("action",)) if "action" in raw else None
    bounds = _bounds(ck, raw.get("bounds"), action)
    verify = _verify(ck, raw["verify"]) if "verify" in raw else None
    if ck.problems or action is None:
        raise RuleError(ck.problems)
    kind, options, params = action
    return OptimizationRule(
        name=name, kind=kind, action=options, params=params, expr=expr, alerts=tuple(alerts),
        description=raw.get("description", ""), target=raw.get("target"), bounds=bounds,
        priority=raw.get("priority", "medium"), verify=verify,
        **{f"{k}_ms": v if v is not None else DEFAULTS_MS[k] for k, v in times.items()})


def _bounds(ck: _Checker, raw: Any, action) -> dict[str, Bound]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        ck.add(("bounds",), "expected a mapping of parameter names to {min, max}")
        return {}
    params = action[2] if action else {}
    kind = action[0] if action else None
    out = {}
    for name, spec in raw.items():
        path = ("bounds", name)
        known = name in params or name in BUILTIN_PARAMS.get(kind, {})
        if action is not None and not known:
            ck.add(path, f"no parameter {name!r} to bound", at_key=True)
            continue
        if name in params and params[name].type == "string":
            ck.add(path, f"parameter {name!r} is a string; bounds apply to numbers", at_key=True)
            continue
        if not isinstance(spec, Mapping):
            ck.add(path, "expected {min: N, max: N}")
            continue
        ck.keys(spec, path, ("min", "max", "clamp"))
        lo, hi = spec.get("min"), spec.get("max")
        for key, value in (("min", lo), ("max", hi)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                ck.add((*path, key), "expected a number")
                lo = hi = None
        if lo is None and hi is None:
            ck.add(path, "a bound needs 'min', 'max' or both")
        elif lo is not None and hi is not None and lo > hi:
            ck.add(path, f"min {lo} is above max {hi}")
        if not isinstance(spec.get("clamp", True), bool):
            ck.add((*path, "clamp"), "expected true or false")
        out[name] = Bound(lo, hi, bool(spec.get("clamp", True)))
    return out


def _verify(ck: _Checker, raw: Any) -> Verify | None:
    if not isinstance(raw, Mapping):
        ck.add(("verify",), "expected {expr: ..., better: lower|higher, min_change: 0.05}")
        return None
    ck.keys(raw, ("verify",), ("expr", "better", "min_change"), ("expr",))
    expr = ck.promql(raw["expr"], ("verify", "expr")) if "expr" in raw else None
    ck.string(raw, "better", ("verify",), ("lower", "higher"))
    change = raw.get("min_change", 0.0)
    if isinstance(change, bool) or not isinstance(change, (int, float)) or not 0 <= change < 1:
        ck.add(("verify", "min_change"), "expected a fraction from 0 to below 1 (0.05 = 5 %)")
        change = 0.0
    return Verify(expr, raw.get("better", "lower"), float(change)) if expr else None


def parse_rules(raws: list[Any]) -> list[OptimizationRule]:
    """Every rule of a config's ``optimizations`` (already validated by the config loader)."""
    return [parse_rule(raw) for raw in raws]
