"""Experiments over the ingest endpoint: exposure and experiment_event events, and POST /v1/assign."""

from __future__ import annotations

import json

import httpx
import pytest

from qbconsole.experiments import lifecycle
from qbconsole.experiments.analyze import analyze
from qbconsole.experiments.assign import assign
from qbconsole.experiments.model import Metric, Spec
from qbconsole.ingest import IngestServer

from helpers import now_ms

TOKEN = "experiments-ingest-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
METRICS = (Metric("conversion", "purchase", "conversion"), Metric("revenue", "purchase", "value"))


@pytest.fixture
def client(store):
    server = IngestServer(store, token=TOKEN, rate=1000)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c
    server.stop()


def create(store, name="bid", start=True, at=None):
    spec = Spec(name, ("control", "treatment"), (50, 50), METRICS, duration_s=14 * 86400)
    return store.transaction(lambda c: lifecycle.create(c, spec, "test", at or now_ms() - 3_600_000, start=start))


def post(client, body, path="/v1/events") -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers=AUTH)


def rows(store) -> tuple[int, int, int]:
    """(exposures, experiment events, samples): what 'nothing stored' is checked against."""
    conn = store.read()
    return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("exposures", "experiment_events", "samples"))


def test_exposures_and_events_are_stored_and_analysed(client, store):
    exp = create(store)
    t = now_ms() - 60_000
    batch = [
        {"type": "exposure", "experiment": "bid", "user": "u1", "ts": t},
        {"type": "exposure", "experiment": "bid", "user": "u2", "ts": t, "variant": assign(exp, "u2")},
        {"type": "experiment_event", "experiment": "bid", "user": "u1", "event": "purchase", "value": 12.5,
         "ts": t - 1},  # before u1's exposure: stored, never counted
        {"type": "experiment_event", "experiment": "bid", "user": "u1", "event": "purchase", "value": 20,
         "ts": t + 10},
        {"type": "experiment_event", "experiment": "bid", "user": "u3", "event": "purchase"},  # never exposed
        {"type": "exposure", "experiment": "bid", "user": "u1", "ts": t + 500},  # later exposure: a no-op
        {"type": "metric", "name": "x_total", "value": 1},
    ]
    r = post(client, batch)
    assert r.status_code == 202 and r.json() == {"accepted": len(batch)}
    assert rows(store) == (2, 3, 1)
    assert store.read().execute("SELECT ts FROM exposures WHERE user_id = 'u1'").fetchone()[0] == t
    analysis = analyze(store.read(), lifecycle.get(store.read(), "bid"))
    arm = analysis.arm(assign(exp, "u1"))
    assert arm.metrics["conversion"].conversions == 1 and arm.metrics["revenue"].total == 20.0
    assert analysis.users == 2


BAD = [
    ("unknown-experiment", {"type": "exposure", "experiment": "nope", "user": "u1"}, 400, "experiment",
     "unknown experiment 'nope'"),
    ("unknown-experiment-event", {"type": "experiment_event", "experiment": "nope", "user": "u1",
                                  "event": "purchase"}, 400, "experiment", "unknown experiment 'nope'"),
    ("draft", {"type": "exposure", "experiment": "draft", "user": "u1"}, 409, "experiment", "is draft"),
    ("draft-event", {"type": "experiment_event", "experiment": "draft", "user": "u1", "event": "purchase"},
     409, "experiment", "has not started"),
    ("missing-user", {"type": "exposure", "experiment": "bid"}, 400, "user", "missing field 'user'"),
    ("user-not-string", {"type": "exposure", "experiment": "bid", "user": 7}, 400, "user", "must be a string"),
    ("empty-user", {"type": "exposure", "experiment": "bid", "user": ""}, 400, "user", "is not a user id"),
    ("bad-event-name", {"type": "experiment_event", "experiment": "bid", "user": "u", "event": "Buy Now"},
     400, "event", "is not an event name"),
    ("value-string", {"type": "experiment_event", "experiment": "bid", "user": "u", "event": "purchase",
                      "value": "12"}, 400, "value", "must be a number"),
    ("unknown-field", {"type": "exposure", "experiment": "bid", "user": "u", "varaint": "a"}, 400, "varaint",
     "unknown field 'varaint'"),
    ("wrong-variant", {"type": "exposure", "experiment": "bid", "user": "u1", "variant": "other"}, 400,
     "variant", "not 'other'"),
]


@pytest.mark.parametrize("event, status, field, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_experiment_event_refuses_the_batch_and_stores_nothing(client, store, event, status, field, message):
    create(store)
    create(store, "draft", start=False)
    good = [{"type": "exposure", "experiment": "bid", "user": "ok-user"},
            {"type": "experiment_event", "experiment": "bid", "user": "ok-user", "event": "purchase", "value": 3},
            {"type": "metric", "name": "m", "value": 1}]
    before = rows(store)
    r = post(client, good + [event])
    assert r.status_code == status, r.text
    body = r.json()
    assert message in body["error"] and (body["index"], body["field"]) == (len(good), field)
    assert rows(store) == before
    assert post(client, good).status_code == 202  # and it keeps serving


def test_assign_endpoint(client, store):
    exp = create(store)
    r = post(client, {"experiment": "bid", "user": "u42"}, "/v1/assign")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["variant"] == assign(exp, "u42") and answer["first_exposure"] is True
    again = post(client, {"experiment": "bid", "user": "u42"}, "/v1/assign").json()
    assert again["variant"] == answer["variant"] and again["first_exposure"] is False
    assert again["exposed_at"] == answer["exposed_at"]
    assert rows(store)[0] == 1
    create(store, "draft", start=False)
    for body, status, message in [
        ({"experiment": "nope", "user": "u1"}, 404, "unknown experiment 'nope'"),
        ({"experiment": "draft", "user": "u1"}, 409, "is draft"),
        ({"experiment": "bid"}, 400, "user must be a user id"),
        ({"experiment": "bid", "user": "u1", "x": 1}, 400, "unknown field 'x'"),
        ([{"experiment": "bid", "user": "u1"}, {"experiment": "bid", "user": "u2"}], 400, "one JSON object"),
    ]:
        r = post(client, body, "/v1/assign")
        assert r.status_code == status and message in r.json()["error"], r.text
    assert rows(store)[0] == 1
    assert client.get("/v1/assign").status_code == 405
    r = client.post("/v1/assign", content=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 401  # the same token as the events
