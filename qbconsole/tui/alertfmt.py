"""How an alert reads in the console: severity and state marks, labels, value, since, matchers.

Pure functions of alert rows (no I/O): the Alerts feed, its detail and the
status line use them. Every severity and state has a word and a symbol, not
only a colour.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, NamedTuple

from qbconsole.catalog import describe, format_value
from qbconsole.store.alerts import SEVERITY_ORDER, AlertRow, Matcher, parse_matcher
from qbconsole.tui.timefmt import span


class Mark(NamedTuple):
    """A word with its symbol and the theme colour variable it is drawn in."""

    symbol: str
    word: str
    colour: str

    @property
    def text(self) -> str:
        return f"{self.symbol} {self.word}"


SEVERITY_MARKS = {
    "critical": Mark("✖", "CRITICAL", "error"),
    "error": Mark("✖", "ERROR", "error"),
    "warning": Mark("▲", "WARNING", "warning"),
    "info": Mark("●", "INFO", "primary"),
}
STATE_MARKS = {
    "firing": Mark("●", "FIRING", "error"),
    "pending": Mark("◌", "PENDING", "warning"),
    "resolved": Mark("✔", "RESOLVED", "success"),
    "inactive": Mark("○", "INACTIVE", "foreground"),
}
HIDDEN_LABELS = frozenset({"alertname", "severity"})
"""Shown elsewhere in a row (name, severity column), so left out of its labels."""

STATE_FILTERS = ("all", "firing", "pending", "resolved")


def severity_mark(severity: str) -> Mark:
    return SEVERITY_MARKS.get(severity, Mark("●", severity.upper() or "NONE", "foreground"))


def state_mark(state: str) -> Mark:
    return STATE_MARKS.get(state, Mark("?", state.upper(), "foreground"))


def compact_labels(labels: Mapping[str, str]) -> str:
    """``instance=web-1 job=api``: sorted, without alertname and severity."""
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in HIDDEN_LABELS)


def since_ms(alert: AlertRow) -> int:
    """When the alert started: fired_at, else (pending) active_at."""
    return alert.fired_at or alert.active_at


def since_text(alert: AlertRow, now_ms: int) -> str:
    return span(now_ms - since_ms(alert))


def ack_text(alert: AlertRow, now_ms: int, silenced: bool) -> str:
    """Who acknowledged it (while the acknowledgement holds) and whether a silence mutes it."""
    parts = [f"✔ {alert.ack_by}"] if alert.acknowledged(now_ms) else []
    if silenced:
        parts.append("silenced")
    return " · ".join(parts) or "—"


# ---- the alert's value, in its metric's unit when the expression says which ----------------------
_METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SELECTOR = re.compile(rf'({_METRIC})\s*(?:\{{(?:[^{{}}"]|"(?:[^"\\]|\\.)*")*\}})?')
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_CMP = r"(?:==|!=|>=|<=|>|<)"
_RIGHT_LITERAL = re.compile(rf"^(.*?)\s*{_CMP}\s*{_NUMBER}$", re.S)
_LEFT_LITERAL = re.compile(rf"^{_NUMBER}\s*{_CMP}\s*(.*)$", re.S)
_RANGE = r"\s*\[[^\]]+\](?:\s*offset\s+-?\w+)?\s*"
_KEEPS_UNIT = (  # functions and aggregations whose result is in the unit of their argument
    re.compile(rf"^(?:avg|min|max|last)_over_time\s*\((.*?){_RANGE}\)$", re.S),
    re.compile(rf"^quantile_over_time\s*\(\s*{_NUMBER}\s*,(.*?){_RANGE}\)$", re.S),
    re.compile(r"^(?:avg|min|max)\s*(?:(?:by|without)\s*\([^()]*\)\s*)?\((.*)\)(?:\s*(?:by|without)\s*\([^()]*\))?$",
               re.S),
)
_SET_OPS = re.compile(r"\b(?:and|unless)\b")


def _top_level_cut(expr: str) -> str:
    """``a and on() b`` -> ``a``: the value of ``and``/``unless`` is the left side's."""
    depth, quote, i = 0, "", 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            match = _SET_OPS.match(expr, i)
            if match and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")):
                return expr[:i]
        i += 1
    return expr


