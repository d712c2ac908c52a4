"""The agent: holds the store's lease and, while it does, runs the collectors.

Exactly one agent per store does the work. Others wait in standby and take
over when the holder's lease expires (it renews every heartbeat; the lease
lives 1.5 heartbeats and a standby agent retries every half heartbeat, so a
killed holder is replaced within two heartbeats). The console embeds an agent
the same way, so ten consoles on one store still run one set of collectors.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qbconsole.config import Config, ConfigError, load_config
from qbconsole.model import Sample
from qbconsole.rules.ruleset import rule_groups
from qbconsole.store import SourceStatus, Store

if TYPE_CHECKING:
    from qbconsole.actions import ActionEngine
    from qbconsole.collect import Scheduler
    from qbconsole.exporter import MetricsServer
    from qbconsole.ingest import IngestServer
    from qbconsole.notify import Notifier
    from qbconsole.rules.engine import RulesEngine

# The agent's working parts (collectors, engine, notifier, actions, servers; httpx,
# prometheus_client, ...) are imported where the agent activates, in its own thread:
# a console constructs its Agent before the first frame and should not wait for them.

log = logging.getLogger("qbconsole.agent")

HOUSEKEEPING_S = 60.0
RULES_TICK_S = 1.0  # how often the engine checks which rule groups are due
NOTIFY_TICK_S = 1.0  # how often notifications are planned and the outbox delivered
ACTIONS_TICK_S = 1.0  # how often optimization rules propose, approved proposals run, runs are verified


class Ticker:
    """Calls ``fn()`` every ``period`` seconds in its own thread until stopped.

    An exception in ``fn`` is logged and the ticker carries on: one broken
    part of the agent's work never stops the others.
    """

    def __init__(self, name: str, period: float, fn) -> None:
        self.name, self.period, self.fn = name, period, fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"qbconsole-{name}", daemon=True)

    def start(self) -> "Ticker":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.fn()
            except Exception:
                log.exception("%s failed", self.name)
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))


def default_holder() -> str:
    """``user@host:pid``: who holds the lease, as shown in the console."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


