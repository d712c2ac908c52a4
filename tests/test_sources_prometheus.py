"""The `prometheus` scrape source: real captures, prometheus_client output, failures, staleness."""

from __future__ import annotations

import re
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry, Counter as PCounter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from qbconsole.catalog import CATALOG
from qbconsole.collect import PrometheusSource, Scheduler, ScrapeFailed, build_sources
from qbconsole.collect.prometheus import parse_exposition
from qbconsole.model import Sample, is_stale
from qbconsole.store import Store

from helpers import free_port, serve_http, stop_http, wait_for

FIXTURES = Path("/work/shared/fixtures")
NOW = 1_700_000_000_000
TEXT = "text/plain; version=0.0.4; charset=utf-8"


class Exporter:
    """Serves ``body`` at /metrics with ``status``, after ``delay`` seconds; records request headers."""

    def __init__(self, body: str = "", status: int = 200, content_type: str = TEXT) -> None:
        self.body, self.status, self.content_type, self.delay = body, status, content_type, 0.0
        self.headers: list[dict] = []
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                exporter.headers.append(dict(self.headers))
                time.sleep(exporter.delay)
                data = exporter.body.encode("utf-8")
                self.send_response(exporter.status)
                self.send_header("Content-Type", exporter.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = serve_http(Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/metrics"

    def close(self) -> None:
        stop_http(self.server)


@pytest.fixture
def exporter():
    e = Exporter()
    yield e
    e.close()


def scraper(url: str, **options) -> PrometheusSource:
    options.setdefault("timeout", 2)
    return PrometheusSource(name=options.pop("name", "qb"), interval=5, jitter=0, url=url, **options)


def index(samples: list[Sample]) -> dict[tuple, Sample]:
    return {(s.name, tuple(sorted(s.labels.items()))): s for s in samples}


def line_value(text: str, series: str) -> float:
    """The value written on the line that starts with ``series`` (read from the fixture itself)."""
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, series
    return float(match.group(1))


def type_counts(text: str) -> Counter:
    return Counter(line.split()[3] for line in text.splitlines() if line.startswith("# TYPE "))


def sample_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))


# ---- the real captures ----------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["prometheus_metrics.txt", "alertmanager_metrics.txt"])
def test_parses_every_sample_and_family_of_a_real_capture(fixture):
    text = (FIXTURES / fixture).read_text()
    exposed = parse_exposition(text, TEXT)
    assert len(exposed) == sample_lines(text)
    families = Counter(t for _, t in {(e.family, e.type) for e in exposed})
    assert families == type_counts(text)
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    for e in exposed:
        base = re.sub(r"_(bucket|sum|count)$", "", e.name)
        assert e.name in declared or base in declared, e.name  # names as on the wire


def test_the_prometheus_capture_as_documented():
    counts = type_counts((FIXTURES / "prometheus_metrics.txt").read_text())
    assert counts == {"counter": 82, "gauge": 70, "histogram": 7, "summary": 9}  # the fixture README


def test_scraping_the_prometheus_capture(exporter):
    text = (FIXTURES / "prometheus_metrics.txt").read_text()
    exporter.body = text
    src = scraper(exporter.url)
    samples = src.collect(NOW)
    got = index(samples)
    target = {"job": "qb", "instance": f"127.0.0.1:{exporter.port}"}

    def one(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted({**labels, **target}.items())))].value

    assert one("go_goroutines") == line_value(text, "go_goroutines")
    assert one("go_memstats_alloc_bytes_total") == line_value(text, "go_memstats_alloc_bytes_total")
    assert one("go_memstats_alloc_bytes") == line_value(text, "go_memstats_alloc_bytes")
    assert one("go_gc_duration_seconds", quantile="0.25") == line_value(text, 'go_gc_duration_seconds{quantile="0.25"}')
    assert one("go_gc_duration_seconds_count") == line_value(text, "go_gc_duration_seconds_count")
    bucket = 'prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="+Inf"}'
    assert one("prometheus_http_request_duration_seconds_bucket", handler="/metrics", le="+Inf") == \
        line_value(text, bucket)
    les = {dict(k[1])["le"] for k in got if k[0] == "prometheus_http_request_duration_seconds_bucket"}
    assert les == set(re.findall(r'prometheus_http_request_duration_seconds_bucket\{handler="/metrics",le="([^"]+)"',
                                 text))
    assert "0.1" in les and "+Inf" in les  # kept exactly as exposed
    assert one("up") == 1.0
    assert one("scrape_samples_scraped") == sample_lines(text)
    assert 0 < one("scrape_duration_seconds") < 2
    assert len(samples) == sample_lines(text) + 3
    assert all(s.ts == NOW and target.items() <= s.labels.items() for s in samples)
    for name in ("up", "scrape_duration_seconds", "scrape_samples_scraped"):
        assert set(CATALOG[name].labels) == set(target)
    src.close()


