"""Load generator for the QuickBid platform: simulated users, bots and scenario events.

    python -m qbconsole.demo.load --target URL [--ingest URL --ingest-token-env QBCONSOLE_INGEST_TOKEN] \
        --scenario steady|launch|incident [--duration S] [--seed N] [--admin-token-env QUICKBID_ADMIN_TOKEN]

Loopback targets only. Every 10 s one summary line goes to stderr; at the end
the totals go to stdout as one JSON line. ``run_load(LoadConfig(...))`` runs the
same thing inside an existing event loop (tests use it for a few seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import os
import random
import signal
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from qbconsole.demo.beacons import BeaconSink
from qbconsole.demo.experiment import BidButtonTest
from qbconsole.demo.scenarios import SCENARIOS, Scenario, get_scenario
from qbconsole.demo.visitor import Api, Behaviour, LoadStats, Shared, Visit, credential_stuffing, p95, scrape_burst

MAX_DURATION_S = 7 * 86400


@dataclass
class LoadConfig:
    target: str
    scenario: str = "steady"
    duration: float = 3600.0
    seed: int = 1
    ingest: str | None = None
    ingest_token: str | None = None
    admin_token: str | None = None
    users: int | None = None  # base crowd instead of the scenario's
    time_scale: float = 1.0  # shrinks scenario times (ramp, fault, bots)
    behaviour: Behaviour = field(default_factory=Behaviour)
    bots: bool = True
    summary_interval: float = 10.0
    beacon_interval: float = 1.0
    client_ips: int = 16


@dataclass
class LoadReport:
    scenario: str
    seconds: float
    requests: int
    errors: int
    by_status: dict[str, int]
    p95_seconds: float | None
    visits: int
    visit_failures: int
    events_emitted: int
    events_sent: int
    events_dropped: int
    fault_injected: bool


def check_loopback(url: str, what: str) -> None:
    """Refuse anything but http:// on a loopback address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http":
        raise ValueError(f"{what} must be an http:// URL, got {url!r}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{what} must be on 127.0.0.1 (loopback only), got host {host!r}")


def client_addresses(count: int, first: int = 10) -> list[str | None]:
    """Distinct loopback source addresses for simulated clients; [None] where binding fails."""
    found: list[str | None] = []
    for i in range(max(1, count)):
        ip = f"127.0.0.{first + i}"
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((ip, 0))
        except OSError:
            return [None]
        found.append(ip)
    return found


