"""The Prometheus datasource against captured API answers (httpx MockTransport), and local range queries."""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from qbconsole.config import parse_config
from qbconsole.datasource import build_backend, generator_url, range_query
from qbconsole.datasource.prometheus import PrometheusBackend
from qbconsole.datasource.results import Series
from qbconsole.model import Sample
from qbconsole.rules.engine import RulesEngine
from qbconsole.rules.promql import Evaluator, PromQLEvalError, Scalar, StoreQuerier, String, VSample, parse
from qbconsole.rules.ruleset import rule_groups
from qbconsole.store import Store
from qbconsole.store.alerts import current_alerts

FIXTURES = Path("/work/shared/fixtures")
VECTOR = json.loads((FIXTURES / "prometheus_api_v1_query_vector.json").read_text())
MATRIX = json.loads((FIXTURES / "prometheus_api_v1_query_range_matrix.json").read_text())
URL = "http://prom.test:9090"


class FakePrometheus:
    """Answers /api/v1/query and /api/v1/query_range from a function of the query; records requests."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        status, body = self.answer(request.url.path, params)
        return httpx.Response(status, content=body if isinstance(body, bytes) else json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})

    def backend(self, **kwargs) -> PrometheusBackend:
        return PrometheusBackend(URL, transport=httpx.MockTransport(self), **kwargs)


def success(kind: str, result) -> dict:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "qb.db") as s:
        yield s


def test_prometheus_vector_answer_is_a_vector_of_samples_and_the_request_is_the_api_call():
    fake = FakePrometheus(lambda path, params: (200, VECTOR))
    backend = fake.backend(timeout_s=3)
    value = backend.evaluate("up", 1_795_721_157_145)
    assert value == [VSample({"__name__": "up", "instance": "127.0.0.1:19090", "job": "prometheus"}, 1.0)]
    [request] = fake.requests
    assert request.method == "GET" and request.url.path == "/api/v1/query"
    params = parse_qs(request.url.query.decode())
    assert params == {"query": ["up"], "time": ["1795721157.145"], "timeout": ["3s"]}


def test_prometheus_scalar_string_and_special_values():
    answers = {
        "scalar(up)": success("scalar", [1795721157.145, "0.5"]),
        '"hi"': success("string", [1795721157.145, "hi"]),
        "x": success("vector", [{"metric": {"a": "1"}, "value": [1, "NaN"]},
                                {"metric": {"a": "2"}, "value": [1, "+Inf"]},
                                {"metric": {"a": "3"}, "histogram": [1, {"count": "2"}]}]),
    }
    backend = FakePrometheus(lambda path, params: (200, answers[params["query"]])).backend()
    assert backend.evaluate("scalar(up)", 0) == Scalar(0.5)
    assert backend.evaluate('"hi"', 0) == String("hi")
    nan, inf = backend.evaluate("x", 0)  # a native histogram sample is left out
    assert math.isnan(nan.value) and inf.value == math.inf


def test_prometheus_matrix_from_an_instant_query_is_refused_like_the_local_evaluator():
    fake = FakePrometheus(lambda path, params: (200, success("matrix", MATRIX["data"]["result"])))
    with pytest.raises(PromQLEvalError, match="range vector is not an instant result"):
        fake.backend().evaluate("up[5m]", 0)


def test_prometheus_errors_carry_prometheus_message():
    bad = {"status": "error", "errorType": "bad_data",
           "error": 'invalid parameter "query": 1:5: parse error: unexpected end of input'}
    timeout = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    answers = {"sum(": (400, bad), "slow": (503, timeout), "teapot": (418, b"not json"), "html": (200, b"<html>")}
    backend = FakePrometheus(lambda path, params: answers[params["query"]]).backend()
    with pytest.raises(PromQLEvalError) as caught:
        backend.evaluate("sum(", 0)
    assert str(caught.value) == f"prometheus: bad_data: {bad['error']}"
    assert backend.client.last_error is None  # the query was at fault, not the server
    with pytest.raises(PromQLEvalError, match="prometheus: timeout: query timed out in expression evaluation"):
        backend.evaluate("slow", 0)
    with pytest.raises(PromQLEvalError, match=r"answered HTTP 418$"):
        backend.evaluate("teapot", 0)
    assert backend.client.last_error == "prometheus at http://prom.test:9090 answered HTTP 418"
    with pytest.raises(PromQLEvalError, match="not JSON"):
        backend.evaluate("html", 0)


def test_prometheus_unreachable_and_timeouts_are_eval_errors_naming_only_the_host():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    backend = PrometheusBackend("http://user:secret@prom.test:9090/", transport=httpx.MockTransport(refuse))
    with pytest.raises(PromQLEvalError) as caught:
        backend.evaluate("up", 0)
    assert str(caught.value) == "prometheus at http://prom.test:9090 unreachable: ConnectError"
    assert "secret" not in str(caught.value)

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    backend = PrometheusBackend(URL, timeout_s=2, transport=httpx.MockTransport(slow))
    with pytest.raises(PromQLEvalError, match="did not answer within 2s"):
        backend.evaluate("up", 0)


def test_prometheus_bearer_token_comes_from_the_environment_at_each_request(monkeypatch):
    fake = FakePrometheus(lambda path, params: (200, VECTOR))
    backend = fake.backend(bearer_token_env="PROM_TOKEN")
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    backend.evaluate("up", 0)
    monkeypatch.setenv("PROM_TOKEN", "s3cret")
    backend.evaluate("up", 1)
    assert "authorization" not in fake.requests[0].headers
    assert fake.requests[1].headers["authorization"] == "Bearer s3cret"


def test_prometheus_results_are_memoised_per_tick():
    fake = FakePrometheus(lambda path, params: (200, VECTOR))
    backend = fake.backend()
    first = backend.evaluate("up", 1000)
    first.clear()  # callers may mutate what they get
    assert backend.evaluate("up", 1000) != [] and len(fake.requests) == 1
    backend.evaluate(parse("up"), 1000)  # a parsed expression is sent as its text
    assert len(fake.requests) == 1
    backend.new_tick()
    backend.evaluate("up", 1000)
    assert len(fake.requests) == 2


def test_prometheus_query_range_parses_the_matrix_and_sends_the_window():
    fake = FakePrometheus(lambda path, params: (200, MATRIX))
    series = range_query(fake.backend(), "rate(prometheus_http_requests_total[1m])",
                         1_795_721_100_000, 1_795_721_157_000, 15_000)
    assert series == [Series({"code": "200", "handler": "/metrics", "instance": "127.0.0.1:19090",
                              "job": "prometheus"}, [(1_795_721_157_000, 0.19039999999999999)])]
    [request] = fake.requests
    assert request.url.path == "/api/v1/query_range"
    params = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
    assert (params["start"], params["end"], params["step"]) == ("1795721100.000", "1795721157.000", "15")


def test_prometheus_query_range_refuses_what_prometheus_refuses(store):
    backend = FakePrometheus(lambda path, params: (200, MATRIX)).backend()
    for source in (backend, store):
        with pytest.raises(PromQLEvalError, match="zero or negative"):
            range_query(source, "up", 0, 10, 0)
        with pytest.raises(PromQLEvalError, match="11,000 points"):
            range_query(source, "up", 0, 11_000_000, 1000)


def test_local_range_query_matches_instant_evaluation_at_each_step(store):
    t0 = 1_700_000_000_000
    store.write([Sample("http_requests_total", {"route": r}, t0 + i * 1000, float(i * k))
                 for i in range(120) for r, k in (("/a", 1), ("/b", 3))])
    store.write([Sample("http_requests_total", {"route": "/c"}, t0 + 60_000, 5.0)])
    expr = "sum by (route) (rate(http_requests_total[30s]))"
    series = range_query(store, expr, t0 + 30_000, t0 + 110_000, 10_000)
    assert [s.labels for s in series] == [{"route": "/a"}, {"route": "/b"}]
    evaluator = Evaluator(StoreQuerier(store))
    for s in series:
        assert [t for t, _ in s.points] == list(range(t0 + 30_000, t0 + 110_001, 10_000))
        for t, v in s.points:
            evaluator.new_tick()
            expected = {frozenset(x.labels.items()): x.value for x in evaluator.evaluate(expr, t)}
            assert v == pytest.approx(expected[frozenset(s.labels.items())])
    assert series[1].points[0][1] == pytest.approx(3.0)
    # a scalar is one series without labels; a series appears only at steps where it has a value
    [scalar] = range_query(store, "scalar(sum(http_requests_total{route='/a'}))", t0, t0 + 2000, 1000)
    assert scalar == Series({}, [(t0, 0.0), (t0 + 1000, 1.0), (t0 + 2000, 2.0)])
    [c] = range_query(store, 'http_requests_total{route="/c"}', t0, t0 + 120_000, 30_000)
    assert [t for t, _ in c.points] == [t0 + 60_000, t0 + 90_000, t0 + 120_000]


RULES = """
datasource: {kind: prometheus, url: "http://prom.test:9090"}
recording_rules:
  - {record: "job:up:sum", expr: "sum(up)"}
