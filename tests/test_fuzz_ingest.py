"""Fuzzing the ingest endpoint over real HTTP: every bad body gets a 4xx and stores nothing.

Malformed JSON (valid batches with bytes cut out or thrown in), wrongly typed
fields (each field of each event type given a value of another type), non-UTF-8
bytes inside otherwise valid bodies, oversized bodies (with and without
Content-Length), unsupported content types, and NDJSON with one bad line. A
batch holding one bad event among good ones is refused whole. Then bounded
concurrent clients send a mix of all of these at once. Throughout: the answer
is a 4xx with a JSON reason, the store's rows are the same before and after (and
the server's security counter did not move), and at the end the server still
answers ``/healthz`` 200 and takes a good batch.
"""

from __future__ import annotations

import json
import random
import threading

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qbconsole.ingest import IngestServer
from qbconsole.store import Store

TOKEN = "fuzz-ingest-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 4096
TABLES = ("samples", "series", "experiments", "exposures", "experiment_events")


GOOD = [
    {"type": "rum", "name": "page_view", "page": "auction", "page_load_seconds": 1.25, "interaction_seconds": 0.2},
    {"type": "rum", "name": "session_end", "session_duration_seconds": 83.5, "bounced": False},
    {"type": "rum", "name": "survey", "satisfaction": 4, "nps": 9},
    {"type": "rum", "name": "task", "task": "place_bid", "completed": True},
    {"type": "security", "kind": "failed_login", "source_ip": "203.0.113.9"},
    {"type": "metric", "name": "quickbid_queue_depth", "labels": {"queue": "bids"}, "value": 1.5},
]

# What each field must be, and values of every other JSON type (never null: null means "absent").
NUMBER = ["1.5", "", True, False, [1], {"v": 1}]
INTEGER = ["4", 4.5, True, [4], {"v": 4}]
BOOLEAN = [0, 1, "true", "false", [True], {"v": True}]
STRING = [1, 2.5, True, ["auction"], {"v": "x"}]
WRONG = {
    "type": [1, True, ["rum"], {"t": "rum"}, "Rum", "click"],
    "name": STRING + ["9lives", "a b"],
    "page": STRING + ["a b", ""],
    "page_load_seconds": NUMBER + [-1, 1e9],
    "interaction_seconds": NUMBER,
    "session_duration_seconds": NUMBER,
    "bounced": BOOLEAN,
    "satisfaction": INTEGER + [0, 6],
    "nps": INTEGER + [11, -1],
    "task": STRING,
    "completed": BOOLEAN,
    "kind": STRING + ["Failed Login"],
    "source_ip": STRING + ["999.1.1.1"],
    "labels": [[["queue", "bids"]], "queue=bids", 3, True, {"queue": 1}, {"__x": "y"}],
    "value": ["1.5", True, [1.5], {"v": 1}],
    "ts": ["1700000000000", 1.5, True, [1], {"ts": 1}],
}
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\x80"]
JUNK = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"nul", b"NaN", b"'", b"\x00", b"//", b"{}{"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("ingest") / "qb.db")
    srv = IngestServer(store, token=TOKEN, rate=100_000, max_body=MAX_BODY)
    srv.start()
    srv.client = httpx.Client(base_url=srv.url, timeout=10)  # one client: its TLS set-up is slow to repeat
    yield srv
    srv.client.close()
    srv.stop()
    store.close()


def counts(store: Store) -> tuple[int, ...]:
    conn = store.read()
    return tuple(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES)


def security_total(store: Store) -> float:
    points = [p for _, pts in store.select("security_events_total", 0, 2 ** 62, {"kind": "failed_login"})
              for p in pts]
    return points[-1][1] if points else 0.0


def send(client: httpx.Client, body, content_type: str | bytes | None = "application/json") -> httpx.Response:
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post("/v1/events", content=body, headers=headers)


def refused(server, body, content_type: str | None = "application/json", statuses=(400,)) -> None:
    """Send one bad body: a 4xx among ``statuses`` with a JSON reason, and nothing stored."""
    before, security = counts(server.store), security_total(server.store)
    r = send(server.client, body, content_type)
    assert r.status_code in statuses, (r.status_code, r.text, body if not callable(body) else "stream")
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    assert counts(server.store) == before
    assert security_total(server.store) == security


FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=5), st.data())
def test_wrongly_typed_fields(server, batch, data):
    batch = [dict(e) for e in batch]
    index = data.draw(st.integers(0, len(batch) - 1))
    event = batch[index]
    field = data.draw(st.sampled_from(sorted(set(event) | {"ts"})))
    event[field] = data.draw(st.sampled_from(WRONG[field]))
    refused(server, json.dumps(batch).encode())


@FUZZ
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=5),
       st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 2), st.sampled_from(JUNK)), min_size=1, max_size=3))