def _client(target: str, ip: str | None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(
        local_address=ip, retries=0, limits=httpx.Limits(max_connections=200, max_keepalive_connections=64))
    return httpx.AsyncClient(base_url=target, timeout=httpx.Timeout(15.0), trust_env=False, transport=transport)


class LoadRun:
    """The running crowd: spawns and retires visitors to follow the scenario, runs bots and events."""

    def __init__(self, config: LoadConfig, scenario: Scenario, log: TextIO) -> None:
        self.config, self.scenario, self.log = config, scenario, log
        self.stats = LoadStats()
        self.sink = BeaconSink(config.ingest, config.ingest_token, interval=config.beacon_interval)
        self.experiment = BidButtonTest(config.ingest, config.ingest_token)
        self.shared = Shared(run_id=uuid.UUID(int=random.Random(config.seed).getrandbits(128)).hex[:8]
                             + f"-{int(time.time()) % 100000}")
        self.clients: list[httpx.AsyncClient] = []
        self.apis: list[Api] = []
        self.crowd: list[tuple[asyncio.Task[None], asyncio.Event]] = []
        self._spawned = 0
        self.visits = 0
        self.visit_failures = 0
        self.fault_injected = False

    def _api(self, ip: str | None, human: bool = True) -> Api:
        client = _client(self.config.target, ip)
        self.clients.append(client)
        return Api(client, ip or "127.0.0.1", self.stats, self.sink, human=human)

    async def _visitor(self, index: int, retire: asyncio.Event) -> None:
        rng = random.Random(f"{self.config.seed}:visitor:{index}")
        api = self.apis[index % len(self.apis)]
        think = self.config.behaviour.think_mean_s
        await asyncio.sleep(rng.uniform(0, think))
        while not retire.is_set():
            try:
                await Visit(api, rng, self.shared, self.config.behaviour, self.experiment).run()
                self.visits += 1
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                self.visit_failures += 1  # an answer of an unexpected shape: note it, keep going
                if self.visit_failures <= 3:
                    print(f"load: visit failed: {type(exc).__name__}: {exc}", file=self.log, flush=True)
            await asyncio.sleep(min(10.0, rng.expovariate(1.0) * think * 2))

    def _follow_scenario(self, elapsed: float) -> int:
        self.crowd = [(t, e) for t, e in self.crowd if not t.done()]
        active = [(t, e) for t, e in self.crowd if not e.is_set()]
        want = self.scenario.users_at(elapsed)
        for _ in range(len(active), want):
            retire = asyncio.Event()
            self.crowd.append((asyncio.create_task(self._visitor(self._spawned, retire)), retire))
            self._spawned += 1
        for _, retire in active[want:]:
            retire.set()  # leaves after the visit in progress
        return want

    async def _bots(self) -> None:
        rng = random.Random(f"{self.config.seed}:bots")
        ips = client_addresses(2, first=201)
        scraper = self._api(ips[0], human=False)
        stuffer = self._api(ips[-1] if ips[0] else None, human=False)
        interval = self.scenario.bot_interval_s
        await asyncio.sleep(interval / 2)
        for turn in itertools.count():
            if turn % 2 == 0:
                await credential_stuffing(stuffer, rng)
            else:
                await scrape_burst(scraper)
            await asyncio.sleep(interval)

    async def _incident(self) -> None:
        assert self.scenario.fault_at_s is not None
        await asyncio.sleep(self.scenario.fault_at_s)
        async with _client(self.config.target, None) as admin:
            try:
                reply = await admin.post("/admin/fault", json=dict(self.scenario.fault),
                                         headers={"Authorization": f"Bearer {self.config.admin_token}"})
                self.fault_injected = reply.status_code == 200
                text = reply.text[:200]
            except httpx.HTTPError as exc:
                text = f"{type(exc).__name__}: {exc}"
        print(f"load: incident: POST /admin/fault {dict(self.scenario.fault)} -> "
              f"{'ok' if self.fault_injected else 'FAILED ' + text}", file=self.log, flush=True)

    def _summary(self, elapsed: float, users: int, last: dict[str, int]) -> None:
        window = self.stats.take_window()
        q = p95(window)
        print(f"load {self.scenario.name} t={elapsed:.0f}s users={users} "
              f"requests={self.stats.requests} (+{self.stats.requests - last['requests']}) "
              f"errors={self.stats.errors} (+{self.stats.errors - last['errors']}) "
              f"p95={'-' if q is None else f'{q:.3f}s'} beacons sent={self.sink.sent} dropped={self.sink.dropped}",
              file=self.log, flush=True)
        last.update(requests=self.stats.requests, errors=self.stats.errors)

    async def run(self, stop: asyncio.Event) -> LoadReport:
        self.apis = [self._api(ip) for ip in client_addresses(self.config.client_ips)]
        flusher_stop = asyncio.Event()
        extras = [asyncio.create_task(self.sink.run(flusher_stop))]
        if self.config.bots:
            extras.append(asyncio.create_task(self._bots()))
        if self.scenario.fault_at_s is not None:
            extras.append(asyncio.create_task(self._incident()))
        started = time.monotonic()
        next_summary = self.config.summary_interval
        last = {"requests": 0, "errors": 0}
        users = 0
        try:
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if elapsed >= self.config.duration:
                    break
                users = self._follow_scenario(elapsed)
                if elapsed >= next_summary:
                    self._summary(elapsed, users, last)
                    next_summary += self.config.summary_interval
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(0.5, self.config.duration - elapsed))
                except asyncio.TimeoutError:
                    pass
        finally:
            tasks = [t for t, _ in self.crowd] + extras[1:]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            flusher_stop.set()
            await extras[0]
            await self.sink.close()
            await self.experiment.close()
            for client in self.clients:
                await client.aclose()
        elapsed = time.monotonic() - started
        self._summary(elapsed, users, last)
        return LoadReport(
            scenario=self.scenario.name, seconds=round(elapsed, 3), requests=self.stats.requests,
            errors=self.stats.errors, by_status={str(k): v for k, v in sorted(self.stats.by_status.items())},
            p95_seconds=self.stats.p95_overall(), visits=self.visits, visit_failures=self.visit_failures,
            events_emitted=self.sink.emitted, events_sent=self.sink.sent, events_dropped=self.sink.dropped,
            fault_injected=self.fault_injected)


async def run_load(config: LoadConfig, stop: asyncio.Event | None = None, log: TextIO | None = None) -> LoadReport:
    """Run the scenario until ``config.duration`` elapses or ``stop`` is set; return the totals."""
    check_loopback(config.target, "target")
    if config.ingest:
        check_loopback(config.ingest, "ingest URL")
    if not 0 < config.duration <= MAX_DURATION_S:
        raise ValueError(f"duration must be between 0 and {MAX_DURATION_S} seconds")
    scenario = get_scenario(config.scenario, config.users, config.time_scale)
    if scenario.fault_at_s is not None and not config.admin_token:
        raise ValueError(f"scenario {scenario.name!r} needs the platform's admin token")
    return await LoadRun(config, scenario, log or sys.stderr).run(stop or asyncio.Event())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qbconsole.demo.load", description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="the platform's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--ingest", help="qbconsole ingest base URL; beacons go to its /v1/events")
    p.add_argument("--ingest-token-env", default="QBCONSOLE_INGEST_TOKEN",
                   help="environment variable holding the ingest token")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady")
    p.add_argument("--duration", type=float, default=3600.0, help="seconds to run (default 3600)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--admin-token-env", default="QUICKBID_ADMIN_TOKEN",
                   help="environment variable holding the platform admin token (incident scenario)")
    p.add_argument("--users", type=int, help="base number of simulated users (scenario default otherwise)")
    p.add_argument("--no-bots", action="store_true", help="no scraper or credential-stuffing bots")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = os.environ.get(args.ingest_token_env) or None
    if args.ingest and not token:
        print(f"load: --ingest needs a token in ${args.ingest_token_env}", file=sys.stderr)
        return 2
    config = LoadConfig(target=args.target.rstrip("/"), scenario=args.scenario, duration=args.duration,
                        seed=args.seed, ingest=args.ingest, ingest_token=token,
                        admin_token=os.environ.get(args.admin_token_env) or None, users=args.users,
                        bots=not args.no_bots)

    async def runner() -> LoadReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_load(config, stop)

    try:
        report = asyncio.run(runner())
    except ValueError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(report)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