def value_metric(expr: str | None) -> str | None:
    """The metric whose unit the alert's value has, when the expression makes that plain.

    ``system_cpu_percent > 80`` and ``avg_over_time(system_cpu_percent[15m]) > 70`` give
    ``system_cpu_percent``; anything computed (ratios, rates, sums) gives None.
    """
    if not expr:
        return None
    text = _top_level_cut(expr).strip()
    for _ in range(8):  # peel comparisons, parentheses and unit-keeping functions
        before = text
        match = _RIGHT_LITERAL.match(text) or _LEFT_LITERAL.match(text)
        if match:
            text = match.group(1).strip()
        while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1].strip()
        for pattern in _KEEPS_UNIT:
            match = pattern.match(text)
            if match and _balanced(match.group(1)):
                text = match.group(1).strip()
                break
        if text == before:
            break
    match = _SELECTOR.fullmatch(text)
    return match.group(1) if match else None


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def compact_number(value: float) -> str:
    """A value without a known unit: four significant figures, SI prefixes from 10 000."""
    if abs(value) >= 10_000 and math.isfinite(value):
        return format_value(value, "number")
    text = f"{value:.4g}"
    return text if "e" not in text else f"{value:.2e}"


def value_text(value: float | None, expr: str | None) -> str:
    """The alert's value in its metric's unit when known (``92.0 %``), else a compact number."""
    if value is None or math.isnan(value):
        return "—"
    metric = value_metric(expr)
    info = describe(metric) if metric else None
    if info is not None:
        return format_value(value, info.unit)
    return compact_number(value)


def alert_expressions(config: Any) -> dict[str, str]:
    """Rule name -> expression, from a loaded config's ``alert_rules`` and rule ``groups``."""
    if config is None:
        return {}
    found: dict[str, str] = {}
    raws: list[Mapping[str, Any]] = [r for g in getattr(config, "groups", ()) for r in (g.get("rules") or ())]
    raws += list(getattr(config, "alert_rules", ()))
    for raw in raws:
        name = raw.get("alert") or (raw.get("name") if "record" not in raw else None)
        if name and raw.get("expr"):
            found[str(name)] = str(raw["expr"])
    return found


# ---- filters and counts --------------------------------------------------------------------------
def matches_text(alert: AlertRow, text: str) -> bool:
    """Case-insensitive: the words of ``text`` each appear in the name or a label (name or value)."""
    haystack = " ".join([alert.rule, *(f"{k}={v}" for k, v in alert.labels.items())]).lower()
    return all(word in haystack for word in text.lower().split())


def filtered(alerts: Iterable[AlertRow], text: str, state: str) -> list[AlertRow]:
    return [a for a in alerts if (state == "all" or a.state == state) and matches_text(a, text)]


def firing_counts(alerts: Iterable[AlertRow]) -> list[tuple[str, int]]:
    """(severity, firing alerts) pairs, most severe first."""
    counts: dict[str, int] = {}
    for alert in alerts:
        if alert.state == "firing":
            counts[alert.severity] = counts.get(alert.severity, 0) + 1
    return sorted(counts.items(), key=lambda item: (SEVERITY_ORDER.get(item[0], 9), item[0]))


# ---- silence matchers as editable text -----------------------------------------------------------
_TOKEN = re.compile(r'(?:[^\s"]|"(?:[^"\\]|\\.)*"?)+')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matchers_text(labels: Mapping[str, str]) -> str:
    """``alertname="HighCPU" instance="web-1"``: alertname first, then the others sorted."""
    names = sorted(labels, key=lambda k: (k != "alertname", k))
    return " ".join(f"{k}={_quote(labels[k])}" for k in names)


def parse_matchers(text: str) -> list[Matcher]:
    """Space-separated ``name="value"`` matchers (ops = != =~ !~); ValueError says which is wrong."""
    matchers = []
    for token in _TOKEN.findall(text):
        matcher = parse_matcher(token)
        raw = token[token.index(matcher.op) + len(matcher.op):].strip()
        if raw.startswith('"'):
            if not _QUOTED.fullmatch(raw):
                raise ValueError(f"bad matcher {token!r}: the quoted value is not closed")
            value = re.sub(r'\\(["\\])', r"\1", raw[1:-1])
            if matcher.op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as err:
                    raise ValueError(f"bad regular expression in matcher {token!r}: {err}") from None
            matcher = matcher._replace(value=value)
        matchers.append(matcher)
    if not matchers:
        raise ValueError('a silence needs at least one matcher, e.g. alertname="HighCPU"')
    return matchers
