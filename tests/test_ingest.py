"""The ingest endpoint over real HTTP: every event type, every refusal, limits, counters, concurrency."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from qbconsole.ingest import IngestServer
from qbconsole.ingest import recorder as recorder_module
from qbconsole.model import Sample
from qbconsole.store import Store

from helpers import now_ms

TOKEN = "ingest-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(store):
    srv = IngestServer(store, token=TOKEN, rate=1000)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def post(client: httpx.Client, body, *, headers=None, content_type="application/json") -> httpx.Response:
    h = {**AUTH, "Content-Type": content_type, **(headers or {})}
    if isinstance(body, (bytes, str)):
        return client.post("/v1/events", content=body, headers=h)
    return client.post("/v1/events", content=json.dumps(body), headers=h)


def counts(store: Store) -> tuple[int, int]:
    """(sample rows, series rows): what 'nothing stored' is checked against."""
    conn = store.read()
    return (conn.execute("SELECT count(*) FROM samples").fetchone()[0],
            conn.execute("SELECT count(*) FROM series").fetchone()[0])


def points(store: Store, name: str, labels=None) -> list[tuple[int, float]]:
    return [p for _, pts in store.select(name, 0, 2**62, labels) for p in pts]


# ---- what is stored -----------------------------------------------------------------------------
def test_health(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_every_event_type_is_stored(client, store, server):
    t = now_ms() - 60_000
    batch = [
        {"type": "rum", "name": "page_view", "page": "auction", "page_load_seconds": 1.23,
         "interaction_seconds": 0.21, "ts": t},
        {"type": "rum", "name": "page_view", "page": "home", "page_load_seconds": 2, "ts": t + 1},
        {"type": "rum", "name": "session_end", "session_duration_seconds": 83.2, "bounced": False, "ts": t + 2},
        {"type": "rum", "name": "session_end", "session_duration_seconds": 3, "bounced": True, "ts": t + 3},
        {"type": "rum", "name": "survey", "satisfaction": 4, "nps": 9, "ts": t + 4},
        {"type": "rum", "name": "survey", "nps": 0, "ts": t + 5},
        {"type": "rum", "name": "task", "task": "place_bid", "completed": True, "ts": t + 6},
        {"type": "rum", "name": "task", "task": "checkout", "completed": False, "ts": t + 7},
        {"type": "security", "kind": "failed_login", "source_ip": "203.0.113.9"},
        {"type": "security", "kind": "failed_login", "source_ip": "2001:db8::1"},
        {"type": "security", "kind": "blocked_request"},
        {"type": "metric", "name": "quickbid_queue_depth", "labels": {"queue": "bids"}, "value": 1.5, "ts": t + 8},
    ]
    before = now_ms()
    r = post(client, batch)
    after = now_ms()
    assert r.status_code == 202 and r.json() == {"accepted": len(batch)}
    assert points(store, "rum_page_load_seconds", {"page": "auction"}) == [(t, 1.23)]
    assert points(store, "rum_page_load_seconds", {"page": "home"}) == [(t + 1, 2.0)]
    assert points(store, "rum_interaction_seconds", {"page": "auction"}) == [(t, 0.21)]
    assert points(store, "rum_interaction_seconds", {"page": "home"}) == []
    assert points(store, "rum_session_duration_seconds") == [(t + 2, 83.2), (t + 3, 3.0)]
    assert points(store, "rum_bounce") == [(t + 2, 0.0), (t + 3, 1.0)]
    assert points(store, "rum_satisfaction_score") == [(t + 4, 4.0)]
    assert points(store, "rum_nps_score") == [(t + 4, 9.0), (t + 5, 0.0)]
    assert points(store, "rum_task_completed", {"task": "place_bid"}) == [(t + 6, 1.0)]
    assert points(store, "rum_task_completed", {"task": "checkout"}) == [(t + 7, 0.0)]
    assert points(store, "quickbid_queue_depth", {"queue": "bids"}) == [(t + 8, 1.5)]
    [(ts, value)] = points(store, "security_events_total", {"kind": "failed_login"})
    assert value == 2.0 and before <= ts <= after + 1  # a counter, stamped at receive time
    assert [v for _, v in points(store, "security_events_total", {"kind": "blocked_request"})] == [1.0]
    assert server.stats()["accepted"] == {"rum": 8, "security": 3, "metric": 1}


def test_events_without_ts_get_the_receive_time(client, store):
    before = now_ms()
    assert post(client, {"type": "rum", "name": "page_view", "page": "p", "page_load_seconds": 0.5}).status_code == 202
    after = now_ms()
    [(ts, _)] = points(store, "rum_page_load_seconds")
    assert before <= ts <= after


def test_same_series_same_ts_is_nudged_not_overwritten(client, store):
    t = now_ms() - 1000
    event = {"type": "rum", "name": "page_view", "page": "p", "page_load_seconds": 1.0, "ts": t}
    r = post(client, [event, {**event, "page_load_seconds": 2.0}, {**event, "page_load_seconds": 3.0}])
    assert r.status_code == 202
    assert points(store, "rum_page_load_seconds") == [(t, 1.0), (t + 1, 2.0), (t + 2, 3.0)]
    # receive-time stamps never collide, even across batches landing in one millisecond
    for i in range(30):
        assert post(client, {"type": "rum", "name": "survey", "satisfaction": 1 + i % 5}).status_code == 202
    assert len(points(store, "rum_satisfaction_score")) == 30


def test_ndjson(client, store):
    body = "\n".join(json.dumps(e) for e in [
        {"type": "rum", "name": "task", "task": "login", "completed": True},
        {"type": "metric", "name": "x_y", "value": 2},
    ]) + "\n\n"
    r = post(client, body, content_type="application/x-ndjson")
    assert r.status_code == 202 and r.json() == {"accepted": 2}
    assert [v for _, v in points(store, "x_y")] == [2.0]


# ---- refusals: a 4xx with the reason, and nothing stored ------------------------------------------------
OK = {"type": "rum", "name": "page_view", "page": "auction", "page_load_seconds": 1.0}
BAD_EVENTS = [
    ("string-for-number", {**OK, "page_load_seconds": "1.2"}, 0, "page_load_seconds", "must be a number, got a string"),
    ("bool-for-number", {**OK, "page_load_seconds": True}, 0, "page_load_seconds", "must be a number, got a boolean"),
    ("bool-for-score", {"type": "rum", "name": "survey", "satisfaction": True}, 0, "satisfaction", "got a boolean"),
    ("float-score", {"type": "rum", "name": "survey", "nps": 8.5}, 0, "nps", "must be an integer"),
    ("satisfaction-high", {"type": "rum", "name": "survey", "satisfaction": 6}, 0, "satisfaction", "between 1 and 5"),
    ("satisfaction-low", {"type": "rum", "name": "survey", "satisfaction": 0}, 0, "satisfaction", "between 1 and 5"),
    ("nps-high", {"type": "rum", "name": "survey", "nps": 11}, 0, "nps", "between 0 and 10"),
    ("empty-survey", {"type": "rum", "name": "survey"}, 0, "satisfaction", "needs satisfaction"),
    ("negative-time", {**OK, "page_load_seconds": -0.1}, 0, "page_load_seconds", "between 0 and 3600"),
    ("bounced-int", {"type": "rum", "name": "session_end", "session_duration_seconds": 1, "bounced": 1}, 0,
     "bounced", "true or false"),
    ("missing-field", {"type": "rum", "name": "page_view", "page_load_seconds": 1.0}, 0, "page", "missing field 'page'"),
    ("missing-type", {"name": "page_view"}, 0, "type", "missing field 'type'"),
    ("unknown-type", {"type": "click"}, 0, "type", "unknown event type 'click'"),
    ("exposure-unknown-experiment", {"type": "exposure", "experiment": "e", "user": "u1"}, 0, "experiment",
     "unknown experiment 'e'"),
    ("experiment-event-no-experiment", {"type": "experiment_event"}, 0, "experiment", "missing field 'experiment'"),
    ("unknown-rum", {"type": "rum", "name": "scroll"}, 0, "name", "unknown rum event name 'scroll'"),
    ("unknown-field", {**OK, "pgae": "x"}, 0, "pgae", "unknown field 'pgae'"),
    ("bad-page", {**OK, "page": "a b"}, 0, "page", "is not allowed"),
    ("old-ts", {**OK, "ts": now_ms() - 25 * 3600 * 1000}, 0, "ts", "more than 24 h in the past"),
    ("future-ts", {**OK, "ts": now_ms() + 10 * 60 * 1000}, 0, "ts", "more than 5 min in the future"),
    ("float-ts", {**OK, "ts": float(now_ms())}, 0, "ts", "must be an integer"),
    ("bad-ip", {"type": "security", "kind": "failed_login", "source_ip": "999.1.1.1"}, 0, "source_ip", "IPv4 or IPv6"),
    ("bad-kind", {"type": "security", "kind": "Failed Login"}, 0, "kind", "is not allowed"),
    ("reserved-prefix", {"type": "metric", "name": "qbconsole_source_up", "value": 1}, 0, "name", "reserved"),
    ("reserved-dunder", {"type": "metric", "name": "__x", "value": 1}, 0, "name", "reserved"),
    ("owned-counter", {"type": "metric", "name": "security_events_total", "value": 1}, 0, "name", "reserved"),
    ("bad-name", {"type": "metric", "name": "9lives", "value": 1}, 0, "name", "must be a metric name"),
    ("colon-name", {"type": "metric", "name": "a:b:c", "value": 1}, 0, "name", "must be a metric name"),
    ("bad-label", {"type": "metric", "name": "x", "labels": {"__l": "v"}, "value": 1}, 0, "labels",
     "invalid label name"),
    ("label-not-string", {"type": "metric", "name": "x", "labels": {"l": 1}, "value": 1}, 0, "labels", "must be a string"),
    ("value-string", {"type": "metric", "name": "x", "value": "1"}, 0, "value", "finite number"),
    ("not-an-object", ["page_view"], 0, None, "must be a JSON object"),
]


@pytest.mark.parametrize("event, index, field, message", [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_a_bad_event_is_refused_and_nothing_of_its_batch_is_stored(client, store, event, index, field, message):
    good = [OK, {"type": "security", "kind": "failed_login"}, {"type": "metric", "name": "m", "value": 1}]
    before = counts(store)
    batch = good + event if isinstance(event, list) else good + [event]
    r = post(client, batch)
    assert r.status_code == 400, r.text
    body = r.json()
    assert message in body["error"]
    assert (body["index"], body["field"]) == (index + len(good), field)
    assert counts(store) == before
    assert post(client, OK).status_code == 202  # and it keeps serving


RAW = [
    ("bad-json", b'{"type": "rum",', "application/json", 400, "invalid JSON"),
    ("nan-literal", b'{"type": "metric", "name": "x", "value": NaN}', "application/json", 400, "NaN is not valid JSON"),
    ("duplicate-key", b'{"type": "rum", "type": "metric"}', "application/json", 400, "appears twice"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "nested too deeply"),
    ("scalar", b"42", "application/json", 400, "a JSON object or a list of objects"),
    ("empty-list", b"[]", "application/json", 400, "holds no events"),
    ("empty-body", b"", "application/json", 400, "invalid JSON"),
    ("not-utf8", b'{"type": "rum", "page": "\xff\xfe"}', "application/json", 400, "not valid UTF-8"),
    ("text-plain", json.dumps(OK).encode(), "text/plain", 415, "not supported"),
    ("no-content-type", json.dumps(OK).encode(), None, 415, "'none' is not supported"),
    ("latin1", json.dumps(OK).encode(), "application/json; charset=latin-1", 415, "send UTF-8"),
    ("ndjson-bad-line", json.dumps(OK).encode() + b"\n{oops\n" + json.dumps(OK).encode(),
     "application/x-ndjson", 400, "line 2: invalid JSON"),
    ("ndjson-bad-event", json.dumps(OK).encode() + b"\n" + json.dumps({**OK, "page_load_seconds": "x"}).encode(),
     "application/x-ndjson", 400, "must be a number"),
]


@pytest.mark.parametrize("raw, content_type, status, message", [r[1:] for r in RAW], ids=[r[0] for r in RAW])
def test_a_bad_body_is_refused(client, store, raw, content_type, status, message, capfd):
    before = counts(store)
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    r = client.post("/v1/events", content=raw, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert counts(store) == before
    assert post(client, OK).status_code == 202
    assert "Traceback" not in capfd.readouterr().err


def test_ndjson_error_names_the_bad_line_as_its_index(client, store):
    lines = [json.dumps(OK)] * 3 + [json.dumps({**OK, "page": ""})]
    r = post(client, "\n".join(lines), content_type="application/x-ndjson")
    assert r.status_code == 400 and (r.json()["index"], r.json()["field"]) == (3, "page")
    assert counts(store) == (0, 0)


@pytest.mark.parametrize("headers, status, message", [
    ({}, 401, "missing bearer token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "missing bearer token"),
    ({"Authorization": "Bearer"}, 401, "missing bearer token"),
    ({"Authorization": "Bearer wrong-token"}, 403, "wrong token"),
    ({"Authorization": f"Bearer {TOKEN}x"}, 403, "wrong token"),
])
def test_token_is_required(client, store, headers, status, message):
    r = client.post("/v1/events", content=json.dumps(OK), headers={"Content-Type": "application/json", **headers})
    assert r.status_code == status and message in r.json()["error"]
    if status == 401:
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert counts(store) == (0, 0)
    assert post(client, OK).status_code == 202


def test_oversize_bodies_are_refused_with_or_without_content_length(store, capfd):
    with IngestServer(store, token=TOKEN, max_body=10_000) as srv, httpx.Client(base_url=srv.url) as c:
        big = json.dumps([OK] * 500).encode()
        assert len(big) > 10_000
        r = c.post("/v1/events", content=big, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413 and "larger than 10000 bytes" in r.json()["error"]

        def chunks():  # no Content-Length: chunked, far past the limit
            for _ in range(300):
                yield b" " * 1000

        r = c.post("/v1/events", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413
        small = json.dumps([OK] * 5).encode()
        r = c.post("/v1/events", content=iter([small[:20], small[20:]]),
                   headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 202 and r.json() == {"accepted": 5}  # chunked within the limit is fine
        assert srv.stats()["rejected"] == {"too_large": 2}
    assert counts(store)[0] == 5
    assert "Traceback" not in capfd.readouterr().err


def test_routes_and_methods(client):
    assert client.get("/v1/events").status_code == 405
    assert client.post("/v2/events", content=b"{}", headers=AUTH).status_code == 404
    assert client.get("/nowhere").status_code == 404


def test_garbage_on_the_socket_gets_an_answer_not_a_traceback(server, capfd):
    host, port = server.url.removeprefix("http://").split(":")
    bad_length = (f"POST /v1/events HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                  "Content-Type: application/json\r\nContent-Length: x").encode()
    for garbage in (b"GARBAGE", bad_length, b"\x00\xff" * 50):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(garbage + b"\r\n\r\n")
            answer = s.recv(4096)
            assert b"400" in answer, answer  # a one-word request line is answered HTTP/0.9 style
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/healthz").status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_a_closed_store_answers_503(store):
    srv = IngestServer(store, token=TOKEN)
    srv.start()
    try:
        store.close()
        r = httpx.post(srv.url + "/v1/events", content=json.dumps(OK), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 503 and r.json()["error"] == "the store is closed"
    finally:
        srv.stop()


# ---- rate limit ----------------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(store):
    with IngestServer(store, token=TOKEN, rate=1, burst=2) as srv, httpx.Client(base_url=srv.url) as c:
        codes = [post(c, OK).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        r = post(c, OK)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "too many requests" in r.json()["error"]
        assert counts(store)[0] == 2
        time.sleep(1.05)
        assert post(c, OK).status_code == 202


# ---- the security counter ---------------------------------------------------------------------------------
def test_security_counters_persist_across_restarts(tmp_path):
    path = tmp_path / "store.db"
    sent = {"failed_login": 0, "blocked_request": 0}
    for round_, kinds in enumerate([["failed_login"] * 3 + ["blocked_request"], ["failed_login"] * 2, ["blocked_request"]]):
        with Store.open(path) as store, IngestServer(store, token=TOKEN) as srv, httpx.Client(base_url=srv.url) as c:
            for kind in kinds:  # one request per event: several samples per restart
                assert post(c, {"type": "security", "kind": kind}).status_code == 202
                sent[kind] += 1
            for kind, total in sent.items():
                series = points(store, "security_events_total", {"kind": kind})
                if total:
                    assert series[-1][1] == total
                    values = [v for _, v in series]
                    assert values == sorted(values)  # a counter: never goes down
                    assert [ts for ts, _ in series] == sorted({ts for ts, _ in series})
    assert sent == {"failed_login": 5, "blocked_request": 2}


def test_security_counter_continues_from_the_store(store):
    store.write([Sample("security_events_total", {"kind": "failed_login"}, now_ms() - 5000, 41.0)])
    with IngestServer(store, token=TOKEN) as srv:
        r = httpx.post(srv.url + "/v1/events", content=json.dumps({"type": "security", "kind": "failed_login"}),
                       headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 202
    assert points(store, "security_events_total")[-1][1] == 42.0


def test_too_many_security_kinds_are_refused(client, store, monkeypatch):
    monkeypatch.setattr(recorder_module, "MAX_SECURITY_KINDS", 2)
    assert post(client, [{"type": "security", "kind": k} for k in ("a", "b")]).status_code == 202
    before = counts(store)
    r = post(client, [OK, {"type": "security", "kind": "c"}])
    assert r.status_code == 400 and "more than 2 distinct" in r.json()["error"]
    assert counts(store) == before


# ---- concurrency --------------------------------------------------------------------------------------------
def test_concurrent_clients_all_succeed(server, store):
    threads, failures = 8, []
    per_thread = 50

    def client_work(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=20) as c:
            for i in range(per_thread):
                batch = [{"type": "rum", "name": "task", "task": f"t{n}", "completed": i % 2 == 0},
                         {"type": "security", "kind": "failed_login"}]
                r = post(c, batch)
                if r.status_code != 202:
                    failures.append(r.status_code)

    workers = [threading.Thread(target=client_work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert failures == []
    for n in range(threads):
        assert len(points(store, "rum_task_completed", {"task": f"t{n}"})) == per_thread
    assert points(store, "security_events_total")[-1][1] == threads * per_thread


def test_connections_beyond_the_cap_get_503_and_slots_come_back(store, monkeypatch, capfd):
    from qbconsole.ingest import server as server_module

    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 2)
    with IngestServer(store, token=TOKEN) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(2)]
        time.sleep(0.2)  # both accepted and waiting for a request line
        with socket.create_connection((host, int(port)), timeout=5) as extra:
            answer = b""
            while chunk := extra.recv(4096):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and json.loads(body)["error"] == "too many connections"
        assert f"Content-Length: {len(body)}".encode() in head
        for s in idle:
            s.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if httpx.get(srv.url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the slots never came back")
    assert "Traceback" not in capfd.readouterr().err
