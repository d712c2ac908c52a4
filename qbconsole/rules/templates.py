"""Annotation templates: the subset of Prometheus's Go templates that alert rules use.

Supported: ``{{ $labels.NAME }}``, ``{{ $value }}``, ``{{ $externalLabels.NAME }}``
and pipelines through ``humanize``, ``humanize1024``, ``humanizePercentage``,
``humanizeDuration``, ``printf "FMT"`` (``%s``, ``%d``, ``%.Nf``, ``%.Ng``, ``%v``),
``toUpper``, ``toLower``, ``title``. Output matches Prometheus's for the same
input, so promtool rule tests agree with ours. Nothing is evaluated as code:
an unknown construct is a :class:`TemplateError` reported when rules load.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Mapping

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_PRINTF_VERB = re.compile(r"%(-?\d*)(?:\.(\d+))?([sdfgve%])")


class TemplateError(ValueError):
    """A template uses a construct this renderer does not support."""


def _go_g(value: float, precision: int = 4) -> str:
    """Go's ``%.Ng`` (Python's agrees except for the spelling of specials)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.{precision}g}"


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _go_g(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _go_g(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _go_g(v) + prefix


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _go_g(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _go_g(v) + prefix


def humanize_percentage(v: float) -> str:
    return _go_g(v * 100) + "%"


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _go_g(v)
    if v == 0:
        return "0s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        d = int(v)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_go_g(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_go_g(v)}{prefix}s"


def _printf(fmt: str, arg: object) -> str:
    def one(m: re.Match) -> str:
        width, prec, verb = m.group(1), m.group(2), m.group(3)
        if verb == "%":
            return "%"
        if verb in "fg":
            value = float(arg)  # type: ignore[arg-type]
            spec = f"{width}.{prec}{verb}" if prec is not None else f"{width}{verb}"
            return format(value, spec)
        if verb == "d":
            return format(int(float(arg)), f"{width}d")  # type: ignore[arg-type]
        text = _text(arg)
        return text.ljust(int(width[1:])) if width.startswith("-") else text.rjust(int(width or 0))

    return _PRINTF_VERB.sub(one, fmt)


_FUNCS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizePercentage": humanize_percentage,
    "humanizeDuration": humanize_duration,
}


def _value_text(v: float) -> str:
    """``{{ $value }}`` prints a float64 like Go's ``%v`` (strconv 'g', shortest)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    if text.endswith(".0"):
        text = text[:-2]
    if "e" in text:  # Go writes 1e+21, Python 1e+21; Go pads exponent to 2 digits
        mant, exp = text.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        text = f"{mant}e{sign}{digits}"
    return text


def _term(token: str, labels: Mapping[str, str], value: float, external: Mapping[str, str]) -> object:
    if token == "$value":
        return value
    for prefix, mapping in (("$labels.", labels), ("$externalLabels.", external)):
        if token.startswith(prefix):
            return mapping.get(token[len(prefix):], "")
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        return token[1:-1]
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", token):
        return float(token)
    raise TemplateError(f"unsupported template term {token!r}")


def _split_pipeline(action: str) -> list[list[str]]:
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[^\s|]+|\|', action)
    stages: list[list[str]] = [[]]
    for tok in tokens:
        if tok == "|":
            stages.append([])
        else:
            stages[-1].append(tok)
    if any(not s for s in stages):
        raise TemplateError(f"empty pipeline stage in {{{{ {action} }}}}")
    return stages


def _render_action(action: str, labels, value, external) -> str:
    stages = _split_pipeline(action)
    first = stages[0]
    if first[0] == "printf":
        if len(first) != 3:
            raise TemplateError('printf takes a format and one argument: printf "%.2f" $value')
        current: object = _printf(str(_term(first[1], labels, value, external)), _term(first[2], labels, value, external))
    elif first[0] in _FUNCS and len(first) == 2:
        current = _FUNCS[first[0]](float(_term(first[1], labels, value, external)))  # type: ignore[arg-type]
    elif len(first) == 1:
        current = _term(first[0], labels, value, external)
    else:
        raise TemplateError(f"unsupported template action {{{{ {action} }}}}")
    for stage in stages[1:]:
        name = stage[0]
        if name in _FUNCS and len(stage) == 1:
            try:
                current = _FUNCS[name](float(current))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise TemplateError(f"{name} needs a number") from None
        elif name == "printf" and len(stage) == 2:
            current = _printf(str(_term(stage[1], labels, value, external)), current)
        elif name in ("toUpper", "toLower", "title") and len(stage) == 1:
            text = _text(current)
            current = text.upper() if name == "toUpper" else text.lower() if name == "toLower" else text.title()
        else:
            raise TemplateError(f"unsupported template function {name!r}")
    return _text(current)


def _text(current: object) -> str:
    return _value_text(current) if isinstance(current, float) else str(current)


def render(template: str, labels: Mapping[str, str], value: float,
           external_labels: Mapping[str, str] | None = None) -> str:
    """Render one annotation or label template."""
    external = external_labels or {}
    return _ACTION.sub(lambda m: _render_action(m.group(1), labels, value, external), template)


def check(template: str) -> None:
    """Raise TemplateError if ``template`` uses anything :func:`render` cannot do."""
    render(template, {}, 1.0)