alert_rules:
  - alert: TargetDown
    expr: up == 0
    for: 0s
    labels: {severity: critical}
    annotations: {summary: "{{ $labels.instance }} is down"}
"""


def test_rules_engine_on_a_prometheus_backend_fires_alerts_and_writes_no_recording(store):
    config = parse_config(RULES, env={})
    assert any("not evaluated with a Prometheus datasource" in n for n in config.notices)
    down = success("vector", [{"metric": {"__name__": "up", "instance": "web-1", "job": "api"},
                               "value": [1, "0"]}])
    fake = FakePrometheus(lambda path, params: (200, down if params["query"] == "up == 0" else VECTOR))
    backend = fake.backend()
    engine = RulesEngine(store, rule_groups(config), evaluator=backend, record=False)
    [result] = engine.tick(1_795_721_157_000)
    assert result.errors == {} and result.samples == 0
    assert [p["query"][0] for p in (parse_qs(r.url.query.decode()) for r in fake.requests)] == ["up == 0"]
    [alert] = current_alerts(store.read(), 1_795_721_157_000)
    assert (alert.rule, alert.state, alert.source) == ("TargetDown", "firing", "local")
    assert alert.labels == {"alertname": "TargetDown", "instance": "web-1", "job": "api", "severity": "critical"}
    assert alert.annotations == {"summary": "web-1 is down"}
    assert store.names() == []  # the local store holds only qbconsole's state


def test_rules_engine_keeps_alerts_when_prometheus_is_unreachable(store):
    config = parse_config(RULES, env={})
    state = {"up": True}

    def answer(path, params):
        if not state["up"]:
            raise httpx.ConnectError("refused")
        return 200, success("vector", [{"metric": {"instance": "web-1"}, "value": [1, "0"]}])

    def handler(request):
        status, body = answer(request.url.path, {})
        return httpx.Response(status, json=body)

    engine = RulesEngine(store, rule_groups(config), evaluator=PrometheusBackend(
        URL, transport=httpx.MockTransport(handler)), record=False)
    engine.tick(1_000_000)
    state["up"] = False
    [result] = engine.tick(2_000_000)
    assert "unreachable" in result.errors["TargetDown"]
    [alert] = current_alerts(store.read(), 2_000_000)
    assert alert.state == "firing"  # not resolved by an outage


def test_build_backend_from_config_and_the_cli_override():
    local = parse_config("alert_rules: []", env={})
    assert build_backend(local.datasource) is None
    backend = build_backend(local.datasource, "http://127.0.0.1:9090/")
    assert backend.url == "http://127.0.0.1:9090"
    backend.close()
    remote = build_backend(parse_config(RULES, env={}).datasource)
    assert remote.url == URL and remote.client.bearer_token_env == "QBCONSOLE_DATASOURCE_TOKEN"
    remote.close()


def test_generator_url_links_to_prometheus_graph_or_names_the_local_alert():
    class Row:
        id, rule = 7, "HighErrorRate"

    backend = FakePrometheus(lambda path, params: (200, VECTOR)).backend()
    expr = 'sum(rate(x{code=~"5.."}[5m])) > 1'
    url = httpx.URL(generator_url(backend, {"HighErrorRate": expr})(Row()))
    assert (url.scheme, url.host, url.port, url.path) == ("http", "prom.test", 9090, "/graph")
    assert dict(url.params) == {"g0.expr": expr, "g0.tab": "1"}  # Prometheus's own generatorURL form
    assert generator_url(None, {}, host="web-1")(Row()) == "qbconsole://web-1/alerts/7?rule=HighErrorRate"
