"""Command line: ``qbconsole [run]``, ``agent``, ``serve``, ``rules check``, ``metrics ...``.

Every sub-command is a small function taking the parsed arguments and
returning an exit status. Errors the user can fix are printed as one clear
line (``qbconsole: ...``) with exit status 1 or 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

from qbconsole import __version__

DEFAULT_DB = "qbconsole.db"


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


# ---- helpers --------------------------------------------------------------
def rules_path(args: argparse.Namespace) -> Path:
    """--rules, else $QBCONSOLE_RULES, else ./rules.yaml, else the packaged defaults."""
    from qbconsole.config import DEFAULT_RULES

    if args.rules:
        return Path(args.rules)
    if os.environ.get("QBCONSOLE_RULES"):
        return Path(os.environ["QBCONSOLE_RULES"])
    local = Path("rules.yaml")
    return local if local.exists() else Path(DEFAULT_RULES)


def db_path(args: argparse.Namespace) -> Path:
    return Path(args.db or os.environ.get("QBCONSOLE_DB") or DEFAULT_DB)


def load_rules(path: Path):
    from qbconsole.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as err:
        raise UserError(f"{path} has errors:\n{err}") from None
    except OSError as err:
        raise UserError(f"cannot read rules file {path}: {err.strerror}") from None


def open_store(args: argparse.Namespace, config=None):
    from qbconsole.store import Store

    kwargs = {}
    if config is not None:
        kwargs = dict(
            raw_retention_s=config.settings.raw_retention,
            rollup_retention_s=config.settings.rollup_retention,
        )
    path = db_path(args)
    try:
        return Store.open(path, **kwargs)
    except OSError as err:
        raise UserError(f"cannot open store {path}: {err.strerror or err}") from None
    except sqlite3.DatabaseError as err:  # not a database, damaged, or locked beyond the busy timeout
        raise UserError(f"cannot open store {path}: {err} (is it a qbconsole store? --db picks another)") from None


def chart_source(store, datasource, url_override: str | None):
    """(what the console's charts read, the backend to close on exit): a PrometheusReader over
    a Prometheus datasource (``--datasource URL`` or the rules file's), else the store and None."""
    from qbconsole.datasource import build_backend, metrics_reader

    try:
        backend = build_backend(datasource, url_override)
    except ValueError as err:
        raise UserError(str(err)) from None
    return metrics_reader(store, backend), backend


def parse_since(text: str) -> float:
    """'15m' -> 900.0 seconds (Prometheus duration syntax)."""
    from qbconsole.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as err:
        raise UserError(f"bad duration {text!r}: {err}") from None


def setup_logging(verbose: bool, logfile: Path | None = None) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if logfile is not None:
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        logging.basicConfig(level=level, format=fmt, stream=os.fdopen(fd, "a", encoding="utf-8"))
    else:
        logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    # httpx logs every request at INFO: the collectors make one per scrape.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _web_viewer() -> bool:
    """Started by ``qbconsole serve`` (its web driver is the terminal). textual-serve's stack
    (aiohttp, jinja2) takes ~0.4 s to import: only looked at when there is no TTY."""
    from qbconsole.serve import is_web_viewer

    return is_web_viewer()


# ---- commands ---------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    """Open the console; run the agent in-process unless another one holds the lease."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) and not _web_viewer():
        raise UserError(
            "the console needs a terminal (stdin and stdout are not a TTY); "
            "run `qbconsole agent` for headless use"
        )
    path = rules_path(args)
    config = load_rules(path)
    store = open_store(args, config)
    setup_logging(args.verbose, logfile=Path(str(db_path(args)) + ".log"))
    from qbconsole.agent import Agent
    from qbconsole.tui.app import QBConsoleApp

    metrics, backend = chart_source(store, config.datasource, args.datasource)
    agent = Agent(store, path, config=config, datasource_url=args.datasource)
    app = QBConsoleApp(store, agent=agent, refresh=config.settings.refresh, theme=args.theme,
                       operator=args.operator, metrics=metrics)
    try:
        app.run()
    finally:
        agent.stop()
        if backend is not None:
            backend.close()
        store.close()
    return app.return_code or 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The QuickBid demo platform under load, watched by the console (or headless)."""
    import threading

    from qbconsole.agent import Agent
    from qbconsole.demo.run import Demo, run_headless, wait_for_ingest

    if not args.headless and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the console needs a terminal; use `qbconsole demo --headless --duration 60`")
    args.db = str(db_path(args) if (args.db or os.environ.get("QBCONSOLE_DB")) else Path("qbconsole-demo.db"))
    demo = Demo(Path(args.db), args.scenario)
    if args.headless:
        setup_logging(args.verbose)
    else:
        setup_logging(args.verbose, logfile=Path(args.db + ".log"))
    stop = threading.Event()
    store = agent = backend = None
    try:
        try:
            demo.start()
        except RuntimeError as err:
            raise UserError(f"the demo platform did not start: {err} (see {demo.dir}/platform.log)") from None
        config = load_rules(demo.rules_path)
        store = open_store(args, config)
        agent = Agent(store, demo.rules_path, config=config, datasource_url=args.datasource)
        if args.headless:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            logging.getLogger("qbconsole.demo").info(
                "demo running for %gs: store %s, rules %s", args.duration, args.db, demo.rules_path)
            run_headless(demo, agent, args.duration, stop)
            return 0
        from qbconsole.tui.app import QBConsoleApp

        def load_when_ingest_is_up() -> None:
            if wait_for_ingest(demo.ingest_port, 30) and not stop.is_set():
                demo.start_load()

        threading.Thread(target=load_when_ingest_is_up, name="qbconsole-demo-load", daemon=True).start()
        metrics, backend = chart_source(store, config.datasource, args.datasource)
        app = QBConsoleApp(store, agent=agent, refresh=config.settings.refresh, theme=args.theme, metrics=metrics)
        app.run()
        return app.return_code or 0
    finally:
        stop.set()
        if agent is not None:
            agent.stop()
        if backend is not None:
            backend.close()
        demo.stop()
        if store is not None:
            store.close()


def cmd_agent(args: argparse.Namespace) -> int:
    """Headless agent: waits for the lease, then collects until SIGTERM/SIGINT."""
    from qbconsole.agent import Agent

    setup_logging(args.verbose)
    path = rules_path(args)
    config = load_rules(path)
    store = open_store(args, config)
    agent = Agent(store, path, config=config, heartbeat_s=args.heartbeat, datasource_url=args.datasource)

    def stop(signum, _frame):
        logging.getLogger("qbconsole.agent").info("signal %d: stopping", signum)
        agent._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda *_: agent.request_reload())
    logging.getLogger("qbconsole.agent").info(
        "agent %s on %s (rules %s); waiting for the lease", agent.holder, store.path, path
    )
    agent.start()
    while not agent.wait(0.5):
        pass
    agent.stop()
    store.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The console in a browser: one console process per viewer, one agent through the lease."""
    import asyncio

    from qbconsole.serve import TOKEN_ENV, ConsoleServer, ServeError, viewer_argv

    path = rules_path(args)
    config = load_rules(path)
    open_store(args, config).close()  # create and migrate it once, before any viewer opens it
    setup_logging(args.verbose)
    argv = viewer_argv(sys.executable, str(db_path(args).resolve()), str(path.resolve()),
                       datasource=args.datasource, operator=args.operator, theme=args.theme)
    token = os.environ.get(TOKEN_ENV) or None
    try:
        server = ConsoleServer(argv, args.host, args.port, token=token, public_url=args.public_url)
    except ServeError as err:
        raise UserError(str(err)) from None

    def ready(url: str) -> None:
        hint = f" (open it once with ?token=<the value of {TOKEN_ENV}>)" if token else ""
        print(f"qbconsole serve: {url}{hint}; each viewer is a console on {db_path(args)}", flush=True)

    try:
        asyncio.run(server.run(ready))
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from qbconsole.config import check_file

    path = Path(args.file) if args.file else rules_path(args)
    config, errors, notices = check_file(path)
    for notice in notices:
        print(f"notice: {notice}")
    for error in errors:
        print(error)
    if errors:
        print(f"{path}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: OK ({len(config.sources)} source(s))")
    return 0


def cmd_metrics_list(args: argparse.Namespace) -> int:
    from qbconsole.catalog import describe

    store = open_store(args)
    try:
        rows = []
        for name in store.names():
            info = describe(name)
            rows.append({
                "name": name,
                "series": len(store.series(name)),
                "kind": info.kind if info else None,
                "unit": info.unit if info else None,
                "description": info.description if info else None,
            })
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no metrics in the store yet (is an agent running? `qbconsole agent`)")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        unit = f"[{r['unit']}]" if r["unit"] else ""
        print(f"{r['name']:<{width}}  {r['series']:>4} series  {unit:<10} {r['description'] or ''}")
    return 0


def cmd_metrics_query(args: argparse.Namespace) -> int:
    from qbconsole.catalog import describe, format_value

    since_s = parse_since(args.since)
    store = open_store(args)
    end = int(time.time() * 1000)
    start = end - int(since_s * 1000)
    try:
        result = store.select(args.name, start, end)
    finally:
        store.close()
    if args.json:
        print(json.dumps([
            {"name": s.name, "labels": s.labels, "samples": [[ts, v] for ts, v in pts]}
            for s, pts in result
        ]))
        return 0
    if not result:
        print(f"no samples of {args.name} in the last {args.since}")
        return 1
    info = describe(args.name)
    unit = info.unit if info else ""
    for s, pts in result:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}}  ({len(pts)} samples)")
        for ts, v in pts:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / 1000))
            print(f"  {stamp}.{ts % 1000:03d}Z  {format_value(v, unit)}")
    return 0


