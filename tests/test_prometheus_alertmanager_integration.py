"""Integration against the real servers: Debian's ``prometheus`` and ``prometheus-alertmanager``.

One stack per module, every server on a free loopback port with its own
temporary directory: the demo platform; a local agent (store backend)
scraping it; Prometheus scraping it and a second agent's ``/metrics``; that
second agent evaluating the same rules on Prometheus and forwarding to
Alertmanager (started with ``--cluster.listen-address=``, so no cluster port).
The fixture stops every process it started, by PID. Without the binaries the
tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from helpers import free_port
from prometheus_servers import ALERTMANAGER, Server, require_binaries, start_prometheus
from qbconsole.agent import Agent
from qbconsole.alertmanager.api import parse_alerts, parse_silences
from qbconsole.datasource import range_query
from qbconsole.datasource.prometheus import PrometheusBackend
from qbconsole.demo.spawn import start_platform
from qbconsole.store import Store
from qbconsole.store.alerts import acknowledge, current_alerts, events

ADMIN_TOKEN = "integration-admin-token"

# The rules both agents run, word for word.
RULES = """\
alert_rules:
  - alert: WorkersLow
    expr: sum(quickbid_workers) < 3
    for: 0s
    labels: {severity: warning, team: launch}
    annotations: {summary: "only {{ $value }} workers"}
  - alert: AuctionsServed
    expr: sum by (route, method) (http_requests_total{route="/api/auctions"}) > 0
    for: 0s
    labels: {severity: info}
