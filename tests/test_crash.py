"""kill -9 of the agent at random points, during ingest and during notification delivery.

One store, a rules file with the ingest endpoint on a fixed loopback port, an
alert rule that fires at once for every new ``crash_alert{probe}`` series, and a
webhook channel pointing at a local HTTP sink that records each request's
``Idempotency-Key`` (and holds it for a random few ms, so kills land mid-send).
A client thread posts batches the whole time and records which got 202.

There is always a lease holder and two warm standby agents. Each run kills the
holder with SIGKILL, either after a random delay or just after the sink received
a notification (seeded RNG), then checks that

- every batch answered 202 is in the store, complete (no batch is half there);
- a standby takes the lease over (a fresh standby is started for the next run).

At the end the last holder drains the outbox, and across all runs:

- every outbox row was delivered, and the sink saw every dedup key at least once;
- counted by ``Idempotency-Key`` (what a receiver dedups on) each notification
  arrived exactly once. A real duplicate delivery can happen only when the
  agent dies between the sink's 200 and the outbox commit; it is measured
  (``raw duplicates``), each one carries the same key and the same body as the
  first delivery, so a receiver drops it, and there is at most one per kill;
- every acknowledged probe reached the sink inside some notification.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from qbconsole.store import Store

from helpers import ROOT, free_port, holder_pid, kill_if_running, qbconsole_process, serve_http, stop_http, wait_for

pytestmark = pytest.mark.slow

SEED = 20240909
RUNS = 22
HEARTBEAT = 0.5
TOKEN = "crash-test-ingest-token"
BATCH = 5  # events per ingest batch, each with its own explicit ts
STEP = 0.02  # seconds between polls

RULES = """
settings:
  evaluation_interval: 500ms
  ingest_listen: 127.0.0.1:{ingest_port}
  ingest_rate: 100000
sources: []
alert_rules:
  - alert: CrashProbe
    expr: crash_alert > 0
    for: 0s
    severity: warning
channels:
  - {{name: hook, kind: webhook, url: "http://127.0.0.1:{sink_port}/hook", timeout: 3s}}
routes:
  - {{name: all, match: [], channels: [hook], group_by: [probe], group_wait: 0s, group_interval: 1s,
     repeat_interval: 1h}}