# ---- parser -------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qbconsole",
        description="Launch console for the QuickBid platform: live metrics, alerts, "
        "approved optimizations, reports and A/B tests.",
    )
    p.add_argument("--version", action="version", version=f"qbconsole {__version__}")
    p.add_argument("--db", help=f"store file (default $QBCONSOLE_DB or ./{DEFAULT_DB})")
    p.add_argument("--rules", help="rules file (default $QBCONSOLE_RULES, ./rules.yaml, or the built-in defaults)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--operator", help="name recorded as who acknowledged or silenced (default: the OS/SSH user)")
    p.add_argument("--datasource", metavar="URL",
                   help="evaluate rules and charts on the Prometheus server at URL (overrides the rules "
                        "file's datasource; bearer token from its bearer_token_env, default "
                        "$QBCONSOLE_DATASOURCE_TOKEN)")
    p.set_defaults(func=cmd_run, theme=None)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser("run", help="open the console (the default)")
    run.add_argument("--theme", help="theme name (dark, light, high-contrast, ...)")
    run.add_argument("--operator", default=argparse.SUPPRESS, help="as the global --operator")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="run the QuickBid demo platform under load and watch it")
    demo.add_argument("--scenario", choices=("steady", "launch", "incident"), default="launch",
                      help="launch (default) ramps traffic until the workers saturate; incident adds "
                           "an error burst and a slow database; steady is calm")
    demo.add_argument("--headless", action="store_true", help="no console: run the agent and exit after --duration")
    demo.add_argument("--duration", type=float, default=600.0, metavar="SECONDS",
                      help="how long a headless demo runs (default 600)")
    demo.add_argument("--theme", help="theme name")
    demo.set_defaults(func=cmd_demo)

    agent = sub.add_parser("agent", help="run collectors headless (one per store holds the lease)")
    agent.add_argument("--heartbeat", type=float, default=2.0, metavar="SECONDS",
                       help="lease heartbeat (default 2 s; a dead holder is replaced within two)")
    agent.set_defaults(func=cmd_agent)

    serve = sub.add_parser("serve", help="the console in a web browser (for the war room's big screen)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any other needs $QBCONSOLE_SERVE_TOKEN)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--public-url", help="the URL browsers use, when a proxy is in front")
    serve.add_argument("--theme", help="theme name for every viewer")
    serve.set_defaults(func=cmd_serve)

    rules = sub.add_parser("rules", help="check rules files")
    rules_sub = rules.add_subparsers(title="rules commands", metavar="COMMAND", required=True)
    check = rules_sub.add_parser("check", help="validate a rules file; exit 0 if good, 1 if not")
    check.add_argument("file", nargs="?", help="file to check (default: the active rules file)")
    check.set_defaults(func=cmd_rules_check)

    from qbconsole.cli_alerts import register as register_alerts

    register_alerts(sub, rules_sub)

    from qbconsole.cli_report import register as register_report

    register_report(sub)

    from qbconsole.cli_ab import register as register_ab

    register_ab(sub)

    from qbconsole.cli_actions import register as register_actions

    register_actions(sub)

    metrics = sub.add_parser("metrics", help="read metrics from the store")
    metrics_sub = metrics.add_subparsers(title="metrics commands", metavar="COMMAND", required=True)
    mlist = metrics_sub.add_parser("list", help="metric names with series count, unit and description")
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(func=cmd_metrics_list)
    query = metrics_sub.add_parser("query", help="samples of one metric")
    query.add_argument("name")
    query.add_argument("--since", default="15m", help="how far back (default 15m)")
    query.add_argument("--json", action="store_true")
    query.set_defaults(func=cmd_metrics_query)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"qbconsole: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `qbconsole metrics query ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
