"""missing_indexes: EXPLAIN QUERY PLAN on a real SQLite file, slow queries from a real HTTP server."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from qbconsole.actions import ActionEngine, approve, get, list_proposals
from qbconsole.actions.indexes import analyse, parameter_count, suggest, tokens
from qbconsole.config import parse_config
from qbconsole.model import Sample
from qbconsole.store import Store

from helpers import serve_http, stop_http

T0 = 1_700_000_000_000
BID_LOOKUP = "SELECT id, user_id, amount FROM bids WHERE auction_id = ? ORDER BY amount DESC LIMIT 10"
TOKEN = "admin-token-for-tests"


def make_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE auctions (id INTEGER PRIMARY KEY, status TEXT NOT NULL, seller_id INTEGER);
            CREATE TABLE bids (id INTEGER PRIMARY KEY, auction_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
                               amount REAL NOT NULL);
            CREATE TABLE "odd name" (id INTEGER PRIMARY KEY, "weird col" TEXT);
        """)
        conn.executemany("INSERT INTO bids(auction_id, user_id, amount) VALUES (?, ?, ?)",
                         [(i % 300, i % 97, float(i)) for i in range(6000)])
    return path


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path / "platform.db")


def plans(db: Path, *sqls: str) -> list[str]:
    return [s.statement for s in analyse(db, [{"name": f"q{i}", "sql": q, "avg_seconds": 0.5}
                                              for i, q in enumerate(sqls)])]


def test_a_full_scan_on_an_equality_column_gives_the_exact_create_index(db):
    assert plans(db, BID_LOOKUP) == ["CREATE INDEX IF NOT EXISTS ix_bids_auction_id ON bids(auction_id)"]
    assert plans(db, "select * from BIDS where USER_ID = 5 and auction_id = ?;") == [
        "CREATE INDEX IF NOT EXISTS ix_bids_user_id_auction_id ON bids(user_id, auction_id)"]
    assert plans(db, "DELETE FROM bids WHERE ? = user_id AND amount BETWEEN 1 AND 2") == [
        "CREATE INDEX IF NOT EXISTS ix_bids_user_id ON bids(user_id)"]
    assert plans(db, "SELECT b.id FROM bids AS b JOIN auctions a ON a.id = b.auction_id "
                     "WHERE a.status = 'open' AND b.user_id = ?") == [
        "CREATE INDEX IF NOT EXISTS ix_bids_user_id ON bids(user_id)"]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM bids WHERE auction_id = ? OR user_id = ?",  # OR: not simple
    "SELECT * FROM bids WHERE amount > ?",  # no equality
    "SELECT count(*) FROM bids",  # no WHERE at all
    "SELECT * FROM bids WHERE auction_id = :id",  # named parameter
    "SELECT * FROM bids WHERE auction_id = ?; DROP TABLE bids",  # two statements
    "SELECT * FROM bids WHERE auction_id IN (SELECT id FROM auctions WHERE status = ?)",  # sub-select
    "SELECT * FROM bids WHERE nonexistent = ?",  # not a column
    "SELECT * FROM bids WHERE id = ?",  # already searched by its key
    "SELECT * FROM bids b JOIN auctions a ON a.id = b.auction_id WHERE user_id = ?",  # unqualified in a join
    "SELECT * FROM \"odd name\" WHERE \"weird col\" = ?",  # not a plain identifier
    "INSERT INTO bids(auction_id, user_id, amount) VALUES (?, ?, ?)",
    "SELECT * FROM bids WHERE auction_id = (1)",
])
def test_anything_not_simple_is_skipped_never_guessed(db, sql):
    assert plans(db, sql) == []


def test_analysis_is_read_only_and_dedups_and_filters_by_speed(db):
    queries = [{"name": "fast", "sql": BID_LOOKUP, "avg_seconds": 0.001},
               {"name": "slow", "sql": BID_LOOKUP + " ", "avg_seconds": 0.4}]
    (s,) = analyse(db, queries)
    assert s.query["name"] == "slow" and s.target == "bids(auction_id)" and s.plan[0] == "SCAN bids"
    assert analyse(db, queries, min_avg_s=0.5) == []
    evil = [{"name": "x", "sql": "DELETE FROM bids WHERE auction_id = ?", "avg_seconds": 1}]
    assert len(analyse(db, evil)) == 1  # EXPLAIN only: nothing deleted
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM bids").fetchone() == (6000,)
    assert parameter_count(tokens("a = ?3 and b = ?")) == 3 and parameter_count(tokens("a = :x")) is None
    conn = sqlite3.connect(db)
    try:
        assert suggest(conn, {"sql": "not sql at all ;;"}) == []
    finally:
        conn.close()


class SlowQueries(BaseHTTPRequestHandler):
    queries: list = []
    created: list = []
    db: Path | None = None

    def log_message(self, *args):
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(403, {"error": "bad token"})
        self._reply(200, {"window_seconds": 300, "queries": SlowQueries.queries})

    def do_POST(self):  # /admin/index, as the demo platform does it
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SlowQueries.created.append(body)
        with sqlite3.connect(SlowQueries.db) as conn:
            conn.execute(f"CREATE INDEX IF NOT EXISTS admin_idx_{body['table']}_{'_'.join(body['columns'])} "
                         f"ON {body['table']}({', '.join(body['columns'])})")
        self._reply(201, {"created": True})


