"""Action parameters: evaluated when a proposal is made, typed, bounded, and filled into templates.

Bounds: a value outside a rule's bound (or a built-in's API limits) is
clamped into it when the bound says ``clamp: true`` (the default; the
evidence keeps the value before clamping), and refused otherwise: the rule
then makes no proposal and reports why. Just before running, the stored
values are checked again, without clamping: a value outside the current
bounds refuses the run.

``{name}`` placeholders are replaced textually inside one string (one argv
element, one URL, one JSON string) and never split or join elements. In a
URL the value is percent-encoded; a JSON string that is exactly ``"{name}"``
becomes the typed value (a number stays a number).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping
from urllib.parse import quote

from qbconsole.actions.model import MAX_STRING, PLACEHOLDER, Bound, OptimizationRule, Param
from qbconsole.rules.templates import TemplateError, render


class ParamError(ValueError):
    """A parameter that cannot be used (no value, wrong type, out of bounds, unsafe)."""


def number_text(value: float | int) -> str:
    """4 -> '4', 4.0 -> '4', 0.25 -> '0.25' (what goes into argv and URLs)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))


def pick(vector: list, labels: Mapping[str, str]) -> float | None:
    """One value from a query result: the scalar, the only sample, or the sample
    whose labels include the target's labels (the mean if several do)."""
    if hasattr(vector, "value") and not isinstance(vector, list):
        return float(vector.value) if isinstance(vector.value, (int, float)) else None
    if len(vector) == 1:
        return float(vector[0].value)
    wanted = {k: v for k, v in labels.items() if k != "__name__"}
    hits = [s.value for s in vector if all(s.labels.get(k) == v for k, v in wanted.items())]
    hits = [v for v in hits if v == v]
    return sum(hits) / len(hits) if hits else None


def raw_value(param: Param, evaluator, t: int, labels: Mapping[str, str], value: float) -> Any:
    """The parameter's value before typing: evaluated, rendered or literal."""
    if param.source == "value":
        return param.text
    if param.source == "template":
        try:
            return render(param.text, labels, value)
        except TemplateError as err:
            raise ParamError(f"{param.name}: {err}") from None
    result = pick(evaluator.evaluate(param.text, t), labels)
    if result is None or result != result:
        raise ParamError(f"{param.name}: {param.text!r} has no value now")
    return result


def coerce(param: Param, value: Any) -> int | float | str:
    """The value as the parameter's type; ParamError when it does not fit."""
    if param.type == "string":
        text = number_text(value) if isinstance(value, (int, float)) else str(value)
        check_string(param, text)
        return text
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParamError(f"{param.name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ParamError(f"{param.name}: {number} is not a finite number")
    if param.type == "int":
        return int(math.floor(number + 0.5))
    return number


def check_string(param: Param, text: str) -> None:
    if "\x00" in text:
        raise ParamError(f"{param.name}: a NUL character cannot be passed")
    if len(text) > MAX_STRING:
        raise ParamError(f"{param.name}: {len(text)} characters, at most {MAX_STRING}")
    if param.pattern is not None and not re.fullmatch(param.pattern, text):
        raise ParamError(f"{param.name}: {text!r} does not match {param.pattern!r}")


def effective_bound(rule: OptimizationRule | None, bounds: Mapping[str, Bound], name: str,
                    limits: tuple[float, float] | None = None) -> Bound | None:
    """The rule's bound narrowed by the built-in API limits (either may be missing)."""
    bound = bounds.get(name)
    if limits is None and rule is not None:
        limits = rule.limits(name)
    if limits is None:
        return bound
    lo, hi = limits
    if bound is None:
        return Bound(lo, hi, True)
    return Bound(lo if bound.min is None else max(lo, bound.min), hi if bound.max is None else min(hi, bound.max),
                 bound.clamp)


def apply_bound(name: str, value: float, bound: Bound | None) -> float:
    """Clamp ``value`` into ``bound`` (or raise ParamError when the bound refuses instead)."""
    if bound is None:
        return value
    lo, hi = bound.min, bound.max
    if lo is not None and value < lo:
        if not bound.clamp:
            raise ParamError(f"{name}={number_text(value)} is below the bound min {number_text(lo)}")
        return type(value)(lo) if isinstance(value, int) else float(lo)
    if hi is not None and value > hi:
        if not bound.clamp:
            raise ParamError(f"{name}={number_text(value)} is above the bound max {number_text(hi)}")
        return type(value)(hi) if isinstance(value, int) else float(hi)
    return value


def out_of_bounds(name: str, value: Any, bound: Bound | None) -> str | None:
    """Why a stored value breaks ``bound`` now (no clamping), or None."""
    if bound is None:
        return None
    values = value.values() if isinstance(value, Mapping) else [value]
    for v in values:
        if not isinstance(v, (int, float)):
            continue
        if bound.min is not None and v < bound.min:
            return f"{name}={number_text(v)} is below the bound min {number_text(bound.min)}"
        if bound.max is not None and v > bound.max:
            return f"{name}={number_text(v)} is above the bound max {number_text(bound.max)}"
    return None


def evaluate(rule: OptimizationRule, evaluator, t: int, labels: Mapping[str, str],
             value: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(typed, bounded values; evidence per parameter) for a new proposal."""
    values: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    for name, param in rule.params.items():
        raw = raw_value(param, evaluator, t, labels, value)
        typed = coerce(param, raw)
        note: dict[str, Any] = {"source": param.source, "from": param.text, "value": typed}
        if param.type != "string":
            bounded = apply_bound(name, typed, effective_bound(rule, rule.bounds, name))
            if bounded != typed:
                note.update(value=bounded, before_bounds=typed)
            typed = bounded
        values[name] = typed
        evidence[name] = note
    return values, evidence


def fill(text: str, values: Mapping[str, Any], *, url: bool = False) -> str:
    """``text`` with each ``{name}`` replaced by its value (percent-encoded in a URL)."""
    def one(m: re.Match) -> str:
        value = values[m.group(1)]
        shown = number_text(value) if isinstance(value, (int, float)) else str(value)
        return quote(shown, safe="") if url else shown
    return PLACEHOLDER.sub(one, text)


def fill_json(body: Any, values: Mapping[str, Any]) -> Any:
    """A JSON template filled in: ``"{name}"`` alone becomes the typed value."""
    if isinstance(body, str):
        whole = PLACEHOLDER.fullmatch(body)
        return values[whole.group(1)] if whole else fill(body, values)
    if isinstance(body, Mapping):
        return {k: fill_json(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [fill_json(v, values) for v in body]
    return body


def fill_argv(argv: list[str], values: Mapping[str, Any]) -> list[str]:
    """argv with parameters filled in, one element each; a parameter that would start an
    element with '-' (and so could be read as an option) is refused."""
    out = [argv[0]]
    for element in argv[1:]:
        first = PLACEHOLDER.match(element)
        filled = fill(element, values)
        if first and filled.startswith("-") and not element.startswith("-"):
            raise ParamError(f"{first.group(1)}: value {filled[:40]!r} starts with '-' and could be taken "
                             "for an option; write it as --option={" + first.group(1) + "} instead")
        if "\x00" in filled:
            raise ParamError("an argv element cannot hold a NUL character")
        out.append(filled)
    return out
