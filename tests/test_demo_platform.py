"""The QuickBid demo platform, run as a real subprocess on a loopback port with a tiny seed."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qbconsole.demo.cache import LruCache
from qbconsole.demo.capacity import Backends, WorkerPool, WorkerTimeout
from qbconsole.demo.limits import LoginGuard, RateLimiter
from qbconsole.demo.seed import SeedSize, ensure_seeded
from qbconsole.demo.spawn import PlatformProcess, start_platform

TOKEN = "test-admin-token-7f3a"
TINY = ["--users", "60", "--auctions", "30", "--bids", "3000"]
ADMIN = {"Authorization": f"Bearer {TOKEN}"}

COUNTERS = ["http_requests_total", "cache_hits_total", "cache_misses_total", "quickbid_backend_requests_total",
            "quickbid_signups_total", "quickbid_sessions_total", "quickbid_bids_total", "quickbid_orders_total",
            "quickbid_revenue_total", "quickbid_login_failures_total", "quickbid_rate_limited_total"]
GAUGES = ["http_connections", "quickbid_active_users", "db_connections", "cache_size", "quickbid_workers",
          "quickbid_backend_weight", "quickbid_active_auctions", "quickbid_workers_busy", "quickbid_request_queue"]
HISTOGRAMS = ["http_request_duration_seconds", "db_query_duration_seconds"]
ROUTES = {"/healthz", "/metrics", "/api/signup", "/api/login", "/api/auctions", "/api/auctions/{id}",
          "/api/auctions/{id}/bids", "/api/checkout", "/admin/config", "/admin/workers", "/admin/cache",
          "/admin/index", "/admin/weights", "/admin/slow_queries", "/admin/fault", "unmatched"}


def launch(tmp_path, name: str, *args: str) -> tuple[PlatformProcess, str, str]:
    db = str(tmp_path / f"{name}.db")
    log = tmp_path / f"{name}.log"
    env = {**__import__("os").environ, "QUICKBID_ADMIN_TOKEN": TOKEN}
    with open(log, "wb") as err:
        proc = start_platform(db, [*TINY, *args], env=env, stderr=err)
    return proc, db, str(log)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    proc, db, log = launch(tmp_path_factory.mktemp("quickbid"), "shared")
    yield proc, db, log
    assert proc.stop() == 0  # SIGTERM is a clean shutdown


@pytest.fixture
def fresh(tmp_path):
    """A platform of this test's own, for tests that change what cannot be undone."""
    started: list[PlatformProcess] = []

    def make(*args: str) -> tuple[PlatformProcess, str, str]:
        proc, db, log = launch(tmp_path, f"own{len(started)}", *args)
        started.append(proc)
        return proc, db, log

    yield make
    for proc in started:
        proc.stop()


def client(url: str, ip: str = "127.0.0.1") -> httpx.Client:
    """A client with its own loopback source address, so its rate-limit bucket is its own."""
    return httpx.Client(base_url=url, timeout=10, trust_env=False,
                        transport=httpx.HTTPTransport(local_address=ip))


def metrics(http: httpx.Client) -> dict[str, dict]:
    text = http.get("/metrics").text
    return {f.name: {"type": f.type, "samples": f.samples} for f in text_string_to_metric_families(text)}


def value(http: httpx.Client, sample: str, **labels: str) -> float:
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError(sample)


