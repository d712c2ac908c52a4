"""``qbconsole actions list|show|approve|reject`` and ``qbconsole audit``.

Approving only records the decision; the agent (or a console running the
agent's work) checks the proposal again and runs it at its next tick.
``approve`` waits a little for that outcome when an agent holds the lease.
``--dry-run`` shows exactly what would run and the result of every pre-run
check, and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import time

from qbconsole.cli_alerts import operator


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ago(ms: int, now: int) -> str:
    """How long from ``ms`` to ``now``: 45s, 12m, 3h05m."""
    s = max(0, (now - ms) // 1000)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _store(args):
    from qbconsole.cli import open_store

    return open_store(args)


def _when(ms: int | None) -> str:
    return "—" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _until(ms: int, now: int) -> str:
    return f"in {_ago(now, ms)}" if ms > now else f"{_ago(ms, now)} ago"


def _state(p) -> str:
    return f"{p.state}/{p.verdict}" if p.verdict else p.state


def cmd_list(args) -> int:
    from qbconsole.actions import list_proposals

    store = _store(args)
    try:
        found = list_proposals(store.read(), open_only=not (args.all or args.state),
                               states=(args.state,) if args.state else None, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([p.to_json() for p in found], indent=2))
        return 0
    if not found:
        print("no open proposals" if not (args.all or args.state) else "no proposals")
        return 0
    now = _now_ms()
    print(f"{'ID':>5}  {'PRIO':<6}  {'STATE':<22}  {'RULE':<22}  {'TARGET':<18}  {'AGE':>6}  ACTION")
    for p in found:
        print(f"{p.id:>5}  {p.priority:<6}  {_state(p):<22}  {p.rule[:22]:<22}  {p.target[:18]:<18}  "
              f"{_ago(p.created_at, now):>6}  {p.summary}")
    return 0


def _print_proposal(p, now: int) -> None:
    print(f"proposal {p.id}: {p.description}")
    print(f"  rule {p.rule}, target {p.target}, action {p.action}, priority {p.priority}")
    print(f"  state {_state(p)}" + (f" — {p.reason}" if p.reason else ""))
    print(f"  created {_when(p.created_at)}, expires {_when(p.expires_at)} ({_until(p.expires_at, now)})")
    if p.decided_by:
        note = f" — {p.decision_note}" if p.decision_note else ""
        print(f"  decided by {p.decided_by} at {_when(p.decided_at)}{note}")
    print(f"  runs exactly: {p.summary}")
    print("  spec: " + json.dumps(p.spec, sort_keys=True))
    print("  evidence: " + json.dumps(p.evidence, sort_keys=True))
    if p.bounds:
        print("  bounds: " + json.dumps(p.bounds, sort_keys=True))
    if p.started_at:
        print(f"  ran {_when(p.started_at)} for {p.duration_s or 0:.2f} s, exit status {p.exit_status}")
    if p.output:
        print("  output:\n" + "\n".join("    " + line for line in p.output.splitlines()))
    if p.verify:
        verdict = p.verdict or ("due " + _when(p.verify_at) if p.verify_at else "after it runs")
        print(f"  verify: {p.verify.get('expr')} ({p.verify.get('better')} is better): {verdict}; "
              f"baseline {p.baseline}, after {p.after}")


def cmd_show(args) -> int:
    from qbconsole.actions import audit_entries, get
    from qbconsole.cli import UserError

    store = _store(args)
    try:
        p = get(store.read(), args.id)
        if p is None:
            raise UserError(f"no proposal with id {args.id}")
        history = audit_entries(store.read(), target=p.audit_target)
    finally:
        store.close()
    if args.json:
        print(json.dumps({**p.to_json(), "audit": [e._asdict() for e in history]}, indent=2))
        return 0
    _print_proposal(p, _now_ms())
    print("  history:")
    for e in history:
        print(f"    {_when(e.ts)}  {e.action:<13} by {e.actor}")
    return 0


def _dry_run(args, store) -> int:
    from qbconsole.actions import dry_run
    from qbconsole.cli import UserError, load_rules, rules_path

    config = load_rules(rules_path(args))
    try:
        result = dry_run(store, args.id, config)
    except ValueError as err:
        raise UserError(str(err)) from None
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    p = result.proposal
    print(f"proposal {p.id} ({p.rule}, target {p.target}): {p.description}")
    print(f"would run: {result.summary}")
    for key, value in result.would_run.items():
        print(f"  {key}: {json.dumps(value) if not isinstance(value, str) else value}")
    print("checks:")
    for check in result.checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    verb = "approved" if args.func is cmd_approve else "rejected"
    print(f"dry run: nothing was run, {verb} or recorded; "
          + ("it would run now." if result.runnable else "the engine would refuse it now."))
    return 0


def _wait_outcome(store, proposal_id: int, seconds: float):
    from qbconsole.actions import get

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        p = get(store.read(), proposal_id)
        if p is None or p.state not in ("approved", "executing"):
            return p
        time.sleep(0.25)
    return get(store.read(), proposal_id)


def cmd_approve(args) -> int:
    return _decide(args, "approve")


def cmd_reject(args) -> int:
    return _decide(args, "reject")


def _decide(args, verb: str) -> int:
    from qbconsole import actions
    from qbconsole.cli import UserError

    store = _store(args)
    try:
        if args.dry_run:
            return _dry_run(args, store)
        who = operator(args)
        decide = actions.approve if verb == "approve" else actions.reject
        try:
            p = decide(store, args.id, who, _now_ms(), args.note or "")
        except ValueError as err:
            raise UserError(str(err)) from None
        lease = store.lease_info()
        agent = lease is not None and lease.expires > _now_ms()
        if verb == "approve" and agent and args.wait > 0:
            p = _wait_outcome(store, args.id, args.wait) or p
    finally:
        store.close()
    if args.json:
        print(json.dumps(p.to_json(), indent=2))
        return 0
    print(f"{p.id} {verb}d by {who}: {p.summary}")
    if verb == "approve":
        if p.state == "approved":
            print("the agent runs it at its next tick, after checking it again" if agent else
                  "no agent is running: it runs when `qbconsole agent` or the console is started")
        else:
            print(f"now {_state(p)}" + (f": {p.reason}" if p.reason else "")
                  + (f" (exit status {p.exit_status})" if p.exit_status is not None else ""))
    return 0


def cmd_audit(args) -> int:
    from qbconsole.actions import audit_entries
    from qbconsole.cli import parse_since

    since = _now_ms() - int(parse_since(args.since) * 1000) if args.since else None
    store = _store(args)
    try:
        found = audit_entries(store.read(), since=since, target=args.target)
    finally:
        store.close()
    if args.json:
        print(json.dumps([e._asdict() for e in found], indent=2))
        return 0
    if not found:
        print("no audit entries" + (f" in the last {args.since}" if args.since else ""))
        return 0
    for e in found:
        detail = {k: v for k, v in e.detail.items() if k != "evidence"}
        text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
        print(f"{_when(e.ts)}  {e.actor:<12}  {e.action:<13}  {e.target:<14}  "
              + (text if len(text) <= 240 else text[:237] + "..."))
    return 0


def register(sub) -> None:
    """Add ``actions`` and ``audit`` to the top-level parser."""
    op = argparse.ArgumentParser(add_help=False)
    op.add_argument("--operator", help="name recorded as who decided (default: the OS/SSH user)")
    op.add_argument("--note", default="", help="why (recorded with the decision)")
    op.add_argument("--dry-run", action="store_true", help="show exactly what would run and every check; change nothing")
    op.add_argument("--json", action="store_true")

    actions = sub.add_parser("actions", help="optimization proposals: list, show, approve, reject")
    asub = actions.add_subparsers(title="actions commands", metavar="COMMAND", required=True)
    ls = asub.add_parser("list", help="open proposals (--all for history too)")
    ls.add_argument("--all", action="store_true")
    ls.add_argument("--state", choices=("proposed", "approved", "executing", "rejected", "expired", "refused",
                                        "succeeded", "failed"))
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    show = asub.add_parser("show", help="one proposal: exact action, evidence, bounds, outcome, history")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    ap = asub.add_parser("approve", parents=[op], help="approve a proposal (the agent checks and runs it)")
    ap.add_argument("id", type=int)
    ap.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                    help="wait this long for the outcome when an agent is running (default 10)")
    ap.set_defaults(func=cmd_approve)
    rj = asub.add_parser("reject", parents=[op], help="reject a proposal: it never runs")
    rj.add_argument("id", type=int)
    rj.set_defaults(func=cmd_reject)

    audit = sub.add_parser("audit", help="the append-only audit log of proposals and decisions")
    audit.add_argument("--since", help="only entries this recent (e.g. 1h)")
    audit.add_argument("--target", help="only entries about this target (e.g. proposal:3)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=cmd_audit)