inhibit_rules: []
"""


class Sink:
    """A webhook receiver on 127.0.0.1: records (key, body) of every POST at arrival, then
    holds the answer for a random 0-150 ms and answers 200."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.received: list[tuple[str, bytes]] = []
        self.arrival = threading.Condition(self.lock)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    sink.received.append((self.headers.get("Idempotency-Key", ""), body))
                    delay = sink.rng.uniform(0, 0.15)
                    sink.arrival.notify_all()
                time.sleep(delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the agent was killed while we held the answer
                    pass

            def log_message(self, *args):
                pass

        self.server = serve_http(Handler)
        self.port = self.server.server_address[1]

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def wait_arrival(self, after: int, timeout: float) -> bool:
        with self.lock:
            return self.arrival.wait_for(lambda: len(self.received) > after, timeout)

    def stop(self) -> None:
        stop_http(self.server)


class Client(threading.Thread):
    """Posts batches of ``crash_ingest`` samples (explicit, unique ts) to the ingest endpoint,
    with a new ``crash_alert{probe}`` series every few batches; records what got 202."""

    def __init__(self, port: int, t0: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/v1/events"
        self.t0 = t0
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[int] = []
        self.acked_probes: list[str] = []
        self.refused: list[int] = []  # answered, but not 202: must never happen

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        k = probe = 0
        next_probe = 0.0
        with httpx.Client(timeout=3) as http:
            while not self.stop_event.is_set():
                events = [{"type": "metric", "name": "crash_ingest", "labels": {"client": "c1"},
                           "value": float(k), "ts": self.t0 + k * BATCH + i} for i in range(BATCH)]
                probe_name = None
                if time.monotonic() >= next_probe:
                    probe_name = f"p{probe}"
                    events.append({"type": "metric", "name": "crash_alert", "labels": {"probe": probe_name},
                                   "value": 1})
                try:
                    status = http.post(self.url, content=json.dumps(events), headers=headers).status_code
                except httpx.HTTPError:  # no agent listening right now, or it died mid-request
                    status = None
                    time.sleep(0.02)
                with self.lock:
                    if status == 202:
                        self.acked.append(k)
                        if probe_name:
                            self.acked_probes.append(probe_name)
                    elif status is not None:
                        self.refused.append(status)
                if status == 202 and probe_name:
                    probe += 1
                    next_probe = time.monotonic() + 0.3
                k += 1
                time.sleep(0.01)

    def snapshot(self) -> tuple[list[int], list[str], list[int]]:
        with self.lock:
            return list(self.acked), list(self.acked_probes), list(self.refused)


class Agents:
    """``qbconsole agent`` processes on one store, each logging to its own file."""

    def __init__(self, tmp: Path, db: Path, rules: Path) -> None:
        self.tmp, self.db, self.rules = tmp, db, rules
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self.env = {**os.environ, "QBCONSOLE_INGEST_TOKEN": TOKEN}

    def spawn(self) -> subprocess.Popen:
        log = self.tmp / f"agent-{len(self.procs)}.log"
        proc = qbconsole_process(["--db", str(self.db), "--rules", str(self.rules), "agent", "--heartbeat",
                                  str(HEARTBEAT)], log=log, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL)
        self.procs.append((proc, log))
        return proc

    def ready(self, proc: subprocess.Popen) -> bool:
        """Started, signal handlers installed, waiting for the lease (or holding it)."""
        return "waiting for the lease" in self.log_of(proc)

    def log_of(self, proc: subprocess.Popen) -> str:
        path = next(p for q, p in self.procs if q is proc)
        return path.read_text(errors="replace")

    def close(self) -> None:
        for proc, _ in self.procs:
            kill_if_running(proc, 5)


def stored_batches(store: Store, t0: int) -> dict[int, int]:
    """batch number -> how many of its samples are in the store."""
    counts: dict[int, int] = {}
    for _, points in store.select("crash_ingest", 0, 2 ** 62, {"client": "c1"}):
        for ts, _ in points:
            k = (ts - t0) // BATCH
            counts[k] = counts.get(k, 0) + 1
    return counts


def test_kill_9_at_random_points_loses_no_committed_sample_and_no_notification(tmp_path):
    rng = random.Random(SEED)
    sink = Sink(random.Random(SEED + 1))
    ingest_port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(ingest_port=ingest_port, sink_port=sink.port))
    db = tmp_path / "qb.db"
    agents = Agents(tmp_path, db, rules)
    t0 = int(time.time() * 1000) - 60_000
    client = Client(ingest_port, t0)
    store: Store | None = None
    kills, takeovers, modes = 0, [], []
    try:
        active = agents.spawn()
        assert wait_for(db.exists, 15, STEP)
        store = Store.open(db)
        assert wait_for(lambda: holder_pid(store) == active.pid, 20, STEP), agents.log_of(active)
        client.start()
        standbys = [agents.spawn(), agents.spawn()]
        started = time.monotonic()
        for run in range(RUNS):
            assert wait_for(lambda: agents.ready(standbys[0]), 20, STEP), agents.log_of(standbys[0])
            if rng.random() < 0.5:  # during delivery: just after the sink took a notification
                modes.append("delivery")
                seen = sink.count()
                sink.wait_arrival(seen, 4.0)
                time.sleep(rng.uniform(0, 0.12))
            else:  # anywhere: in ingest batches, rule ticks, planning, or the activation itself
                modes.append("timer")
                time.sleep(rng.uniform(0.02, 1.2))
            os.kill(active.pid, signal.SIGKILL)
            active.wait(5)
            killed_at = time.monotonic()
            kills += 1

            acked, _, refused = client.snapshot()
            stored = stored_batches(store, t0)
            missing = [k for k in acked if stored.get(k, 0) != BATCH]
            assert missing == [], f"run {run}: batches answered 202 but not (fully) stored: {missing[:10]}"
            partial = {k: n for k, n in stored.items() if n != BATCH}
            assert partial == {}, f"run {run}: half-stored batches {partial}"
            assert refused == [], f"run {run}: ingest answered {refused[:5]} instead of 202"

            new_holder = wait_for(lambda: holder_pid(store) in {p.pid for p in standbys}, 10, 0.01)
            assert new_holder, f"run {run}: no standby took over\n" + "\n".join(agents.log_of(p) for p in standbys)
            takeovers.append(time.monotonic() - killed_at)
            active = next(p for p in standbys if p.pid == holder_pid(store))
            standbys = [p for p in standbys if p is not active] + [agents.spawn()]
        print(f"\n{RUNS} runs in {time.monotonic() - started:.1f}s", end="")

        client.stop_event.set()
        client.join(10)
        acked, acked_probes, refused = client.snapshot()
        assert refused == []
        assert len(acked) > RUNS * 5, "too few batches were acknowledged to say anything"

        def drained() -> bool:
            conn = store.read()
            pending = conn.execute("SELECT count(*) FROM notification_outbox WHERE state != 'delivered'"
                                   ).fetchone()[0]
            notified = {json.loads(p)["alerts"][0]["labels"]["probe"]
                        for (p,) in conn.execute("SELECT payload FROM notification_outbox")}
            return pending == 0 and set(acked_probes) <= notified

        assert wait_for(drained, 30, 0.1), "the outbox did not drain / not every probe was notified"
        time.sleep(0.3)  # let a delivery in flight land at the sink

        rows = store.read().execute("SELECT dedup_key, state, payload FROM notification_outbox").fetchall()
        outbox_keys = {key for key, _, _ in rows}
        assert all(state == "delivered" for _, state, _ in rows)
        with sink.lock:
            received = list(sink.received)
        by_key: dict[str, list[bytes]] = {}
        for key, body in received:
            by_key.setdefault(key, []).append(body)
        assert "" not in by_key, "a notification arrived without an Idempotency-Key"
        assert set(by_key) == outbox_keys, "the sink and the outbox disagree about what was sent"
        duplicates = {key: bodies for key, bodies in by_key.items() if len(bodies) > 1}
        raw_duplicates = sum(len(b) - 1 for b in duplicates.values())
        for key, bodies in duplicates.items():  # a repeat is the same notification, same key: dropped
            assert all(json.loads(b) == json.loads(bodies[0]) for b in bodies), key
        assert raw_duplicates <= kills
        probes_seen = {a["labels"]["probe"] for bodies in by_key.values() for a in json.loads(bodies[0])["alerts"]}
        assert set(acked_probes) <= probes_seen
        # one key per notification: two different notifications never share a key
        assert len({json.dumps(json.loads(b[0])["alerts"], sort_keys=True) for b in by_key.values()}) == len(by_key)

        assert max(takeovers) <= 2 * HEARTBEAT + 2.0, takeovers
        print(f"\ncrash: {kills} kills ({modes.count('delivery')} during delivery), {len(acked)} batches "
              f"acknowledged, {len(outbox_keys)} notifications, {len(received)} deliveries, "
              f"{raw_duplicates} raw duplicate(s) (same key), takeover max {max(takeovers):.2f}s")

        for proc in standbys:
            assert wait_for(lambda: agents.ready(proc), 20, STEP)
        for proc in (active, *standbys):
            proc.send_signal(signal.SIGTERM)
        for proc in (active, *standbys):
            assert proc.wait(15) == 0
        logs = "\n".join(agents.log_of(p) for p, _ in agents.procs)
        assert "Traceback" not in logs
    finally:
        client.stop_event.set()
        agents.close()
        sink.stop()
        if store is not None:
            store.close()
