"""``qbconsole alerts ...``, ``qbconsole silence ...`` and ``qbconsole rules test``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time

from qbconsole.store import alerts as rows


def operator(args: argparse.Namespace) -> str:
    """Who is acting: --operator, else the OS (or SSH) user."""
    if getattr(args, "operator", None):
        return args.operator
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ago(ms: int | None, now: int) -> str:
    if ms is None:
        return "—"
    s = max(0, (now - ms) // 1000)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _labels(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))


def _alert_json(a: rows.AlertRow) -> dict:
    return a._asdict()


def cmd_alerts_list(args) -> int:
    from qbconsole.cli import open_store

    store = open_store(args)
    now = _now_ms()
    try:
        conn = store.read()
        if args.state:
            found = rows.alerts(conn, state=args.state)
        else:
            found = rows.current_alerts(conn, now)
    finally:
        store.close()
    if args.json:
        print(json.dumps([_alert_json(a) for a in found], indent=2))
        return 0
    if not found:
        print("no alerts" + (f" in state {args.state}" if args.state else " (active or resolved in the last 15 min)"))
        return 0
    print(f"{'ID':>5}  {'SEVERITY':<8}  {'STATE':<8}  {'ALERT':<26}  {'SINCE':>6}  {'VALUE':>10}  {'ACK BY':<10}  LABELS")
    for a in found:
        since = a.fired_at or a.active_at
        value = "—" if a.value is None else f"{a.value:.4g}"
        ack = a.ack_by if a.acknowledged(now) else "—"
        print(f"{a.id:>5}  {a.severity:<8}  {a.state:<8}  {a.rule[:26]:<26}  {_ago(since, now):>6}  "
              f"{value:>10}  {ack[:10]:<10}  {_labels(a.labels)}")
    return 0


def cmd_alerts_ack(args) -> int:
    from qbconsole.cli import UserError, open_store, parse_since

    timeout_ms = int(parse_since(args.timeout) * 1000) if args.timeout else None
    store = open_store(args)
    who = operator(args)
    try:
        alert = store.transaction(lambda c: rows.acknowledge(c, args.id, who, _now_ms(), args.comment or "", timeout_ms))
    except ValueError as err:
        raise UserError(str(err)) from None
    finally:
        store.close()
    print(f"acknowledged alert {alert.id} ({alert.rule}) as {who}")
    return 0


def cmd_silence_add(args) -> int:
    from qbconsole.cli import UserError, open_store, parse_since

    try:
        matchers = [rows.parse_matcher(m) for m in args.matchers]
    except ValueError as err:
        raise UserError(str(err)) from None
    duration_ms = int(parse_since(args.duration) * 1000)
    now = _now_ms()
    store = open_store(args)
    who = operator(args)
    try:
        sid = store.transaction(lambda c: rows.add_silence(c, matchers, now, now + duration_ms, who, args.comment, now))
    except ValueError as err:
        raise UserError(str(err)) from None
    finally:
        store.close()
    print(f"silence {sid} by {who} until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime((now + duration_ms) / 1000))}: "
          + " ".join(str(m) for m in matchers))
    return 0


def cmd_silence_list(args) -> int:
    from qbconsole.cli import open_store

    store = open_store(args)
    now = _now_ms()
    try:
        found = rows.silences(store.read(), None if args.all else now)
    finally:
        store.close()
    if args.json:
        print(json.dumps([{**s._asdict(), "matchers": [str(m) for m in s.matchers]} for s in found], indent=2))
        return 0
    if not found:
        print("no active silences" if not args.all else "no silences")
        return 0
    for s in found:
        state = "active" if s.active(now) else ("ended" if s.ends_at <= now else "pending")
        ends = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.ends_at / 1000))
        print(f"{s.id:>4}  {state:<7} until {ends}  by {s.created_by}: {' '.join(map(str, s.matchers))}  # {s.comment}")
    return 0


def cmd_silence_expire(args) -> int:
    from qbconsole.cli import UserError, open_store

    store = open_store(args)
    who = operator(args)
    try:
        store.transaction(lambda c: rows.expire_silence(c, args.id, who, _now_ms()))
    except ValueError as err:
        raise UserError(str(err)) from None
    finally:
        store.close()
    print(f"silence {args.id} expired by {who}")
    return 0


def cmd_rules_test(args) -> int:
    from qbconsole.rules.ruletest import run

    ok, report = run(args.files)
    print(report)
    return 0 if ok else 1


def register(sub, rules_sub) -> None:
    """Add the alert, silence and rule-test commands to the top-level parser."""
    op = argparse.ArgumentParser(add_help=False)
    op.add_argument("--operator", help="name recorded as who acted (default: the OS/SSH user)")

    test = rules_sub.add_parser("test", help="run rule unit tests in promtool's format; exit 0 only if all pass")
    test.add_argument("files", nargs="+", metavar="FILE")
    test.set_defaults(func=cmd_rules_test)

    alerts = sub.add_parser("alerts", help="list and acknowledge alerts")
    asub = alerts.add_subparsers(title="alerts commands", metavar="COMMAND", required=True)
    al = asub.add_parser("list", help="active alerts and those resolved in the last 15 minutes")
    al.add_argument("--state", choices=("pending", "firing", "resolved"))
    al.add_argument("--json", action="store_true")
    al.set_defaults(func=cmd_alerts_list)
    ack = asub.add_parser("ack", parents=[op], help="acknowledge an alert (stops escalation and repeats)")
    ack.add_argument("id", type=int)
    ack.add_argument("--comment", default="")
    ack.add_argument("--timeout", help="the acknowledgement lapses after this long (e.g. 2h)")
    ack.set_defaults(func=cmd_alerts_ack)

    silence = sub.add_parser("silence", help="mute notifications for alerts matching labels")
    ssub = silence.add_subparsers(title="silence commands", metavar="COMMAND", required=True)
    add = ssub.add_parser("add", parents=[op], help='e.g. silence add alertname=HighCPU instance=~"web-.*" --for 1h --comment "deploy"')
    add.add_argument("matchers", nargs="+", metavar="MATCHER")
    add.add_argument("--for", dest="duration", default="1h")
    add.add_argument("--comment", required=True)
    add.set_defaults(func=cmd_silence_add)
    ls = ssub.add_parser("list", help="active silences (--all for every one)")
    ls.add_argument("--all", action="store_true")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_silence_list)
    ex = ssub.add_parser("expire", parents=[op], help="end a silence now")
    ex.add_argument("id", type=int)
    ex.set_defaults(func=cmd_silence_expire)
