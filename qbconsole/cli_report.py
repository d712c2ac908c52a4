"""``qbconsole report (--from T --to T | --last 24h) --format md|html|json [--out FILE]``.

With a Prometheus datasource (the rules file's ``datasource`` or ``qbconsole --datasource URL
report ...``) the metrics come from Prometheus and the incidents from the store (see
``qbconsole.report.remote``): the same figures as on the local store.

T is ISO 8601 (``2026-01-01``, ``2026-01-01T10:00``, ``2026-01-01T10:00:00+02:00``;
no zone means UTC) or seconds since the epoch. The report covers samples after
--from up to and including --to.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

FORMATS = ("md", "html", "json")  # qbconsole.report.FORMATS, without importing the report here
_EPOCH = re.compile(r"^\d+(\.\d+)?$")


def parse_time(text: str) -> int:
    """ISO 8601 or epoch seconds -> integer ms UTC; raises ValueError with the reason."""
    text = text.strip()
    if _EPOCH.match(text):
        return int(round(float(text) * 1000))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ISO 8601 such as 2026-01-01T10:00Z, "
                         "or seconds since the epoch)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))


def window(args: argparse.Namespace, now_ms: int) -> tuple[int, int]:
    from qbconsole.cli import UserError, parse_since

    if args.last:
        if args.start or args.end:
            raise UserError("give either --last or --from/--to, not both")
        return now_ms - int(parse_since(args.last) * 1000), now_ms
    if not (args.start and args.end):
        raise UserError("give --last DURATION (e.g. --last 24h) or both --from and --to")
    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as err:
        raise UserError(str(err)) from None
    if end <= start:
        raise UserError("--to must be after --from")
    return start, end


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a failed run leaves no half file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _from_prometheus(args: argparse.Namespace, backend, config, start: int, end: int, now: int):
    """The report with metrics from Prometheus; incidents from the local store when there is one."""
    from qbconsole.cli import UserError, db_path, open_store
    from qbconsole.datasource.reader import PrometheusReader
    from qbconsole.report.remote import build_remote_report
    from qbconsole.rules.promql.errors import PromQLEvalError

    store = None
    try:
        if db_path(args).exists():
            store = open_store(args, config)
        else:
            print(f"no store at {db_path(args)}: the report has no incidents (alerts live in the store)",
                  file=sys.stderr)
        return build_remote_report(PrometheusReader(backend), store, config, start, end, now_ms=now)
    except PromQLEvalError as err:
        raise UserError(f"cannot read the report's metrics: {err}") from None
    finally:
        backend.close()
        if store is not None:
            store.close()


def cmd_report(args: argparse.Namespace) -> int:
    from qbconsole.cli import UserError, db_path, load_rules, open_store, rules_path
    from qbconsole.datasource import build_backend
    from qbconsole.report import build_report, render

    now = int(time.time() * 1000)
    start, end = window(args, now)
    config = load_rules(rules_path(args))
    try:
        backend = build_backend(config.datasource, getattr(args, "datasource", None))
    except ValueError as err:  # e.g. --datasource ftp://x: said as chart_source says it
        raise UserError(str(err)) from None
    if backend is None:
        if not db_path(args).exists():
            raise UserError(f"no store at {db_path(args)} (run `qbconsole agent` first, or pass --db)")
        store = open_store(args, config)
        try:
            report = build_report(store, config, start, end, now_ms=now)
        finally:
            store.close()
    else:
        report = _from_prometheus(args, backend, config, start, end, now)
    text = render(report, args.format)
    if args.out:
        try:
            _write(Path(args.out), text)
        except OSError as err:
            raise UserError(f"cannot write {args.out}: {err.strerror or err}") from None
        print(f"report written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub) -> None:
    """Add ``report`` to the top-level sub-commands."""
    p = sub.add_parser("report", help="performance report for a time range (Markdown, HTML or JSON)",
                       description="Performance report: system, application, business and user-experience "
                       "figures, SLO compliance, incidents, ranked recommendations and the change from the "
                       "previous period of equal length.")
    p.add_argument("--from", dest="start", metavar="T", help="start (ISO 8601, UTC unless a zone is given, "
                   "or epoch seconds)")
    p.add_argument("--to", dest="end", metavar="T", help="end (same forms as --from)")
    p.add_argument("--last", metavar="DURATION", help="the last DURATION up to now, e.g. 24h or 7d")
    p.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=cmd_report)