@pytest.fixture
def platform(db):
    SlowQueries.queries = [{"name": "bid_lookup", "sql": BID_LOOKUP, "params": ["int"], "count": 40,
                            "avg_seconds": 0.25, "max_seconds": 0.6},
                           {"name": "auction_get", "sql": "SELECT * FROM auctions WHERE id = ?",
                            "avg_seconds": 0.0001}]
    SlowQueries.created, SlowQueries.db = [], db
    httpd = serve_http(SlowQueries)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    stop_http(httpd)


def engine(store, via: str, env) -> ActionEngine:
    config = parse_config(textwrap.dedent(f"""
        optimizations:
          - name: add_missing_indexes
            expr: db_avg_seconds > 0.1
            action: {{kind: missing_indexes, via: {via}, min_avg: 10ms}}
            cooldown: 0s
            verify: {{expr: db_avg_seconds, better: lower}}
        """), "rules.yaml", env={})
    return ActionEngine(store, config, env=env, interval_s=0)


@pytest.mark.parametrize("via", ["sql", "http"])
def test_engine_proposes_runs_and_then_stops_proposing(tmp_path, db, platform, via):
    store = Store.open(tmp_path / "qb.db")
    env = {"QUICKBID_URL": platform, "QUICKBID_ADMIN_TOKEN": TOKEN, "QUICKBID_DB": f"sqlite:///{db}"}
    try:
        e = engine(store, via, env)
        store.write([Sample("db_avg_seconds", {}, T0, 0.25)])
        e.tick(T0)
        (p,) = list_proposals(store.read())
        assert p.target == "bids(auction_id)" and p.action == "missing_indexes"
        assert p.evidence["statement"] == "CREATE INDEX IF NOT EXISTS ix_bids_auction_id ON bids(auction_id)"
        assert p.evidence["query"]["name"] == "bid_lookup" and p.evidence["plan"][0] == "SCAN bids"
        if via == "sql":
            assert p.spec == {"kind": "sql", "dsn": f"sqlite:///{db}", "statement": p.evidence["statement"],
                              "args": [], "timeout_s": 10.0, "builtin": "missing_indexes"}
        else:
            assert (p.spec["method"], p.spec["url"], p.spec["json"]) == (
                "POST", platform + "/admin/index", {"table": "bids", "columns": ["auction_id"]})
            assert p.spec["bearer_token_env"] == "QUICKBID_ADMIN_TOKEN" and TOKEN not in json.dumps(p.spec)
        approve(store, p.id, "alice", T0 + 1000)
        e.tick(T0 + 2000)
        assert get(store.read(), p.id).state == "succeeded", get(store.read(), p.id).output
        assert SlowQueries.created == ([] if via == "sql" else [{"table": "bids", "columns": ["auction_id"]}])
        assert plans(db, BID_LOOKUP) == []  # SEARCH bids USING INDEX now
        store.write([Sample("db_avg_seconds", {}, T0 + 3000, 0.25)])
        e.tick(T0 + 3000)  # the condition still holds, but no index is missing any more
        assert list_proposals(store.read(), open_only=True) == []
    finally:
        store.close()


def test_an_index_created_meanwhile_makes_the_proposal_stale(tmp_path, db, platform):
    store = Store.open(tmp_path / "qb.db")
    env = {"QUICKBID_URL": platform, "QUICKBID_ADMIN_TOKEN": TOKEN, "QUICKBID_DB": str(db)}
    try:
        e = engine(store, "sql", env)
        store.write([Sample("db_avg_seconds", {}, T0, 0.25)])
        e.tick(T0)
        (p,) = list_proposals(store.read())
        approve(store, p.id, "alice", T0 + 1000)
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE INDEX by_hand ON bids(auction_id)")
        e.tick(T0 + 2000)
        refused = get(store.read(), p.id)
        assert refused.state == "refused" and "no longer scans bids (the index exists now)" in refused.reason
        with sqlite3.connect(db) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
        assert "ix_bids_auction_id" not in names
    finally:
        store.close()


def test_a_wrong_token_is_an_error_of_the_rule_not_a_proposal(tmp_path, db, platform):
    store = Store.open(tmp_path / "qb.db")
    try:
        e = engine(store, "http", {"QUICKBID_URL": platform, "QUICKBID_ADMIN_TOKEN": "wrong", "QUICKBID_DB": str(db)})
        store.write([Sample("db_avg_seconds", {}, T0, 0.25)])
        e.tick(T0)
        assert list_proposals(store.read()) == []
        assert "answered 403" in e.last_errors["add_missing_indexes"]
        e.env = {"QUICKBID_ADMIN_TOKEN": TOKEN, "QUICKBID_DB": str(db)}
        e.tick(T0 + 1)
        assert "no platform URL" in e.last_errors["add_missing_indexes"]
    finally:
        store.close()


def test_an_unreadable_database_is_reported_and_the_tick_goes_on(tmp_path, platform):
    store = Store.open(tmp_path / "qb.db")
    try:
        e = engine(store, "sql", {"QUICKBID_URL": platform, "QUICKBID_ADMIN_TOKEN": TOKEN,
                                  "QUICKBID_DB": str(tmp_path / "missing.db")})
        store.write([Sample("db_avg_seconds", {}, T0, 0.25)])
        e.tick(T0)
        assert "unable to open database file" in e.last_errors["add_missing_indexes"]
        assert not (tmp_path / "missing.db").exists()  # read-only: never created
    finally:
        store.close()
