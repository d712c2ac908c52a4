"""The `http` probe source against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import textwrap
import time
from http.server import BaseHTTPRequestHandler

import pytest

from qbconsole.catalog import CATALOG
from qbconsole.collect import HttpProbeSource, Scheduler, build_sources
from qbconsole.config import ConfigError, parse_config

from helpers import free_port, serve_http, stop_http, wait_for

NOW = 1_700_000_000_000
SECRET = "s3cret-probe-token"


class Site:
    """A tiny site: path -> (status, body, delay before answering, delay per body byte)."""

    def __init__(self) -> None:
        self.routes = {
            "/ok": (200, b"fine", 0.0, 0.0),
            "/teapot": (418, b"short and stout", 0.0, 0.0),
            "/error": (500, b"boom", 0.0, 0.0),
            "/slow": (200, b"late", 1.5, 0.0),
            "/drip": (200, b"x" * 20, 0.0, 0.1),
        }
        self.requests: list[dict] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                site.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "headers": dict(self.headers), "peer": self.client_address})
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/ok")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, payload, delay, drip = site.routes.get(self.path, (404, b"no", 0.0, 0.0))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                for i in range(len(payload)):
                    self.wfile.write(payload[i:i + 1])
                    self.wfile.flush()
                    time.sleep(drip)

            do_GET = do_HEAD = do_POST = _answer

        self.server = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        stop_http(self.server)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


def probe(url: str, **options) -> HttpProbeSource:
    options.setdefault("timeout", 1)
    return HttpProbeSource(name=options.pop("name", "web"), interval=5, jitter=0, url=url, **options)


def values(samples) -> dict[str, float]:
    assert len({s.name for s in samples}) == len(samples) == 3
    assert all(s.ts == NOW for s in samples)
    return {s.name: s.value for s in samples}


def test_a_good_answer(site):
    src = probe(site.url + "/ok")
    samples = src.collect(NOW)
    got = values(samples)
    assert got["probe_success"] == 1.0 and got["probe_http_status"] == 200.0
    assert 0 < got["probe_duration_seconds"] < 1
    for s in samples:
        assert s.labels == {"target": "web"}
        assert set(s.labels) == set(CATALOG[s.name].labels)
    src.close()


@pytest.mark.parametrize("path, expected, success, status", [
    ("/teapot", None, 0.0, 418),
    ("/teapot", 418, 1.0, 418),
    ("/teapot", [200, 418], 1.0, 418),
    ("/ok", [201], 0.0, 200),
    ("/error", None, 0.0, 500),
    ("/missing", None, 0.0, 404),
])
def test_expected_status(site, path, expected, success, status):
    got = values(probe(site.url + path, expected_status=expected, target="api").collect(NOW))
    assert (got["probe_success"], got["probe_http_status"]) == (success, status)


def test_refused_connection_is_a_failed_probe_not_an_error():
    port = free_port()
    got = values(probe(f"http://127.0.0.1:{port}/").collect(NOW))
    assert got["probe_success"] == 0.0 and got["probe_http_status"] == 0.0


def test_a_slow_answer_fails_within_the_timeout(site):
    src = probe(site.url + "/slow", timeout=0.5)
    start = time.monotonic()
    got = values(src.collect(NOW))
    took = time.monotonic() - start
    assert got["probe_success"] == 0.0 and got["probe_http_status"] == 0.0
    assert 0.4 <= took < 0.6  # 90 % of the source timeout (0.45 s), so the run is not late
    assert "Timeout" in src.last_failure


def test_a_body_that_drips_past_the_timeout_fails_with_its_status(site):
    src = probe(site.url + "/drip", timeout=0.5)
    got = values(src.collect(NOW))
    assert got["probe_success"] == 0.0 and got["probe_http_status"] == 200.0
    assert got["probe_duration_seconds"] < 0.5 + 0.15


def test_redirects_are_not_followed_unless_asked(site):
    got = values(probe(site.url + "/redirect").collect(NOW))
    assert (got["probe_success"], got["probe_http_status"]) == (1.0, 302.0)
    assert [r["path"] for r in site.requests] == ["/redirect"]
    got = values(probe(site.url + "/redirect", follow_redirects=True).collect(NOW))
    assert (got["probe_success"], got["probe_http_status"]) == (1.0, 200.0)
    assert [r["path"] for r in site.requests] == ["/redirect", "/redirect", "/ok"]


def test_method_body_and_headers_are_sent(site):
    probe(site.url + "/ok", method="POST", body='{"ping": 1}',
          headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}).collect(NOW)
    probe(site.url + "/ok", method="HEAD").collect(NOW)
    post, head = site.requests
    assert post["method"] == "POST" and post["body"] == b'{"ping": 1}'
    assert post["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert post["headers"]["User-Agent"].startswith("qbconsole-probe/")
    assert head["method"] == "HEAD" and head["body"] == b""


def test_the_client_and_its_connection_are_reused(site):
    src = probe(site.url + "/ok")
    for i in range(3):
        assert values(src.collect(NOW))["probe_success"] == 1.0
    assert len({r["peer"] for r in site.requests}) == 1  # one keep-alive connection for all runs
    src.close()


def test_header_values_never_reach_the_log(site, caplog):
    caplog.set_level(logging.DEBUG)
    src = probe(site.url + "/error", headers={"X-Token": SECRET})
    src.collect(NOW)
    src.url = src.url.copy_with(path="/ok")
    src.collect(NOW)
    assert "probe web failing: unexpected status 500" in caplog.text
    assert "probe web succeeds again" in caplog.text
    assert SECRET not in caplog.text


def test_the_scheduler_keeps_a_failing_probe_up(site):
    batches, statuses = [], []
    src = probe(site.url + "/error")
    scheduler = Scheduler(batches.extend, [src], on_status=statuses.append)
    scheduler.start()
    try:
        wait_for(lambda: statuses, 5, 0.02)
    finally:
        scheduler.stop()
    assert statuses[0].up and statuses[0].last_error is None
    got = {s.name: s.value for s in batches}
    assert got["probe_success"] == 0.0 and got["qbconsole_source_up"] == 1.0


@pytest.mark.parametrize("options, message", [
    ({"url": "ftp://127.0.0.1/"}, "http:// or https://"),
    ({"url": "http:///nohost"}, "http:// or https://"),
    ({"method": "PUT"}, "not one of GET, HEAD, POST"),
    ({"expected_status": 99}, "not an HTTP status code"),
    ({"expected_status": True}, "not an HTTP status code"),
    ({"expected_status": []}, "must not be empty"),
    ({"body": "x"}, "needs method POST"),
    ({"headers": {"X-Token": 5}}, "'X-Token' must have a string value"),
    ({"target": ""}, "non-empty"),
])
def test_misconfiguration_is_refused(options, message):
    kwargs = {"url": "http://127.0.0.1:9/", **options}
    with pytest.raises(ValueError, match=message):
        HttpProbeSource(**kwargs)


def test_built_from_config_with_a_header_from_the_environment(site):
    config = parse_config(textwrap.dedent(f"""
        sources:
          - name: api
            kind: http
            url: {site.url}/teapot
            method: POST
            body: hello
            expected_status: [418]
            headers: {{Authorization: "Bearer ${{PROBE_TOKEN}}"}}
            target: quickbid-api
            timeout: 2s
    """), env={"PROBE_TOKEN": SECRET})
    [src] = build_sources(config.sources)
    assert SECRET not in repr(config.sources)
    got = {s.name: (s.labels, s.value) for s in src.collect(NOW)}
    assert got["probe_success"] == ({"target": "quickbid-api"}, 1.0)
    assert site.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert site.requests[0]["body"] == b"hello"


def test_config_reports_bad_probe_options_where_they_are():
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent("""
            sources:
              - kind: http
                url: http://127.0.0.1:1/
                method: PUT
                follow_redirects: sometimes
        """), "rules.yaml", env={})
    errors = {(d.line, d.col): d.message for d in caught.value.diagnostics}
    assert "unknown HTTP method 'PUT'" in errors[(5, 13)]
    assert "expected true or false" in errors[(6, 23)]