def test_malformed_json(server, batch, edits):
    body = json.dumps(batch).encode()
    for pos, kind, junk in edits:
        pos %= len(body) + 1
        body = body[:pos] if kind == 0 else body[:pos] + junk + body[pos:] if kind == 1 else \
            body[:pos] + body[pos + 1:]
    try:
        json.loads(body)
        assume(False)  # still JSON: the typed tests cover what it may mean
    except ValueError:
        pass
    refused(server, body)


@FUZZ
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=5), st.integers(0, 10 ** 6),
       st.sampled_from(BAD_UTF8), st.sampled_from(["application/json", "application/x-ndjson"]))
def test_non_utf8_bodies(server, batch, where, bad, content_type):
    if content_type == "application/json":
        body = json.dumps(batch).encode()
    else:
        body = b"\n".join(json.dumps(e).encode() for e in batch)
    quotes = [i for i, c in enumerate(body) if c == ord('"')]
    pos = quotes[where % len(quotes)] + 1  # inside a string, where a client would put it
    refused(server, body[:pos] + bad + body[pos:], content_type)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(MAX_BODY + 1, 4 * MAX_BODY), st.booleans())
def test_oversized_bodies(server, size, chunked):
    event = json.dumps(GOOD[0]).encode()
    body = b"[" + b",".join([event] * (size // len(event) + 1)) + b"]"
    if chunked:
        chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        refused(server, iter(chunks), statuses=(413,))
    else:
        refused(server, body, statuses=(413,))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.none(), st.sampled_from(["text/plain", "application/xml", "application/json; charset=latin-1",
                                             "application/jsonx", "multipart/form-data; boundary=x", "*/*",
                                             "application/json; charset=utf-16"]),
                 st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)
                 .filter(lambda t: "json" not in t.lower())))
def test_unsupported_content_types(server, content_type):
    body = json.dumps(GOOD).encode()
    header = content_type.encode("latin-1") if content_type is not None else None  # bytes as sent
    refused(server, body, header, statuses=(415,))


@FUZZ
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=5), st.integers(0, 10 ** 6),
       st.sampled_from([b"{oops", b"[1, 2]", b"42", b'{"type": "rum"}', b"\xff", b"null"]))
def test_ndjson_with_one_bad_line(server, batch, where, bad):
    lines = [json.dumps(e).encode() for e in batch]
    lines.insert(where % (len(lines) + 1), bad)
    refused(server, b"\n".join(lines), "application/x-ndjson")


def bad_bodies(rng: random.Random, n: int) -> list[tuple[bytes, str | None]]:
    """A mix of every kind of bad body, from a seeded generator (for the concurrent clients)."""
    out = []
    for i in range(n):
        batch = [dict(rng.choice(GOOD)) for _ in range(rng.randint(1, 4))]
        kind = i % 5
        if kind == 0:
            event = rng.choice(batch)
            field = rng.choice(sorted(event))
            event[field] = rng.choice(WRONG[field])
            out.append((json.dumps(batch).encode(), "application/json"))
        elif kind == 1:
            body = json.dumps(batch).encode()
            out.append((body[: rng.randint(1, len(body) - 1)], "application/json"))
        elif kind == 2:
            body = json.dumps(batch).encode()
            pos = body.index(b'"') + 1
            out.append((body[:pos] + rng.choice(BAD_UTF8) + body[pos:], "application/json"))
        elif kind == 3:
            out.append((b"[" + b",".join([json.dumps(GOOD[0]).encode()] * 80) + b"]", "application/json"))
        else:
            out.append((json.dumps(batch).encode(), rng.choice([None, "text/plain", "application/xml"])))
    return out


def test_concurrent_bad_clients_store_nothing_and_the_server_keeps_serving(server):
    rng = random.Random(9)
    clients, per_client = 8, 25
    work = [bad_bodies(random.Random(rng.random()), per_client) for _ in range(clients)]
    before, security = counts(server.store), security_total(server.store)
    answers: list[int] = []
    lock = threading.Lock()

    def client(bodies) -> None:
        with httpx.Client(base_url=server.url, timeout=20) as http:
            for body, content_type in bodies:
                try:
                    status = send(http, body, content_type).status_code
                except httpx.HTTPError as err:
                    status = f"{type(err).__name__}"
                with lock:
                    answers.append(status)

    threads = [threading.Thread(target=client, args=(bodies,)) for bodies in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == clients * per_client
    assert all(isinstance(s, int) and 400 <= s < 500 for s in answers), sorted(set(map(str, answers)))
    assert counts(server.store) == before and security_total(server.store) == security
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        r = send(http, json.dumps(GOOD).encode())
        assert r.status_code == 202 and r.json() == {"accepted": len(GOOD)}
    assert counts(server.store)[0] > before[0]
    assert security_total(server.store) == security + 1
