"""The load generator against a live demo platform, with beacons caught by a stdlib HTTP sink."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qbconsole.demo.beacons import BeaconSink, events_url
from qbconsole.demo.load import LoadConfig, check_loopback, run_load
from qbconsole.demo.scenarios import get_scenario
from qbconsole.demo.spawn import start_platform
from qbconsole.demo.visitor import Api, Behaviour, LoadStats, credential_stuffing, p95, scrape_burst

from helpers import serve_http, stop_http

TOKEN = "load-test-admin-token"
INGEST_TOKEN = "load-test-ingest-token"
TINY = ["--users", "60", "--auctions", "30", "--bids", "3000"]


class Sink:
    """A stdlib HTTP server on 127.0.0.1 that keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                      "type": self.headers.get("Content-Type"), "body": body})
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def beacon_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v1/events"]

    def events(self) -> list[dict]:
        return [json.loads(line) for r in self.beacon_requests() for line in r["body"].decode().splitlines()]

    def close(self) -> None:
        stop_http(self.server)


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def platform_factory(tmp_path):
    started = []

    def make(*args: str):
        env = {**os.environ, "QUICKBID_ADMIN_TOKEN": TOKEN}
        proc = start_platform(str(tmp_path / f"p{len(started)}.db"), [*TINY, *args], env=env,
                              stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", trust_env=False).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[s.name] = values.get(s.name, 0.0) + s.value  # summed over labels
    return values


def check_event(event: dict) -> str:
    """Assert the exact beacon schema; return a short kind for counting."""
    assert isinstance(event.pop("ts"), int)
    keys = set(event)
    if event["type"] == "security":
        assert keys == {"type", "kind", "source_ip"}, event
        assert event["kind"] in ("failed_login", "blocked_request", "rate_limited")
        assert event["source_ip"].startswith("127.0.0.")
        return f"security:{event['kind']}"
    assert event["type"] == "rum", event
    name = event["name"]
    if name == "page_view":
        assert keys in ({"type", "name", "page", "page_load_seconds"},
                        {"type", "name", "page", "page_load_seconds", "interaction_seconds"}), event
        assert isinstance(event["page"], str) and event["page_load_seconds"] > 0
        assert event.get("interaction_seconds", 0) >= 0
        return "page_view:interaction" if "interaction_seconds" in event else "page_view"
    if name == "session_end":
        assert keys == {"type", "name", "session_duration_seconds", "bounced"}, event
        assert isinstance(event["bounced"], bool) and event["session_duration_seconds"] >= 0
        return name
    if name == "survey":
        assert keys in ({"type", "name", "satisfaction"}, {"type", "name", "nps"}), event
        score = event.get("satisfaction", event.get("nps"))
        assert type(score) is int and (1 <= score <= 5 if "satisfaction" in event else 0 <= score <= 10)
        return "survey:satisfaction" if "satisfaction" in event else "survey:nps"
    if name == "task":
        assert keys == {"type", "name", "task", "completed"} and isinstance(event["completed"], bool), event
        return f"task:{event['task']}"
    raise AssertionError(f"unexpected event {event}")


async def test_incident_load_makes_requests_errors_and_beacons(platform_factory, sink):
    platform = platform_factory()
    before = scrape(platform.url)
    log = io.StringIO()
    config = LoadConfig(
        target=platform.url, scenario="incident", duration=5.0, seed=3, ingest=sink.url,
        ingest_token=INGEST_TOKEN, admin_token=TOKEN, users=6, time_scale=0.08, summary_interval=2.0,
        beacon_interval=0.5,
        behaviour=Behaviour(think_mean_s=0.1, render_median_s=0.2, survey=1.0, wrong_password=0.5, bid=0.6,
                            anonymous=0.1))
    report = await run_load(config, log=log)
    after = scrape(platform.url)

    assert report.requests > 40 and report.visits > 5 and report.visit_failures == 0
    assert report.fault_injected and int(report.by_status.get("500", 0)) > 0  # the incident's error burst
    assert report.p95_seconds is not None and report.p95_seconds > 0
    assert after["http_requests_total"] - before.get("http_requests_total", 0) >= report.requests
    assert after["quickbid_sessions_total"] > before["quickbid_sessions_total"]
    assert after["quickbid_bids_total"] > before["quickbid_bids_total"]
    lines = log.getvalue().splitlines()
    assert any(line.startswith("load incident t=2s") and "p95=" in line for line in lines)
    assert any("incident: POST /admin/fault" in line and "ok" in line for line in lines)

    beacon_requests = sink.beacon_requests()
    assert len(beacon_requests) >= 4  # batched about twice a second, not one request per event
    for request in sink.requests:  # beacons, and the bid-button experiment's assignments
        assert request["path"] in ("/v1/events", "/v1/assign") and request["auth"] == f"Bearer {INGEST_TOKEN}"
    for request in beacon_requests:
        assert request["type"] == "application/x-ndjson"
    events = sink.events()
    assert len(events) == report.events_sent == report.events_emitted > len(beacon_requests)
    kinds = {check_event(e) for e in events}
    assert {"page_view", "page_view:interaction", "session_end", "survey:satisfaction", "survey:nps",
            "task:place_bid", "security:failed_login"} <= kinds, kinds


async def test_bots_trip_the_rate_limiter_and_the_login_guard(platform_factory, sink):
    strict = platform_factory("--rate-limit", "2", "--rate-burst", "4")
    default = platform_factory()
    beacons = BeaconSink(sink.url, INGEST_TOKEN)
    scraped, stuffed = LoadStats(), LoadStats()

    def bot_client(url: str, ip: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, trust_env=False,
                                 transport=httpx.AsyncHTTPTransport(local_address=ip))

    async with bot_client(strict.url, "127.0.0.201") as one, bot_client(default.url, "127.0.0.202") as two:
        await scrape_burst(Api(one, "127.0.0.201", scraped, beacons, human=False), requests=20, concurrency=3)
        await credential_stuffing(Api(two, "127.0.0.202", stuffed, beacons, human=False), random.Random(1),
                                  attempts=22)
    await beacons.close()
    events = sink.events()
    limited = [e for e in events if e.get("kind") == "rate_limited"]
    assert len(limited) == scraped.by_status[429] >= 10 and {e["source_ip"] for e in limited} == {"127.0.0.201"}
    assert scrape(strict.url)["quickbid_rate_limited_total"] == scraped.by_status[429]
    failed = [e for e in events if e.get("kind") == "failed_login"]
    blocked = [e for e in events if e.get("kind") == "blocked_request"]
    assert len(failed) == stuffed.by_status[401] == 20  # the platform blocks the address after 20
    assert len(blocked) == stuffed.by_status[403] == 2
    assert {e["source_ip"] for e in failed + blocked} == {"127.0.0.202"}
    assert scrape(default.url)["quickbid_login_failures_total"] == 20


async def test_launch_saturates_the_two_workers(platform_factory):
    platform = platform_factory()
    config = LoadConfig(target=platform.url, scenario="launch", duration=4.0, time_scale=0.03, bots=False,
                        summary_interval=100.0)  # the 75 s ramp to 160 users in 2.25 s
    task = asyncio.create_task(run_load(config, log=io.StringIO()))
    await asyncio.sleep(3.6)
    live = await asyncio.to_thread(scrape, platform.url)
    report = await task
    assert live["quickbid_workers"] == 2 and live["quickbid_workers_busy"] <= 2
    assert live["quickbid_request_queue"] >= 10, live["quickbid_request_queue"]
    assert report.p95_seconds is not None and report.p95_seconds > 0.25, report


def test_cli_runs_a_scenario_and_prints_totals(platform_factory):
    platform = platform_factory()
    env = {k: v for k, v in os.environ.items() if k not in ("QUICKBID_ADMIN_TOKEN", "QBCONSOLE_INGEST_TOKEN")}
    done = subprocess.run([sys.executable, "-m", "qbconsole.demo.load", "--target", platform.url,
                           "--scenario", "steady", "--duration", "2", "--users", "3", "--no-bots"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    totals = json.loads(done.stdout.strip().splitlines()[-1])
    assert totals["scenario"] == "steady" and totals["requests"] > 0 and totals["errors"] == 0
    assert "load steady t=2s users=3" in done.stderr


@pytest.mark.parametrize("args, env_extra, needle", [
    (["--target", "http://192.0.2.1:80"], {}, "loopback only"),
    (["--target", "http://127.0.0.1:9", "--scenario", "incident"], {}, "admin token"),
    (["--target", "http://127.0.0.1:9", "--ingest", "http://127.0.0.1:9"], {}, "QBCONSOLE_INGEST_TOKEN"),
    (["--target", "http://127.0.0.1:9", "--ingest", "http://10.0.0.1:9"], {"QBCONSOLE_INGEST_TOKEN": "t"},
     "loopback only"),
])
def test_cli_refuses_what_it_must_not_do(args, env_extra, needle):
    env = {k: v for k, v in os.environ.items() if k not in ("QUICKBID_ADMIN_TOKEN", "QBCONSOLE_INGEST_TOKEN")}
    done = subprocess.run([sys.executable, "-m", "qbconsole.demo.load", "--duration", "1", *args],
                          capture_output=True, text=True, timeout=30, env={**env, **env_extra})
    assert done.returncode == 2 and needle in done.stderr, done.stderr


def test_scenarios_and_helpers():
    launch = get_scenario("launch")
    assert launch.users_at(0) == 10 and launch.users_at(5) == 10
    assert launch.users_at(42.5) == 85 and launch.users_at(80) == launch.users_at(600) == 160
    ramp = [launch.users_at(t) for t in range(0, 100, 5)]
    assert ramp == sorted(ramp)
    fast = get_scenario("incident", users=4, time_scale=0.1)
    assert fast.base_users == 4 and fast.fault_at_s == pytest.approx(3.0) and fast.fault["duration_s"] == 6
    assert get_scenario("steady").users_at(1000) == 12
    with pytest.raises(ValueError, match="unknown scenario"):
        get_scenario("stampede")
    assert events_url("http://127.0.0.1:5/") == "http://127.0.0.1:5/v1/events"
    assert events_url("http://127.0.0.1:5/v1/events") == "http://127.0.0.1:5/v1/events"
    check_loopback("http://localhost:1", "target")
    with pytest.raises(ValueError):
        check_loopback("https://127.0.0.1:1", "target")
    assert p95([]) is None and p95([float(i) for i in range(1, 101)]) == 95.0


async def test_beacon_buffer_is_bounded_and_failures_are_counted():
    beacons = BeaconSink("http://127.0.0.1:9", "t", max_buffer=5)  # nothing listens on port 9
    for i in range(12):
        beacons.emit({"type": "rum", "name": "task", "task": "x", "completed": True, "ts": i})
    assert beacons.dropped == 7
    await beacons.close()
    assert beacons.sent == 0 and beacons.dropped == 12 and beacons.failed_batches == 1
    assert beacons.last_error and "Connect" in beacons.last_error