"""


def wait_for(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        time.sleep(step)
    return predicate()


def start_alertmanager(tmp: Path) -> Server:
    config = tmp / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\n"
                      "  repeat_interval: 1h\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    (tmp / "am-data").mkdir()
    return Server("alertmanager", [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp / 'am-data'}",
                                   f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                  f"http://127.0.0.1:{port}", tmp / "alertmanager.log")


class Stack:
    """Everything the scenario runs on; see the module docstring."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.stoppers: list = []

    def start(self) -> "Stack":
        tmp = self.tmp
        env = {**os.environ, "QUICKBID_ADMIN_TOKEN": ADMIN_TOKEN}
        self.platform = start_platform(str(tmp / "platform.db"), ["--users", "60", "--auctions", "30",
                                                                   "--bids", "3000", "--workers", "4"],
                                       env=env, stderr=open(tmp / "platform.log", "wb"))
        self.stoppers.append(self.platform.stop)
        self.am = start_alertmanager(tmp)
        self.stoppers.append(self.am.stop)
        metrics_port = free_port()
        target = self.platform.url.split("//", 1)[1].rstrip("/")
        self.prom = start_prometheus(tmp, {"quickbid": target, "qbconsole": f"127.0.0.1:{metrics_port}"},
                                     data="prom-data")
        self.stoppers.append(self.prom.stop)

        self.local_rules = tmp / "local.yaml"
        self.local_rules.write_text(
            "settings: {evaluation_interval: 1s}\nsources:\n"
            f"  - {{name: quickbid, kind: prometheus, url: '{self.platform.url.rstrip('/')}/metrics', interval: 1s}}\n"
            + RULES)
        self.prom_rules = tmp / "prometheus.yaml"
        self.prom_rules.write_text(
            f"settings: {{evaluation_interval: 1s, metrics_listen: '127.0.0.1:{metrics_port}'}}\n"
            f"datasource: {{kind: prometheus, url: '{self.prom.url}', alertmanager_sync_interval: 1s}}\n"
            f"channels: [{{name: am, kind: alertmanager, url: '{self.am.url}', resend_interval: 2s}}]\n"
            "routes: [{name: all, channels: [am], group_wait: 0s}]\n" + RULES)
        self.local_store = Store.open(tmp / "local.db")
        self.stoppers.append(self.local_store.close)
        self.prom_store = Store.open(tmp / "prom.db")
        self.stoppers.append(self.prom_store.close)
        self.local_agent = Agent(self.local_store, self.local_rules, holder="local-agent", heartbeat_s=0.5)
        self.prom_agent = Agent(self.prom_store, self.prom_rules, holder="prometheus-agent", heartbeat_s=0.5)
        for agent in (self.local_agent, self.prom_agent):
            agent.start()
            self.stoppers.append(agent.stop)
        return self

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # keep stopping the others
                pass

    # ---- helpers -------------------------------------------------------------------------
    def prom_query(self, expr: str) -> list[dict]:
        body = httpx.get(f"{self.prom.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        return body["data"]["result"]

    def am_alerts(self):
        return parse_alerts(httpx.get(f"{self.am.url}/api/v2/alerts", timeout=5).json())

    def set_workers(self, n: int) -> None:
        r = httpx.post(f"{self.platform.url.rstrip('/')}/admin/workers", json={"workers": n},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5)
        assert r.status_code == 200, r.text


def firing(store: Store, source: str = "local") -> set[tuple[str, frozenset]]:
    now = int(time.time() * 1000)
    return {(a.rule, frozenset(a.labels.items())) for a in current_alerts(store.read(), now)
            if a.state == "firing" and a.source == source}


def am_label_sets(stack: Stack) -> set[frozenset]:
    now = int(time.time() * 1000)
    return {frozenset(a.labels.items()) for a in stack.am_alerts() if a.ends_at is None or a.ends_at > now}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_binaries("prometheus", "prometheus-alertmanager")
    stack = Stack(tmp_path_factory.mktemp("prometheus-alertmanager"))
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    yield stack
    stack.stop()


EXPECTED = {
    ("WorkersLow", frozenset({"alertname": "WorkersLow", "severity": "warning", "team": "launch"}.items())),
    ("AuctionsServed", frozenset({"alertname": "AuctionsServed", "severity": "info", "route": "/api/auctions",
                                  "method": "GET"}.items())),
}


def test_prometheus_scrapes_qbconsoles_own_metrics(stack):
    assert wait_for(lambda: [r for r in stack.prom_query('up{job="qbconsole"} == 1')], 20), \
        stack.prom_query('up{job="qbconsole"}')
    [lease] = wait_for(lambda: stack.prom_query('qbconsole_lease_info{job="qbconsole"}'), 10)
    assert lease["metric"]["holder"] == "prometheus-agent"
    assert wait_for(lambda: stack.prom_query('qbconsole_source_up{job="qbconsole",source="datasource"} == 1'), 15)


def test_prometheus_backend_fires_the_same_alerts_with_the_same_labels_as_the_local_store(stack):
    backend = PrometheusBackend(stack.prom.url)
    try:
        def both_see(n):
            local = [p.value for p in stack.local_store.latest("quickbid_workers")]
            backend.new_tick()
            remote = [s.value for s in backend.evaluate("sum(quickbid_workers)", int(time.time() * 1000))]
            return local == [n] and remote == [n]

        assert wait_for(lambda: both_see(4.0), 20), "both backends see the platform's 4 workers"
        assert firing(stack.local_store) == firing(stack.prom_store) == set()
        for _ in range(5):
            assert httpx.get(f"{stack.platform.url.rstrip('/')}/api/auctions", timeout=5).status_code == 200
        stack.set_workers(2)
        assert wait_for(lambda: firing(stack.local_store) == EXPECTED, 20), firing(stack.local_store)
        assert wait_for(lambda: firing(stack.prom_store) == EXPECTED, 20), firing(stack.prom_store)

        # Alertmanager got the Prometheus-backed agent's alerts, with times and a link to the expression.
        expected_am = {labels for _, labels in EXPECTED}
        assert wait_for(lambda: am_label_sets(stack) == expected_am, 15), am_label_sets(stack)
        now = int(time.time() * 1000)
        for alert in stack.am_alerts():
            assert alert.generator_url.startswith(f"{stack.prom.url}/graph?g0.expr=")
            assert now - 60_000 < alert.starts_at <= now and alert.ends_at > now

        # Charts: the same range query on both backends sees the same figures.
        end = int(time.time() * 1000)
        [local] = range_query(stack.local_store, "sum(quickbid_workers)", end - 30_000, end, 1000)
        [remote] = range_query(backend, "sum(quickbid_workers)", end - 30_000, end, 1000)
        assert {v for _, v in local.points} == {v for _, v in remote.points} == {2.0, 4.0}
        assert local.points[-1][1] == remote.points[-1][1] == 2.0

        stack.set_workers(4)
        auctions = next(e for e in EXPECTED if e[0] == "AuctionsServed")
        still = {auctions}
        assert wait_for(lambda: firing(stack.local_store) == still, 20), firing(stack.local_store)
        assert wait_for(lambda: firing(stack.prom_store) == still, 20), firing(stack.prom_store)
        # The resolution reached Alertmanager: WorkersLow is no longer active there.
        assert wait_for(lambda: am_label_sets(stack) == {auctions[1]}, 15), am_label_sets(stack)
        for store in (stack.local_store, stack.prom_store):
            resolved = [a for a in current_alerts(store.read(), int(time.time() * 1000))
                        if a.rule == "WorkersLow" and a.state == "resolved"]
            assert len(resolved) == 1
    finally:
        backend.close()


def test_alertmanager_alerts_show_in_the_console_and_acknowledgement_creates_the_silence(stack):
    now = time.time()
    labels = {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"}
    external = [{"labels": labels, "annotations": {"summary": "disk 97% full on db-1"},
                 "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 30)),
                 "generatorURL": "http://other-prometheus:9090/graph"}]
    assert httpx.post(f"{stack.am.url}/api/v2/alerts", json=external, timeout=5).status_code == 200

    def mirrored():
        return [a for a in current_alerts(stack.prom_store.read(), int(time.time() * 1000))
                if a.source == "alertmanager"]

    rows = wait_for(mirrored, 15)
    assert [(a.rule, a.labels, a.severity, a.state) for a in rows] == [("DiskFull", labels, "critical", "firing")]
    [row] = rows
    # qbconsole's own alerts, which it forwarded, are not mirrored back as copies.
    assert {a.rule for a in mirrored()} == {"DiskFull"}

    ack_at = int(time.time() * 1000)
    stack.prom_store.transaction(lambda conn: acknowledge(
        conn, row.id, "oncall-ann", ack_at, "cleaning up old WAL files", timeout_ms=3_600_000))
    silenced = wait_for(lambda: [e for e in events(stack.prom_store.read(), row.id) if e.kind == "silenced"], 15)
    assert silenced, [e for e in events(stack.prom_store.read(), row.id)]
    silence_id = silenced[0].detail["alertmanager_silence_id"]

    silences = parse_silences(httpx.get(f"{stack.am.url}/api/v2/silences", timeout=5).json())
    [silence] = [s for s in silences if s.id == silence_id]
    assert (silence.created_by, silence.comment, silence.state) == ("oncall-ann", "cleaning up old WAL files", "active")
    assert {(m.name, m.value, m.is_regex, m.is_equal) for m in silence.matchers} == {
        (k, v, False, True) for k, v in labels.items()}
    assert abs(silence.ends_at - (ack_at + 3_600_000)) < 1000
    # Alertmanager now holds the alert as silenced by it.
    assert wait_for(lambda: [a for a in stack.am_alerts() if a.labels == labels
                             and a.state == "suppressed" and a.silenced_by == (silence_id,)], 10)
    assert silenced[0].actor == "oncall-ann" and silenced[0].detail["ack_at"] == ack_at