# ---- prometheus_client output (what the demo platform exposes) ------------------------------------
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    PCounter("http_requests_total", "Requests", ["route", "status"], registry=reg).labels("/bid", "200").inc(7)
    Gauge("quickbid_workers", "Workers", registry=reg).set(4)
    h = Histogram("http_request_duration_seconds", "Latency", ["route"], buckets=(0.005, 0.1, 1), registry=reg)
    for v in (0.001, 0.05, 0.05, 2.0):
        h.labels("/bid").observe(v)
    Summary("db_query_duration_seconds", "DB time", registry=reg).observe(0.25)
    Info("quickbid_build", "Build", registry=reg).info({"version": "1.2.3"})
    Enum("quickbid_state", "State", states=["starting", "serving"], registry=reg).state("serving")
    return reg


def test_prometheus_client_text_output(exporter):
    exporter.body = generate_latest(registry()).decode()
    got = index(scraper(exporter.url, labels={"job": "quickbid", "env": "test"}).collect(NOW))
    t = (("env", "test"), ("instance", f"127.0.0.1:{exporter.port}"), ("job", "quickbid"))

    def one(name: str, *labels: tuple[str, str]) -> float:
        return got[(name, tuple(sorted(t + labels)))].value

    assert one("http_requests_total", ("route", "/bid"), ("status", "200")) == 7
    assert ("http_requests_created", tuple(sorted(t + (("route", "/bid"), ("status", "200"))))) in got
    assert one("quickbid_workers") == 4
    assert [one("http_request_duration_seconds_bucket", ("route", "/bid"), ("le", le))
            for le in ("0.005", "0.1", "1.0", "+Inf")] == [1, 3, 3, 4]
    assert one("http_request_duration_seconds_count", ("route", "/bid")) == 4
    assert one("http_request_duration_seconds_sum", ("route", "/bid")) == pytest.approx(2.101)
    assert one("db_query_duration_seconds_sum") == 0.25
    assert one("quickbid_build_info", ("version", "1.2.3")) == 1
    assert one("quickbid_state", ("quickbid_state", "serving")) == 1
    assert one("quickbid_state", ("quickbid_state", "starting")) == 0


def test_openmetrics_output_gives_info_and_stateset_and_drops_created(exporter):
    exporter.body = openmetrics.generate_latest(registry()).decode()
    exporter.content_type = openmetrics.CONTENT_TYPE_LATEST
    exposed = parse_exposition(exporter.body, exporter.content_type)
    types = {e.family: e.type for e in exposed}
    assert types["quickbid_build"] == "info" and types["quickbid_state"] == "stateset"
    got = scraper(exporter.url).collect(NOW)
    names = {s.name for s in got}
    assert "http_requests_total" in names and "quickbid_build_info" in names
    assert not any(n.endswith("_created") for n in names)


def test_counter_declared_without_total_keeps_its_name(exporter):
    exporter.body = "# TYPE legacy_requests counter\nlegacy_requests 3\n# TYPE new_requests_total counter\nnew_requests_total 4\n"
    names = {s.name: s.value for s in scraper(exporter.url).collect(NOW)}
    assert names["legacy_requests"] == 3 and names["new_requests_total"] == 4
    assert "legacy_requests_total" not in names


# ---- timestamps and labels ---------------------------------------------------------------------------
def test_exported_timestamps_are_honoured_unless_told_not_to(exporter):
    exporter.body = "# TYPE temp gauge\ntemp 21.5 1699999990123\n# TYPE now gauge\nnow 1\n"
    got = {s.name: s.ts for s in scraper(exporter.url).collect(NOW)}
    assert got["temp"] == 1699999990123 and got["now"] == NOW
    got = {s.name: s.ts for s in scraper(exporter.url, honor_timestamps=False).collect(NOW)}
    assert got["temp"] == NOW


def test_target_labels_win_and_clashing_scraped_labels_are_exported(exporter):
    exporter.body = 'x{job="inner",instance="a:1",mode="fast",empty=""} 1\n'
    [x] = [s for s in scraper(exporter.url, labels={"job": "quickbid", "instance": "demo:80"}).collect(NOW)
           if s.name == "x"]
    assert x.labels == {"job": "quickbid", "instance": "demo:80", "exported_job": "inner",
                        "exported_instance": "a:1", "mode": "fast"}


def test_default_instance_uses_the_schemes_port():
    assert PrometheusSource(url="https://metrics.example/m").target_labels == {
        "job": "prometheus", "instance": "metrics.example:443"}
    assert PrometheusSource(url="http://[::1]/m", name="v6").target_labels["instance"] == "[::1]:80"


# ---- staleness ---------------------------------------------------------------------------------------
def test_a_vanished_series_gets_one_staleness_marker(exporter, tmp_path):
    src = scraper(exporter.url)
    exporter.body = 'a 1\nb{k="1"} 2\nb{k="2"} 3\nstamped 4 1699999990000\n'
    first = src.collect(NOW)
    assert not any(is_stale(s.value) for s in first)
    exporter.body = 'a 5\nb{k="2"} 6\n'
    second = src.collect(NOW + 1000)
    stale = [s for s in second if is_stale(s.value)]
    assert [(s.name, s.labels["k"], s.ts) for s in stale] == [("b", "1", NOW + 1000)]  # not `stamped`
    third = src.collect(NOW + 2000)
    assert not any(is_stale(s.value) for s in third)
    with Store.open(tmp_path / "s.db") as store:
        for batch in (first, second, third):
            store.write(batch)
        [point] = store.latest("b", {"k": "1"})
        assert is_stale(point.value) and point.ts == NOW + 1000


