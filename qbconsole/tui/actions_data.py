"""How proposals and audit rows read in the console, and the read that feeds the Actions section.

Pure functions of ``qbconsole.actions`` rows, except :func:`read_actions`, which
runs in a thread worker (never the UI thread). Every state has a word and a
symbol, not only a colour; the exact action is never cut without saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from qbconsole.actions import AuditEntry, Proposal, audit_entries, list_proposals
from qbconsole.actions.dryrun import DryRun
from qbconsole.actions.params import number_text
from qbconsole.tui.alertfmt import Mark, value_text
from qbconsole.tui.timefmt import clock, span

AUDIT_WINDOW_MS = 7 * 86_400_000
"""The Audit view lists this much of the log (newest first)."""
AUDIT_LIMIT = 500
PROPOSAL_LIMIT = 200

STATE_MARKS = {
    "proposed": Mark("◆", "PROPOSED", "warning"),
    "approved": Mark("✔", "APPROVED", "primary"),
    "executing": Mark("▶", "RUNNING", "primary"),
    "succeeded": Mark("✔", "SUCCEEDED", "success"),
    "failed": Mark("✖", "FAILED", "error"),
    "refused": Mark("⊘", "REFUSED", "error"),
    "rejected": Mark("✖", "REJECTED", "text-muted"),
    "expired": Mark("◌", "EXPIRED", "text-muted"),
}
VERDICT_MARKS = {
    "improved": Mark("▲", "improved", "success"),
    "not_improved": Mark("▼", "not improved", "warning"),
}
STATE_MEANING = {
    "proposed": "awaiting a decision: nothing runs unless someone approves it",
    "approved": "approved: the agent checks it again and runs it at its next tick",
    "executing": "running now",
    "succeeded": "ran and succeeded",
    "failed": "ran and failed",
    "refused": "approved, but refused just before running (stale)",
    "rejected": "rejected: it never runs",
    "expired": "nobody decided before it expired: it never runs",
}


def state_mark(state: str) -> Mark:
    return STATE_MARKS.get(state, Mark("?", state.upper(), "foreground"))


def verdict_mark(p: Proposal, now_ms: int) -> Mark:
    """Whether the metric improved; ``… at 12:05`` while the settle period runs."""
    if p.verdict in VERDICT_MARKS:
        return VERDICT_MARKS[p.verdict]
    if p.state == "succeeded" and p.verify_at is not None:
        return Mark("…", f"verify {'in ' + span(p.verify_at - now_ms) if p.verify_at > now_ms else 'due'}",
                    "text-muted")
    return Mark("", "—", "text-muted")


def when_text(p: Proposal, now_ms: int) -> str:
    """Open proposals: time left to decide; history: how long ago it last moved."""
    if p.state == "proposed":
        left = p.expires_at - now_ms
        return f"{span(left)} left" if left > 0 else "expired"
    last = max(t for t in (p.created_at, p.decided_at, p.started_at, p.finished_at, p.verified_at) if t)
    return f"{span(now_ms - last)} ago"


def decided_text(p: Proposal) -> str:
    if p.decided_by:
        return p.decided_by
    return "engine" if p.state in ("expired", "refused") else "—"


def expiry_text(p: Proposal, now_ms: int) -> str:
    """The countdown of the dialog: ``expires in 4m12s (12:15:00)``."""
    at = clock(p.expires_at)
    left = p.expires_at - now_ms
    if p.state != "proposed":
        return f"expiry {at} (decided: {p.state})"
    if left <= 0:
        return f"EXPIRED {span(-left)} ago ({at}): approving it will be refused"
    seconds = left // 1000
    exact = f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    return f"expires in {exact} ({at})"


# ---- the exact action ------------------------------------------------------------------------
def spec_lines(spec: Mapping[str, Any]) -> list[str]:
    """The spec written out in full, one fact per line: argv element by element, the request
    with its body, or the SQL with its arguments. Nothing is shortened."""
    kind = spec.get("kind")
    lines: list[str] = []
    if kind == "command":
        lines.append(f"command (argv, no shell), timeout {number_text(spec.get('timeout_s', 0))} s")
        if spec.get("executable_env"):
            lines.append(f"argv[0] is the program named by ${spec['executable_env']} when it runs")
        lines += [f"  argv[{i}] {json.dumps(arg, ensure_ascii=False)}" for i, arg in enumerate(spec.get("argv") or [])]
        if spec.get("cwd"):
            lines.append(f"  cwd {spec['cwd']}")
        if spec.get("env"):
            lines.append(f"  environment passed: {', '.join(spec['env'])}")
    elif kind == "http":
        lines.append(f"{spec.get('method')} {spec.get('url')}")
        for header, value in (spec.get("headers") or {}).items():
            lines.append(f"  {header}: {value}")
        for header, var in (spec.get("headers_env") or {}).items():
            lines.append(f"  {header}: ${var}")
        if spec.get("bearer_token_env"):
            lines.append(f"  Authorization: Bearer ${spec['bearer_token_env']}")
        if spec.get("json") is not None:
            lines += ["  " + line for line in json.dumps(spec["json"], indent=2, ensure_ascii=False).splitlines()]
        if spec.get("statement"):
            lines.append(f"  (the platform runs: {spec['statement']})")
        lines.append(f"  timeout {number_text(spec.get('timeout_s', 0))} s")
    elif kind == "sql":
        lines.append(f"SQL on {spec.get('dsn')}, timeout {number_text(spec.get('timeout_s', 0))} s")
        lines += ["  " + line for line in str(spec.get("statement", "")).splitlines()]
        if spec.get("args"):
            lines.append(f"  args {json.dumps(spec['args'], ensure_ascii=False)}")
    else:
        lines += json.dumps(dict(spec), indent=2, ensure_ascii=False).splitlines()
    return lines


def action_text(p: Proposal) -> str:
    """The action for a list row: a request without its scheme and host (the dialog and the
    detail line show the whole of it); anything else as :attr:`Proposal.summary`."""
    spec = p.spec or {}
    if spec.get("kind") == "http":
        parts = urlsplit(str(spec.get("url", "")))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = "" if spec.get("json") is None else " " + json.dumps(spec["json"], separators=(",", ":"),
                                                                    ensure_ascii=False)
        return f"{spec.get('method')} {path or '/'}{body}"
    return p.summary


def _number(value: Any, expr: str | None = None) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return value_text(float(value), expr)


def _labels(labels: Mapping[str, Any] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "—"


def evidence_lines(p: Proposal, alert_exprs: Mapping[str, str] | None = None) -> list[str]:
    """The metric values that led to the proposal, in the words of its rule. ``alert_exprs``
    (alert rule -> expression) gives alert values their unit."""
    ev = p.evidence or {}
    cond = ev.get("condition") or {}
    exprs = alert_exprs or {}
    lines: list[str] = []
    if ev.get("summary"):
        lines.append(str(ev["summary"]))
    held = ""
    if cond.get("held_since"):
        held = f"held since {clock(cond['held_since'])}"
        if cond.get("at") and cond["at"] != cond["held_since"]:
            held += f", proposed at {clock(cond['at'])}"
    if cond.get("alerts"):  # the value is the alert's; an expression is only a guard
        guard = f" while {cond['expr']}" if cond.get("expr") else ""
        lines.append(f"condition: {' or '.join(cond['alerts'])} firing{guard}" + (f"; {held}" if held else ""))
    elif cond.get("expr"):
        lines.append(f"condition {cond['expr']}")
        lines.append(f"  value {_number(cond.get('value'), cond['expr'])}" + (f", {held}" if held else ""))
    for alert in ev.get("alerts") or []:
        fired = f", firing since {clock(alert['fired_at'])}" if alert.get("fired_at") else ""
        value = _number(alert.get("value"), exprs.get(str(alert.get("alert"))))
        lines.append(f"alert {alert.get('alert')} #{alert.get('id')} {alert.get('state', '')} value {value}{fired}")
    if ev.get("labels"):
        lines.append(f"labels {_labels(ev['labels'])}")
    for name, note in (ev.get("params") or {}).items():
        if not isinstance(note, Mapping):
            continue
        value = note.get("value")
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else _number(value)
        line = f"parameter {name} = {shown}"
        if note.get("from") is not None:
            line += f"  (from {note['from']})"
        if "before_bounds" in note:
            line += f"; {_number(note['before_bounds'])} before bounds"
        lines.append(line)
        for key in ("current", "load"):
            if isinstance(note.get(key), Mapping):
                lines.append(f"  {key}: " + ", ".join(f"{k}={_number(v)}" for k, v in note[key].items()))
    verify = ev.get("verify") or {}
    if verify.get("expr"):
        lines.append(f"verify {verify['expr']}: baseline {_number(verify.get('baseline'), verify['expr'])}")
    query = ev.get("query") or {}
    if query:
        avg = query.get("avg_seconds")
        lines.append(f"slow query {query.get('name', '?')}"
                     + (f", avg {float(avg) * 1000:.1f} ms" if isinstance(avg, (int, float)) else "")
                     + (f", {query['count']} runs" if query.get("count") is not None else ""))
        if query.get("sql"):
            lines.append(f"  {query['sql']}")
    for row in ev.get("plan") or []:
        lines.append(f"  plan: {row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)}")
    return lines or ["(no evidence recorded)"]


def bounds_lines(p: Proposal) -> list[str]:
    out = []
    for name, b in (p.bounds or {}).items():
        if not isinstance(b, Mapping):
            continue
        lo = "−∞" if b.get("min") is None else _number(b["min"])
        hi = "∞" if b.get("max") is None else _number(b["max"])
        how = "values outside are clamped" if b.get("clamp", True) else "values outside are refused"
        out.append(f"{name} within [{lo}, {hi}]; {how}")
    return out or ["no bounds beyond the action's own limits"]


def outcome_lines(p: Proposal, now_ms: int) -> list[str]:
    """What happened to it: the decision, the run, the verification."""
    lines = [f"{state_mark(p.state).text}: {STATE_MEANING.get(p.state, p.state)}"]
    if p.decided_by:
        note = f' — "{p.decision_note}"' if p.decision_note else ""
        lines.append(f"decided by {p.decided_by} at {clock(p.decided_at)}{note}")
    if p.reason:
        lines.append(f"reason: {p.reason}")
    if p.started_at:
        ran = f"ran at {clock(p.started_at)}"
        if p.finished_at:
            ran += f", exit status {p.exit_status if p.exit_status is not None else '—'}"
            if p.duration_s is not None:
                ran += f", {p.duration_s:.2f} s"
        lines.append(ran)
    if p.output:
        lines.append("output:")
        lines += ["  " + line for line in p.output.splitlines()]
    if p.verdict:
        expr = (p.verify or {}).get("expr")
        lines.append(f"{verdict_mark(p, now_ms).text}: {expr} {_number(p.baseline, expr)} → {_number(p.after, expr)}")
    elif p.state == "succeeded" and p.verify_at:
        lines.append(f"verification at {clock(p.verify_at)}")
    return lines


def check_lines(run: DryRun) -> list[tuple[bool, str]]:
    """(ok, "✔ not expired: expires in 240 s") for each pre-run check of a dry run."""
    return [(c.ok, f"{'✔' if c.ok else '✖'} {c.name}: {c.detail}") for c in run.checks]


def cooldown_text(config: Any, rule: str) -> str:
    """The rule's cooldown as configured (the current rules file), or why it is not known."""
    from qbconsole.actions.model import RuleError
    from qbconsole.actions.schema import parse_rule

    for raw in getattr(config, "optimizations", None) or []:
        if isinstance(raw, Mapping) and raw.get("name") == rule:
            try:
                parsed = parse_rule(raw)
            except RuleError:
                return "unknown: the rule does not parse"
            return (f"{span(parsed.cooldown_ms)}: after it runs (or is rejected), no new proposal for this "
                    "rule and target for that long")
    return "unknown: the rule is not in the loaded rules file"