def login(http: httpx.Client, email: str, password: str = "correct horse") -> dict[str, str]:
    assert http.post("/api/signup", json={"email": email, "password": password}).status_code == 201
    reply = http.post("/api/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


# -- the public API ---------------------------------------------------------------------------


def test_ready_file_names_url_and_pid_and_health(platform):
    proc, _, _ = platform
    assert proc.url.startswith("http://127.0.0.1:") and proc.pid == proc.proc.pid
    with client(proc.url) as http:
        reply = http.get("/healthz")
    assert reply.status_code == 200 and reply.json() == {"status": "ok"}


def test_signup_login_and_failures(platform):
    with client(platform[0].url, "127.0.0.21") as http:
        sessions = value(http, "quickbid_sessions_total")
        failures = value(http, "quickbid_login_failures_total")
        signups = value(http, "quickbid_signups_total")
        headers = login(http, "ada@example.com")
        assert value(http, "quickbid_signups_total") == signups + 1
        assert value(http, "quickbid_sessions_total") == sessions + 1
        assert value(http, "quickbid_active_users") >= 1
        again = http.post("/api/signup", json={"email": "ada@example.com", "password": "another one"})
        assert again.status_code == 409 and "exists" in again.json()["error"]
        wrong = http.post("/api/login", json={"email": "ada@example.com", "password": "wrong password"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid email or password"
        assert value(http, "quickbid_login_failures_total") == failures + 1
        seeded = http.post("/api/login", json={"email": "user000001@seed.quickbid.test", "password": "x"})
        assert seeded.status_code == 401  # seeded accounts have no usable password
        for body, needle in [({"email": "not-an-email", "password": "long enough"}, "valid email"),
                             ({"email": "b@example.com", "password": "short"}, "8..128"),
                             ({"email": "b@example.com"}, "missing field 'password'"),
                             ({"email": "b@example.com", "password": "long enough", "admin": True}, "unknown")]:
            reply = http.post("/api/signup", json=body)
            assert reply.status_code == 400 and needle in reply.json()["error"], (body, reply.text)
        bogus = http.get("/api/auctions", headers={"Authorization": "Bearer not-a-session"})
        assert bogus.status_code == 401
        assert http.get("/api/auctions", headers=headers).status_code == 200


@pytest.mark.parametrize("body, needle", [
    (b"{not json", "invalid JSON"), (b"[1, 2]", "must be a JSON object"), (b"", "empty body"),
    (b"\xff\xfe", "UTF-8")])
def test_bad_json_is_400_with_reason(platform, body, needle):
    with client(platform[0].url, "127.0.0.22") as http:
        reply = http.post("/api/login", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and needle in reply.json()["error"]


def test_auction_list_is_paginated(platform):
    with client(platform[0].url, "127.0.0.23") as http:
        first = http.get("/api/auctions", params={"per_page": 5}).json()
        second = http.get("/api/auctions", params={"per_page": 5, "page": 2}).json()
        assert len(first["auctions"]) == 5 and first["page"] == 1
        assert first["pages"] == -(-first["total"] // 5) and first["total"] <= 30
        assert not {a["id"] for a in first["auctions"]} & {a["id"] for a in second["auctions"]}
        assert [a["ends_at"] for a in first["auctions"]] == sorted(a["ends_at"] for a in first["auctions"])
        assert all(a["open"] for a in first["auctions"])
        assert value(http, "quickbid_active_auctions") == first["total"]
        for params in ({"page": 0}, {"per_page": 500}, {"page": "x"}):
            reply = http.get("/api/auctions", params=params)
            assert reply.status_code == 400 and "query parameter" in reply.json()["error"]


def test_auction_view_unknown_and_malformed_ids(platform):
    with client(platform[0].url, "127.0.0.24") as http:
        view = http.get("/api/auctions/3").json()
        amounts = [b["amount"] for b in view["top_bids"]]
        assert view["auction"]["id"] == 3 and len(amounts) <= 10 and amounts == sorted(amounts, reverse=True)
        if amounts:
            assert amounts[0] == view["auction"]["current_price"]
        missing = http.get("/api/auctions/99999")
        assert missing.status_code == 404 and "99999" in missing.json()["error"]
        for bad in ("abc", "0", "-4", "1e3"):
            reply = http.get(f"/api/auctions/{bad}")
            assert reply.status_code == 400 and "positive integer" in reply.json()["error"]


def test_bids_must_beat_the_top_and_update_the_view(platform):
    with client(platform[0].url, "127.0.0.25") as http:
        auction = http.get("/api/auctions", params={"per_page": 1}).json()["auctions"][0]
        path = f"/api/auctions/{auction['id']}/bids"
        anonymous = http.post(path, json={"amount": auction["current_price"] + 1})
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
        headers = login(http, "bidder@example.com")
        low = http.post(path, json={"amount": auction["current_price"]}, headers=headers)
        assert low.status_code == 409 and low.json()["current_price"] == auction["current_price"]
        for amount in ("ten", True, None, -5, float("1e300")):
            reply = http.post(path, content=json.dumps({"amount": amount}).encode(), headers=headers)
            assert reply.status_code == 400, (amount, reply.text)
        bids = value(http, "quickbid_bids_total")
        http.get(f"/api/auctions/{auction['id']}")  # cached now
        amount = round(auction["current_price"] + 2.5, 2)
        placed = http.post(path, json={"amount": amount}, headers=headers)
        assert placed.status_code == 201 and placed.json()["amount"] == amount
        assert value(http, "quickbid_bids_total") == bids + 1
        view = http.get(f"/api/auctions/{auction['id']}").json()
        assert view["auction"]["current_price"] == amount and view["top_bids"][0]["amount"] == amount
        assert http.post("/api/auctions/99999/bids", json={"amount": 5}, headers=headers).status_code == 404


def test_checkout_buys_now_once_and_counts_revenue(platform):
    with client(platform[0].url, "127.0.0.26") as http:
        seller = login(http, "seller@example.com")
        buyer = login(http, "buyer@example.com")
        listing = {"title": "Signed test lot", "category": "collectibles", "starting_price": 10,
                   "buy_now_price": 42.5, "duration_s": 600}
        bad = http.post("/api/auctions", json={**listing, "buy_now_price": 5}, headers=seller)
        assert bad.status_code == 422
        created = http.post("/api/auctions", json=listing, headers=seller)
        assert created.status_code == 201
        auction_id = created.json()["auction_id"]
        assert http.post("/api/checkout", json={"auction_id": auction_id}, headers=seller).status_code == 403
        orders, revenue = value(http, "quickbid_orders_total"), value(http, "quickbid_revenue_total")
        bought = http.post("/api/checkout", json={"auction_id": auction_id}, headers=buyer)
        assert bought.status_code == 201 and bought.json()["kind"] == "buy_now" and bought.json()["amount"] == 42.5
        assert value(http, "quickbid_orders_total") == orders + 1
        assert value(http, "quickbid_revenue_total") == pytest.approx(revenue + 42.5)
        again = http.post("/api/checkout", json={"auction_id": auction_id}, headers=buyer)
        assert again.status_code == 409 and "sold" in again.json()["error"]
        assert http.post("/api/checkout", json={"auction_id": 99999}, headers=buyer).status_code == 404
        assert http.post("/api/checkout", json={"auction_id": "1"}, headers=buyer).status_code == 400
        assert http.post("/api/checkout", json={"auction_id": 1}).status_code == 401


def test_unknown_routes_methods_and_oversize_bodies(platform):
    with client(platform[0].url, "127.0.0.27") as http:
        assert http.get("/nowhere").status_code == 404
        wrong = http.get("/api/signup")
        assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
        huge = http.post("/api/signup", content=b"x" * (70 * 1024))
        assert huge.status_code == 413 and "too large" in huge.json()["error"]
        assert http.get("/healthz").status_code == 200
        assert http.get("/api/auctions/3").status_code == 200
        routes = {s.labels["route"] for s in metrics(http)["http_requests"]["samples"]}
    assert routes <= ROUTES and {"unmatched", "/api/signup", "/api/auctions/{id}"} <= routes


# -- capacity: rate limits, workers, cache ----------------------------------------------------


def test_rate_limit_answers_429_per_client(fresh):
    proc, _, _ = fresh("--rate-limit", "1", "--rate-burst", "3")
    with client(proc.url, "127.0.0.31") as greedy, client(proc.url, "127.0.0.32") as other:
        statuses = [greedy.get("/api/auctions", params={"per_page": 1}) for _ in range(8)]
        limited = [r for r in statuses if r.status_code == 429]
        assert len(limited) >= 4 and int(limited[0].headers["Retry-After"]) >= 1
        assert "rate limit" in limited[0].json()["error"]
        assert other.get("/api/auctions", params={"per_page": 1}).status_code == 200
        assert value(other, "quickbid_rate_limited_total") == len(limited)
        assert value(other, "http_requests_total", route="/api/auctions", status="429") == len(limited)


def test_workers_bound_concurrency(fresh):
    proc, _, _ = fresh("--service-ms", "80", "--weights", "1,1,1")
    url, n = proc.url, 6

    def one(i: int) -> int:
        with client(url, f"127.0.0.{40 + i}") as http:
            return http.get("/api/auctions", params={"per_page": 1}).status_code

    def timed(workers: int) -> tuple[float, dict[str, float]]:
        with client(url) as http:
            assert http.post("/admin/workers", json={"workers": workers}, headers=ADMIN).status_code == 200
            with ThreadPoolExecutor(n) as pool:
                started = time.perf_counter()
                futures = [pool.submit(one, i) for i in range(n)]
                time.sleep(0.15)
                live = {k: value(http, k) for k in ("quickbid_workers_busy", "quickbid_request_queue",
                                                    "quickbid_workers")}
                assert all(f.result() == 200 for f in futures)
            return time.perf_counter() - started, live

    serial, live1 = timed(1)
    parallel, live4 = timed(4)
    assert serial >= n * 0.08 * 0.95, serial  # one worker: one request at a time
    assert parallel < serial * 0.6, (parallel, serial)
    assert live1["quickbid_workers"] == 1 and live1["quickbid_workers_busy"] <= 1
    assert live1["quickbid_request_queue"] >= 2  # the others wait for the one worker
    assert live4["quickbid_workers"] == 4


def test_cache_hits_misses_and_resize(platform):
    with client(platform[0].url, "127.0.0.28") as http:
        assert http.post("/admin/cache", json={"size": 2}, headers=ADMIN).json()["size"] == 2
        try:
            hits, misses = value(http, "cache_hits_total"), value(http, "cache_misses_total")
            for auction_id in (5, 5, 6, 7, 5):  # miss, hit, miss, miss (evicts 5), miss
                assert http.get(f"/api/auctions/{auction_id}").status_code == 200
            assert value(http, "cache_hits_total") == hits + 1
            assert value(http, "cache_misses_total") == misses + 4
            assert value(http, "cache_size") == 2
        finally:
            http.post("/admin/cache", json={"size": 20}, headers=ADMIN)


# -- admin ------------------------------------------------------------------------------------

ADMIN_ROUTES = [("POST", "/admin/workers"), ("POST", "/admin/cache"), ("POST", "/admin/index"),
                ("POST", "/admin/weights"), ("GET", "/admin/slow_queries"), ("POST", "/admin/fault"),
                ("GET", "/admin/config")]


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
def test_admin_needs_the_token(platform, method, path):
    with client(platform[0].url, "127.0.0.29") as http:
        missing = http.request(method, path, json={})
        wrong = http.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        basic = http.request(method, path, json={}, headers={"Authorization": f"Basic {TOKEN}"})
    assert missing.status_code == 401 and basic.status_code == 401
    assert wrong.status_code == 403 and wrong.json()["error"] == "admin token is not valid"


@pytest.mark.parametrize("path, body, needle", [
    ("/admin/workers", {"workers": 0}, "between 1 and 20"),
    ("/admin/workers", {"workers": 21}, "between 1 and 20"),
    ("/admin/workers", {"workers": "4"}, "must be an integer"),
    ("/admin/workers", {"workers": 2.5}, "must be an integer"),
    ("/admin/cache", {"size": -1}, "between 0"),
    ("/admin/weights", {"a": 1, "b": 1}, "missing weight"),
    ("/admin/weights", {"a": 1, "b": 1, "c": 1, "d": 1}, "unknown backend"),
    ("/admin/weights", {"a": 0, "b": 0, "c": 0}, "positive"),
    ("/admin/index", {"table": "bids; DROP TABLE users", "columns": ["auction_id"]}, "table must be"),
    ("/admin/index", {"table": "bids", "columns": ["auction_id\" ) ; DROP TABLE users --"]}, "unknown column"),
    ("/admin/index", {"table": "bids", "columns": []}, "1 to 4"),
    ("/admin/index", {"table": "bids", "columns": ["amount", "amount"]}, "repeat"),
    ("/admin/fault", {"error_rate": 2, "duration_s": 5}, "between 0 and 1"),
    ("/admin/fault", {"error_rate": 0.5}, "duration_s"),
])
def test_admin_validation(platform, path, body, needle):
    with client(platform[0].url, "127.0.0.30") as http:
        reply = http.post(path, json=body, headers=ADMIN)
        assert reply.status_code == 400 and needle in reply.json()["error"], reply.text
        config = http.get("/admin/config", headers=ADMIN).json()
    assert config["workers"] == 2 and config["weights"] == {"a": 70, "b": 20, "c": 10}
    assert not [i for i in config["indexes"] if i["table"] == "bids"]


def test_admin_changes_show_in_metrics_and_log(platform):
    proc, _, log = platform
    with client(proc.url, "127.0.0.33") as http:
        try:
            assert http.post("/admin/workers", json={"workers": 5}, headers=ADMIN).json()["workers"] == 5
            assert http.post("/admin/weights", json={"a": 1, "b": 1, "c": 2}, headers=ADMIN).status_code == 200
            assert value(http, "quickbid_workers") == 5
            assert value(http, "quickbid_backend_weight", backend="c") == 0.5
        finally:
            http.post("/admin/workers", json={"workers": 2}, headers=ADMIN)
            http.post("/admin/weights", json={"a": 70, "b": 20, "c": 10}, headers=ADMIN)
    text = open(log, encoding="utf-8").read()
    assert "quickbid admin: workers 2 -> 5" in text and "backend weights a=70/b=20/c=10 -> a=1/b=1/c=2" in text


def test_fault_injects_errors_and_slow_queries(platform):
    with client(platform[0].url, "127.0.0.34") as http:
        try:
            state = http.post("/admin/fault", json={"error_rate": 1, "db_delay_ms": 0, "duration_s": 30},
                              headers=ADMIN).json()
            assert state["active"] and state["error_rate"] == 1
            failed = http.get("/api/auctions")
            assert failed.status_code == 500 and "injected" in failed.json()["error"]
            assert http.get("/healthz").status_code == 200
            http.post("/admin/fault", json={"error_rate": 0, "db_delay_ms": 120, "duration_s": 30}, headers=ADMIN)
            before = value(http, "db_query_duration_seconds_sum", query="auction_list")
            started = time.perf_counter()
            assert http.get("/api/auctions").status_code == 200  # two statements, each delayed
            assert time.perf_counter() - started >= 0.24
            assert value(http, "db_query_duration_seconds_sum", query="auction_list") - before >= 0.12
        finally:
            cleared = http.post("/admin/fault", json={"error_rate": 0, "db_delay_ms": 0}, headers=ADMIN).json()
        assert cleared["active"] is False
        assert http.get("/api/auctions").status_code == 200


def test_missing_index_is_real_until_admin_adds_it(fresh):
    proc, db, log = fresh()
    with client(proc.url) as http:
        assert http.get("/api/auctions/4").status_code == 200
        slow = http.get("/admin/slow_queries", headers=ADMIN).json()["queries"]
        lookup = next(q for q in slow if q["name"] == "bid_lookup")
        assert "FROM bids WHERE auction_id = ?" in lookup["sql"] and lookup["params"] == ["int"]
        assert lookup["count"] >= 1 and lookup["max_seconds"] >= lookup["avg_seconds"] > 0

        def plan() -> str:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                rows = conn.execute("EXPLAIN QUERY PLAN " + lookup["sql"], [None] * len(lookup["params"]))
                return " | ".join(r[3] for r in rows)

        assert "SCAN bids" in plan()
        made = http.post("/admin/index", json={"table": "bids", "columns": ["auction_id"]}, headers=ADMIN)
        assert made.status_code == 201 and made.json()["index"] == "admin_idx_bids_auction_id"
        assert "SEARCH bids USING INDEX admin_idx_bids_auction_id (auction_id=?)" in plan()
        again = http.post("/admin/index", json={"table": "bids", "columns": ["auction_id"]}, headers=ADMIN)
        assert again.status_code == 200 and again.json()["created"] is False
    assert "index created admin_idx_bids_auction_id on bids(auction_id)" in open(log, encoding="utf-8").read()
    proc.stop()
    # a restart reuses the seeded file and restores the shipped weakness
    with open(log, "ab") as err:
        again_proc = start_platform(db, TINY, stderr=err)
    try:
        assert "SCAN bids" in plan()
    finally:
        again_proc.stop()
    text = open(log, encoding="utf-8").read()
    assert "quickbid: reused" in text and "dropped index admin_idx_bids_auction_id" in text


def test_metrics_have_every_platform_series_with_its_type(platform):
    with client(platform[0].url, "127.0.0.35") as http:
        http.get("/api/auctions/2")
        families = metrics(http)
    samples = {s.name: s for f in families.values() for s in f["samples"]}
    for name in COUNTERS:
        assert families[name[: -len("_total")]]["type"] == "counter" and name in samples, name
    for name in GAUGES:
        assert families[name]["type"] == "gauge" and name in samples, name
    for name in HISTOGRAMS:
        assert families[name]["type"] == "histogram", name
        assert {f"{name}_bucket", f"{name}_sum", f"{name}_count"} <= set(samples)
    buckets = {float(s.labels["le"]) for s in families["http_request_duration_seconds"]["samples"]
               if s.name.endswith("_bucket")}
    assert min(buckets) <= 0.005 and 10.0 in buckets
    assert {s.labels["query"] for s in families["db_query_duration_seconds"]["samples"]} >= {"bid_lookup"}
    assert set(samples["http_requests_total"].labels) == {"route", "method", "status"}
    assert {s.labels["backend"] for s in families["quickbid_backend_weight"]["samples"]} == {"a", "b", "c"}
    assert not any(name.endswith("_created") for name in samples)
    assert samples["http_connections"].value >= 1  # this scrape is in flight


# -- building blocks ---------------------------------------------------------------------------


def test_seeding_is_deterministic_reused_and_refuses_foreign_files(tmp_path):
    size = SeedSize(users=20, auctions=8, bids=400)
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    first = ensure_seeded(a, seed=7, size=size, now=1_700_000_000)
    ensure_seeded(b, seed=7, size=size, now=1_700_000_000)
    assert first["reused"] is False and first["bids"] == 400
    dump = [sqlite3.connect(p).execute("SELECT * FROM bids ORDER BY id").fetchall() for p in (a, b)]
    assert dump[0] == dump[1]
    assert ensure_seeded(a, seed=7, size=size)["reused"] is True
    other = str(tmp_path / "other.db")
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE precious (x)")
    with pytest.raises(ValueError, match="not a QuickBid demo database"):
        ensure_seeded(other)


def test_worker_pool_queues_beyond_its_size():
    pool = WorkerPool(1)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool.hold():
            entered.set()
            release.wait(2)

    def wait_then_hold() -> None:
        with pool.hold():
            admitted.set()
            release.wait(2)

    admitted = threading.Event()
    threads = [threading.Thread(target=hold), threading.Thread(target=wait_then_hold)]
    threads[0].start()
    entered.wait(2)
    threads[1].start()
    time.sleep(0.05)
    assert (pool.busy, pool.waiting) == (1, 1) and not admitted.is_set()
    pool.resize(2)  # a bigger pool admits the waiter at once
    assert admitted.wait(1) and (pool.busy, pool.waiting) == (2, 0)
    release.set()
    for thread in threads:
        thread.join(2)
    assert pool.busy == 0
    full = WorkerPool(1)
    with full.hold():
        with pytest.raises(WorkerTimeout, match="no worker"):
            with full.hold(timeout=0.05):
                pass
    assert (full.busy, full.waiting) == (0, 0)
    with pytest.raises(ValueError):
        pool.resize(21)


def test_cache_limiter_guard_and_backends():
    cache = LruCache(2)
    cache.put(1, "a"), cache.put(2, "b"), cache.get(1), cache.put(3, "c")
    assert cache.get(2) is None and cache.get(1) == "a" and (cache.hits, cache.misses) == (2, 1)
    cache.resize(1)
    assert len(cache) == 1 and cache.get(3) is None  # 1 was used last; 3 was evicted
    limiter = RateLimiter(rate=2, burst=2)
    assert [limiter.allow("k", now=0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("k", now=0.5) and not limiter.allow("k", now=0.5)
    guard = LoginGuard(max_failures=3, window=60, block_seconds=10)
    assert [guard.failed("ip", now=t) for t in (0, 1, 2)] == [False, False, True]
    assert guard.blocked_for("ip", now=5) == pytest.approx(7) and guard.blocked_for("ip", now=13) == 0
    backends = Backends({"a": 70, "b": 20, "c": 10}, seed=3)
    picks = [backends.pick() for _ in range(5000)]
    assert 0.66 < picks.count("a") / 5000 < 0.74 and 0.07 < picks.count("c") / 5000 < 0.13
    assert backends.extra_latency("a") > backends.extra_latency("b") > backends.extra_latency("c")


def test_a_client_hanging_up_mid_answer_is_not_a_traceback(capsys):
    from qbconsole.demo.platform import PlatformServer

    server = object.__new__(PlatformServer)  # handle_error needs no platform state
    for error, shown in ((BrokenPipeError(32, "Broken pipe"), False), (ConnectionResetError(104, "reset"), False),
                         (ValueError("a real bug"), True)):
        try:
            raise error
        except Exception:
            server.handle_error(None, ("127.0.0.1", 40000))
        assert ("Traceback" in capsys.readouterr().err) is shown, error