class Agent:
    """Lease holder and owner of the agent's work, for one store.

    ``start()`` returns at once; the agent's control loop runs in its own
    thread: standby until the lease is free, then active until ``stop()`` or
    until the lease is lost.
    """

    def __init__(
        self,
        store: Store,
        rules_path: str | os.PathLike,
        *,
        config: Config | None = None,
        holder: str | None = None,
        heartbeat_s: float = 2.0,
        datasource_url: str | None = None,
    ) -> None:
        """``datasource_url`` (``--datasource URL``) makes a Prometheus server at that URL the
        datasource, whatever the rules file says."""
        self.store = store
        self.datasource_url = datasource_url
        self.rules_path = Path(rules_path)
        self.holder = holder or default_holder()
        self.heartbeat_s = heartbeat_s
        self.ttl_ms = int(heartbeat_s * 1500)
        self.config = config if config is not None else load_config(self.rules_path)
        self.last_config_error: ConfigError | None = None
        self._rules_mtime = self._mtime()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduler: Scheduler | None = None
        self._tickers: list[Ticker] = []
        self.engine: RulesEngine | None = None
        self.notifier: Notifier | None = None
        self.actions: ActionEngine | None = None
        self.ingest: IngestServer | None = None
        self.backend = None  # a PrometheusBackend, or None: the store is the datasource
        self._actions_backend = None
        self.metrics: MetricsServer | None = None
        self.am_sync = None
        self.rule_health: dict[str, tuple[float, int]] = {}  # group -> (seconds, failed rules)
        self._next_housekeeping = 0.0
        self.active = False

    # ---- lifecycle -----------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qbconsole-agent", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the work and release the lease (if held)."""
        self._stop.set()
        thread, self._thread = self._thread, None  # stop() may run twice at once (the hang-up watchdog)
        if thread is not None:
            thread.join(timeout)

    def request_reload(self) -> None:
        """Re-read the rules file at the next heartbeat (SIGHUP)."""
        self._reload.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    # ---- control loop ----------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.active:
                    if not self.store.lease_renew(self.holder, self.ttl_ms):
                        log.warning("lease lost to %s; going to standby", self._lease_holder())
                        self._deactivate()
                        continue
                    self._maybe_reload()
                    self._housekeeping()
                    self._stop.wait(self.heartbeat_s)
                else:
                    if self.store.lease_acquire(self.holder, self.ttl_ms):
                        self._activate()
                    else:
                        self._maybe_reload()
                        self._stop.wait(self.heartbeat_s / 2)
        except Exception:
            log.exception("agent control loop failed")
        finally:
            self._deactivate()
            try:
                self.store.lease_release(self.holder)
            except Exception:
                log.exception("could not release the lease")

    def _lease_holder(self) -> str:
        info = self.store.lease_info()
        return info.holder if info else "nobody"

    def _activate(self) -> None:
        from qbconsole.actions import ActionEngine
        from qbconsole.alertmanager import build_sync
        from qbconsole.collect import Scheduler
        from qbconsole.datasource import build_backend
        from qbconsole.rules.engine import RulesEngine

        sources = self._sources(self.config)
        log.info("lease acquired by %s; starting %d source(s)", self.holder, len(sources))
        self.backend = self._make_backend(self.config)
        self._scheduler = Scheduler(self.store.write, sources, on_status=self.store.set_source_status,
                                    record=self.store.write_run)
        self._scheduler.start()
        self.engine = RulesEngine(self.store, rule_groups(self.config), evaluator=self.backend,
                                  record=self.backend is None)
        self.notifier = self._make_notifier(self.config)
        self.actions = ActionEngine(self.store, self.config)
        self._actions_backend = build_backend(self.config.datasource, self.datasource_url)
        if self._actions_backend is not None:  # optimization conditions read Prometheus too (own client)
            self.actions.evaluator = self._actions_backend
        self.ingest = self._start_ingest(self.config)
        self._sync_experiments(self.config)
        self.metrics = self._start_metrics(self.config)
        self.am_sync = build_sync(self.store, self.config)
        self._tickers = [
            Ticker("rules", RULES_TICK_S, self._evaluate_rules).start(),
            Ticker("notify", NOTIFY_TICK_S, self._notify).start(),
            Ticker("actions", ACTIONS_TICK_S, self.actions.tick).start(),
            Ticker("alertmanager-sync", self.config.datasource.alertmanager_sync_interval,
                   self._sync_alertmanager).start(),
        ]
        self.active = True

    def _deactivate(self) -> None:
        for ticker in self._tickers:
            ticker.stop()
        self._tickers = []
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if self.am_sync is not None:
            self.am_sync.close()
            self.am_sync = None
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self.engine is not None:
            try:
                self.engine.close()  # unregisters its sample cache's watch on the store
            except Exception:
                log.exception("could not close the rules engine")
        self.engine = None
        self.actions = None
        for backend in (self.backend, self._actions_backend):
            if backend is not None:
                backend.close()
        self.backend = self._actions_backend = None
        if self.notifier is not None:
            self.notifier.close()
            self.notifier = None
        self.active = False

    # ---- datasource, /metrics and Alertmanager -------------------------------------------
    def _make_backend(self, config: Config):
        from qbconsole.datasource import build_backend

        backend = build_backend(config.datasource, self.datasource_url)
        if backend is not None:
            log.info("rules are evaluated by the Prometheus at %s; recording rules are left to it", backend.url)
        return backend

    def _sources(self, config: Config):
        """With a Prometheus datasource the collectors run only when ``local_sources`` says so."""
        from qbconsole.collect import build_sources

        remote = self.datasource_url or config.datasource.remote
        return build_sources(config.sources) if not remote or config.datasource.local_sources else []

    def _start_metrics(self, config: Config) -> MetricsServer | None:
        from qbconsole.exporter import MetricsServer, StoreCollector

        listen = config.settings.metrics_listen
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        token = os.environ.get(config.settings.metrics_token_env) or None
        try:
            server = MetricsServer(StoreCollector(self.store, rule_health=lambda: dict(self.rule_health)),
                                   host.strip("[]"), int(port), token=token).start()
        except (OSError, ValueError) as err:
            log.error("/metrics not served on %s: %s", listen, getattr(err, "strerror", None) or err)
            return None
        self.store.transaction(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('metrics_url', ?)", (server.url,)))
        log.info("qbconsole's own metrics on %s", server.url)
        return server

    def _sync_alertmanager(self) -> None:
        am_sync = self.am_sync
        if am_sync is not None:
            am_sync.sync()

    # ---- experiments ------------------------------------------------------------------
    def _sync_experiments(self, config: Config) -> None:
        """Experiments defined in rules.yaml are created/started in the store (refusals are logged)."""
        from qbconsole.experiments import sync_from_config

        try:
            sync_from_config(self.store, config.experiments)  # logs each result itself
        except Exception:
            log.exception("experiments from %s not synced", self.rules_path)

    # ---- ingest ---------------------------------------------------------------------
    def _start_ingest(self, config: Config) -> IngestServer | None:
        from qbconsole.ingest import IngestServer

        listen = config.settings.ingest_listen
        if not listen:
            return None
        token = os.environ.get(config.settings.ingest_token_env)
        if not token:
            log.error("ingest endpoint not started: %s is not set (clients authenticate with it)",
                      config.settings.ingest_token_env)
            return None
        host, _, port = listen.rpartition(":")
        try:
            server = IngestServer(self.store, host=host.strip("[]"), port=int(port), token=token,
                                  rate=config.settings.ingest_rate)
            server.start()
        except OSError as err:
            log.error("ingest endpoint not started on %s: %s", listen, err.strerror or err)
            return None
        self.store.transaction(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('ingest_url', ?)", (server.url,)))
        log.info("ingest endpoint on %s", server.url)
        return server

    # ---- notifications --------------------------------------------------------------
    def _make_notifier(self, config: Config) -> Notifier | None:
        from qbconsole.datasource import generator_url
        from qbconsole.notify import Notifier

        try:
            exprs = {r.name: r.expr for g in rule_groups(config) for r in g.alerting}
            return Notifier(self.store, config.channels or None, config.routes or None,
                            inhibit_cfg=config.inhibit_rules or None,
                            generator_url=generator_url(self.backend, exprs))
        except ValueError as err:  # config validation reports these first; never fatal here
            log.error("notifications disabled: %s", err)
            return None

    def _notify(self) -> None:
        notifier = self.notifier
        if notifier is not None:
            notifier.plan()
            notifier.deliver()

    # ---- rules ------------------------------------------------------------------
    def _evaluate_rules(self) -> None:
        engine = self.engine
        if engine is None:
            return
        now_ms = int(time.time() * 1000)
        results = engine.tick(now_ms)
        for r in results:
            self.rule_health[r.group] = (r.duration_s, len(r.errors))
        if results and self.backend is not None:  # the local store holds only qbconsole's state
            error = self.backend.client.last_error
            self.store.set_source_status(SourceStatus("datasource", error is None, now_ms,
                                                      sum(r.duration_s for r in results), error))
        elif results:
            self.store.write([
                Sample("qbconsole_rule_evaluation_duration_seconds", {"group": r.group}, r.t, r.duration_s)
                for r in results
            ] + [
                Sample("qbconsole_rule_evaluation_failures", {"group": r.group}, r.t, float(len(r.errors)))
                for r in results
            ])

    # ---- config reload ----------------------------------------------------
    def _mtime(self) -> float | None:
        try:
            return self.rules_path.stat().st_mtime
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        mtime = self._mtime()
        if not self._reload.is_set() and mtime == self._rules_mtime:
            return
        self._reload.clear()
        self._rules_mtime = mtime
        try:
            config = load_config(self.rules_path)
        except ConfigError as err:
            self.last_config_error = err
            log.error("rules file not reloaded, keeping the last good one:\n%s", err)
            return
        except OSError as err:
            self.last_config_error = None
            log.error("rules file not reloaded (%s), keeping the last good one", err.strerror)
            return
        self.last_config_error = None
        if config.datasource != self.config.datasource or config.settings.metrics_listen != self.config.settings.metrics_listen:
            log.warning("the datasource or settings.metrics_listen changed; that takes effect when the agent restarts")
        self.config = config
        log.info("rules reloaded from %s", self.rules_path)
        if self._scheduler is not None:
            self._scheduler.replace_sources(self._sources(config))
        if self.engine is not None:
            self.engine.set_groups(rule_groups(config))
        if self.actions is not None:
            self.actions.set_config(config)
        if self.active:
            self._sync_experiments(config)
        if self.active:
            from qbconsole.alertmanager import build_sync

            old_sync, self.am_sync = self.am_sync, build_sync(self.store, config)
            if old_sync is not None:
                old_sync.close()
        if self.notifier is not None:
            old, self.notifier = self.notifier, self._make_notifier(config)
            old.close()

    # ---- housekeeping -------------------------------------------------------
    def _housekeeping(self) -> None:
        now = time.time()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_S
        now_ms = int(now * 1000)
        try:
            self.store.rollup(now_ms)
            self.store.purge(now_ms)
        except Exception:
            log.exception("rollup/purge failed")
