"""qbconsole's /metrics: the store's latest samples by catalogue kind, its health, and the HTTP server."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qbconsole.agent import Agent
from qbconsole.exporter import MetricsServer, StoreCollector, registry_for
from qbconsole.model import STALE_NAN, Sample
from qbconsole.notify.outbox import enqueue
from qbconsole.store import SourceStatus, Store
from qbconsole.store.alerts import insert_alert

NOW = 1_800_000_000_000


def scrape(collector) -> dict:
    text = generate_latest(registry_for(collector)).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def values(family) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


def test_exporter_latest_samples_typed_by_the_catalogue(store):
    t = NOW - 1000
    store.write([
        Sample("system_cpu_percent", {}, t - 5000, 10.0),
        Sample("system_cpu_percent", {}, t, 42.5),                        # the latest wins
        Sample("http_requests_total", {"route": "/api", "method": "GET", "status": "200"}, t, 17.0),
        Sample("http_request_duration_seconds_bucket", {"route": "/api", "le": "0.1"}, t, 3.0),
        Sample("http_request_duration_seconds_bucket", {"route": "/api", "le": "+Inf"}, t, 5.0),
        Sample("http_request_duration_seconds_sum", {"route": "/api"}, t, 0.4),
        Sample("http_request_duration_seconds_count", {"route": "/api"}, t, 5.0),
        Sample("my_custom_thing", {"x": "y"}, t, 7.0),                     # unknown: untyped
        Sample("system_memory_percent", {}, NOW - 600_000, 50.0),          # stale: older than 5 min
        Sample("system_swap_percent", {}, t, STALE_NAN),                   # staleness marker
        Sample("up", {"source": "platform"}, t, 1.0),                      # Prometheus's own name
        Sample("scrape_duration_seconds", {"source": "platform"}, t, 0.1),
    ])
    families = scrape(StoreCollector(store, clock=lambda: NOW / 1000))
    assert families["system_cpu_percent"].type == "gauge"
    assert values(families["system_cpu_percent"]) == {("system_cpu_percent", ()): 42.5}
    assert families["http_requests"].type == "counter"
    assert values(families["http_requests"]) == {
        ("http_requests_total", (("method", "GET"), ("route", "/api"), ("status", "200"))): 17.0}
    histogram = families["http_request_duration_seconds"]
    assert histogram.type == "histogram"
    assert values(histogram) == {
        ("http_request_duration_seconds_bucket", (("le", "0.1"), ("route", "/api"))): 3.0,
        ("http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/api"))): 5.0,
        ("http_request_duration_seconds_sum", (("route", "/api"),)): 0.4,
        ("http_request_duration_seconds_count", (("route", "/api"),)): 5.0}
    assert families["my_custom_thing"].type == "unknown"
    for gone in ("system_memory_percent", "system_swap_percent", "up", "scrape_duration_seconds"):
        assert gone not in families


def test_exporter_health_sources_rules_outbox_alerts_and_lease(store):
    store.set_source_status(SourceStatus("platform", True, NOW, 0.25, None))
    store.set_source_status(SourceStatus("alertmanager", False, NOW, 0.5, "unreachable"))
    store.write([Sample("qbconsole_source_up", {"source": "platform"}, NOW, 1.0)])  # not reported twice
    store.transaction(lambda conn: [
        enqueue(conn, dedup_key=f"k{i}", channel="email", route="r", group_key="g", kind="notify",
                payload={}, alert_ids=[], now=NOW) for i in range(3)])
    store.transaction(lambda conn: conn.execute("UPDATE notification_outbox SET state = 'failed' WHERE id = 1"))
    store.transaction(lambda conn: insert_alert(conn, "HighCPU", "fp", {}, {}, "warning", "firing", 91.0,
                                                NOW, NOW, NOW))
    assert store.lease_acquire("ann@web-1:42", 3000, now=NOW)
    collector = StoreCollector(store, clock=lambda: NOW / 1000, rule_health=lambda: {"qbconsole": (0.012, 1)})
    families = scrape(collector)
    assert values(families["qbconsole_source_up"]) == {
        ("qbconsole_source_up", (("source", "alertmanager"),)): 0.0,
        ("qbconsole_source_up", (("source", "platform"),)): 1.0}
    assert values(families["qbconsole_rule_evaluation_duration_seconds"]) == {
        ("qbconsole_rule_evaluation_duration_seconds", (("group", "qbconsole"),)): 0.012}
    assert values(families["qbconsole_rule_evaluation_failures"]) == {
        ("qbconsole_rule_evaluation_failures", (("group", "qbconsole"),)): 1.0}
    assert values(families["qbconsole_outbox_pending"]) == {("qbconsole_outbox_pending", ()): 2.0}
    assert values(families["qbconsole_outbox_failed"]) == {("qbconsole_outbox_failed", ()): 1.0}
    assert values(families["qbconsole_alerts"]) == {
        ("qbconsole_alerts", (("severity", "warning"), ("source", "local"), ("state", "firing"))): 1.0}
    assert values(families["qbconsole_lease_info"]) == {("qbconsole_lease_info", (("holder", "ann@web-1:42"),)): 1.0}
    assert values(families["qbconsole_lease_expiry_seconds"]) == {
        ("qbconsole_lease_expiry_seconds", ()): (NOW + 3000) / 1000}
    # an expired lease is nobody's
    later = scrape(StoreCollector(store, clock=lambda: (NOW + 10_000) / 1000))
    assert later["qbconsole_lease_info"].samples == []


def test_exporter_rule_health_falls_back_to_the_samples_the_agent_wrote(store):
    store.write([Sample("qbconsole_rule_evaluation_duration_seconds", {"group": "g"}, NOW, 0.5),
                 Sample("qbconsole_rule_evaluation_failures", {"group": "g"}, NOW, 0.0)])
    families = scrape(StoreCollector(store, clock=lambda: NOW / 1000))
    assert values(families["qbconsole_rule_evaluation_duration_seconds"]) == {
        ("qbconsole_rule_evaluation_duration_seconds", (("group", "g"),)): 0.5}


def test_exporter_http_server_with_and_without_token(store):
    store.write([Sample("system_cpu_percent", {}, int(time.time() * 1000), 12.0)])
    server = MetricsServer(StoreCollector(store), "127.0.0.1", 0).start()
    try:
        response = httpx.get(server.url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "system_cpu_percent 12.0" in response.text
        assert httpx.get(server.url.replace("/metrics", "/nope")).status_code == 404
    finally:
        server.stop()
    server = MetricsServer(StoreCollector(store), "127.0.0.1", 0, token="t0k").start()
    try:
        assert httpx.get(server.url).status_code == 401
        assert httpx.get(server.url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(server.url, headers={"Authorization": "Bearer t0k"}).status_code == 200
    finally:
        server.stop()
    with pytest.raises(ValueError, match="needs a bearer token"):
        MetricsServer(StoreCollector(store), "0.0.0.0", 0)


def test_exporter_served_by_the_agent_that_holds_the_lease(tmp_path, monkeypatch):
    monkeypatch.delenv("QBCONSOLE_METRICS_TOKEN", raising=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text("settings:\n  metrics_listen: 0\n  evaluation_interval: 1s\nsources:\n"
                     "  - {name: system, kind: system, interval: 500ms}\n"
                     "alert_rules:\n  - {alert: Never, expr: 'system_cpu_percent > 1000'}\n")
    with Store.open(tmp_path / "qb.db") as store:
        agent = Agent(store, rules, holder="exporter-test", heartbeat_s=0.5)
        agent.start()
        try:
            deadline = time.monotonic() + 15
            text = ""
            while time.monotonic() < deadline:
                url = store.read().execute("SELECT value FROM meta WHERE key = 'metrics_url'").fetchone()
                if url:
                    text = httpx.get(url[0]).text
                    if "system_cpu_percent" in text and "qbconsole_rule_evaluation_duration_seconds{" in text:
                        break
                time.sleep(0.2)
            families = {f.name: f for f in text_string_to_metric_families(text)}
            assert values(families["qbconsole_lease_info"]) == {("qbconsole_lease_info", (("holder", "exporter-test"),)): 1.0}
            assert values(families["qbconsole_source_up"])[("qbconsole_source_up", (("source", "system"),))] == 1.0
            assert families["system_cpu_percent"].type == "gauge"
            assert ("qbconsole_rule_evaluation_failures", (("group", "qbconsole"),)) in values(
                families["qbconsole_rule_evaluation_failures"])
        finally:
            agent.stop()
        with pytest.raises(httpx.ConnectError):  # the server went with the lease
            httpx.get(url[0])