# ---- failures ------------------------------------------------------------------------------------------
def test_an_error_answer_fails_the_scrape_with_one_line_and_marks_everything_stale(exporter):
    src = scraper(exporter.url)
    exporter.body = "a 1\nb 2\n"
    src.collect(NOW)
    exporter.status = 500
    with pytest.raises(ScrapeFailed) as caught:
        src.collect(NOW + 1000)
    assert str(caught.value) == f"HTTP 500 Internal Server Error from {exporter.url}"
    got = index(caught.value.samples)
    t = tuple(sorted({"job": "qb", "instance": f"127.0.0.1:{exporter.port}"}.items()))
    assert got[("up", t)].value == 0.0 and got[("scrape_samples_scraped", t)].value == 0.0
    assert all(is_stale(got[(n, t)].value) for n in ("a", "b"))
    exporter.status = 200
    assert index(src.collect(NOW + 2000))[("up", t)].value == 1.0


def test_connection_refused_fails_the_scrape():
    port = free_port()
    with pytest.raises(ScrapeFailed, match=rf"cannot scrape http://127.0.0.1:{port}/metrics: ConnectError"):
        scraper(f"http://127.0.0.1:{port}/metrics").collect(NOW)


def test_a_slow_target_times_out_within_the_timeout(exporter):
    exporter.body, exporter.delay = "a 1\n", 2.0
    start = time.monotonic()
    with pytest.raises(ScrapeFailed, match="timed out after 0.45s"):
        scraper(exporter.url, timeout=0.5).collect(NOW)
    assert time.monotonic() - start < 1.0


def test_malformed_exposition_fails_the_scrape(exporter):
    exporter.body = "a{b=unquoted} 1\n"
    with pytest.raises(ScrapeFailed, match="cannot parse the exposition"):
        scraper(exporter.url).collect(NOW)


def test_the_scheduler_shows_the_failure_as_one_line(exporter):
    exporter.status = 503
    statuses = []
    scheduler = Scheduler(lambda batch: None, [scraper(exporter.url)], on_status=statuses.append)
    scheduler.start()
    try:
        wait_for(lambda: statuses, 5, 0.02)
    finally:
        scheduler.stop()
    assert not statuses[0].up
    assert statuses[0].last_error == f"ScrapeFailed: HTTP 503 Service Unavailable from {exporter.url}"


# ---- auth and config ----------------------------------------------------------------------------------
def test_bearer_token_comes_from_the_environment(exporter, monkeypatch):
    exporter.body = "a 1\n"
    src = scraper(exporter.url, bearer_token_env="QB_SCRAPE_TOKEN")
    monkeypatch.delenv("QB_SCRAPE_TOKEN", raising=False)
    with pytest.raises(ScrapeFailed, match="environment variable QB_SCRAPE_TOKEN"):
        src.collect(NOW)
    monkeypatch.setenv("QB_SCRAPE_TOKEN", "tok-42")
    src.collect(NOW)
    assert exporter.headers[-1]["Authorization"] == "Bearer tok-42"
    assert exporter.headers[-1]["Accept"].startswith("text/plain;version=0.0.4")


@pytest.mark.parametrize("options, message", [
    ({"url": "file:///etc/passwd"}, "http:// or https://"),
    ({"labels": {"__address__": "x"}}, "invalid label name"),
    ({"labels": {"env": 1}}, "must have a string value"),
    ({"bearer_token_env": "not a name"}, "not an environment variable name"),
])
def test_misconfiguration_is_refused(options, message):
    with pytest.raises(ValueError, match=message):
        PrometheusSource(**{"url": "http://127.0.0.1:9/metrics", **options})


def test_built_from_config(exporter):
    from qbconsole.config import parse_config

    exporter.body = "a 1\n"
    config = parse_config(f"""
sources:
  - name: quickbid
    kind: prometheus
    url: {exporter.url}
    labels: {{env: demo}}
    honor_timestamps: false
    bearer_token_env: QB_TOKEN
""", env={})
    [src] = build_sources(config.sources)
    assert src.target_labels == {"job": "quickbid", "instance": f"127.0.0.1:{exporter.port}", "env": "demo"}
    assert src.honor_timestamps is False and src.bearer_token_env == "QB_TOKEN"



@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}",= \n#_ax1.e+-\\TYPEHELPcounterinfo\t', max_size=120),
       st.sampled_from(["text/plain", "application/openmetrics-text"]))
def test_any_text_parses_or_is_a_value_error(text, content_type):
    try:
        exposed = parse_exposition(text, content_type)
    except ValueError:
        return
    assert all(isinstance(e.value, float) for e in exposed)