# ---- the audit log --------------------------------------------------------------------------
def _short(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, ensure_ascii=False)


def audit_detail(entry: AuditEntry) -> str:
    """The audit row's detail in one line, the most telling keys first; floats to 6 significant
    digits (``qbconsole audit --json`` has them exactly)."""
    d = dict(entry.detail)
    parts = []
    for key in ("rule", "target", "action", "note", "reason", "exit_status", "duration_s", "baseline", "after"):
        value = d.pop(key, None)
        if value not in (None, "", [], {}):
            parts.append(f"{key}={_short(value)}")
    parts += [f"{key}={_short(value)}" for key, value in d.items() if key not in ("evidence", "output")]
    return " ".join(parts)


# ---- the read ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionsData:
    """Proposals (open first, then history) and, when asked for, the newest audit rows."""

    now_ms: int
    proposals: tuple[Proposal, ...] = ()
    audit: tuple[AuditEntry, ...] | None = None
    error: str | None = None

    @property
    def open(self) -> tuple[Proposal, ...]:
        return tuple(p for p in self.proposals if p.is_open)

    def by_id(self, proposal_id: int) -> Proposal | None:
        return next((p for p in self.proposals if p.id == proposal_id), None)


def read_actions(store, now_ms: int, *, with_audit: bool = False) -> ActionsData:
    """One read of the proposals (and the audit log); exceptions propagate to the caller."""
    conn = store.read()
    proposals = tuple(list_proposals(conn, limit=PROPOSAL_LIMIT))
    audit = None
    if with_audit:
        audit = tuple(reversed(audit_entries(conn, since=now_ms - AUDIT_WINDOW_MS, limit=AUDIT_LIMIT)))
    return ActionsData(now_ms, proposals, audit)


def counts_text(proposals: Iterable[Proposal]) -> str:
    """``2 awaiting a decision · 1 approved · 4 in history``."""
    items = list(proposals)
    if not items:
        return "no proposals"
    waiting = sum(p.state == "proposed" for p in items)
    moving = sum(p.state in ("approved", "executing") for p in items)
    history = sum(not p.is_open for p in items)
    parts = [f"{waiting} awaiting a decision"]
    if moving:
        parts.append(f"{moving} approved/running")
    parts.append(f"{history} in history")
    return " · ".join(parts)
