"""The `sql` source: rows to samples, read-only connections, timeouts, DSNs and config."""

from __future__ import annotations

import os
import sqlite3
import textwrap
import time
from types import SimpleNamespace

import pytest

from qbconsole.collect import Scheduler, SqlSource, build_sources
from qbconsole.collect import sql as sql_module
from qbconsole.config import ConfigError, parse_config
from qbconsole.model import Sample
from qbconsole.store import Store

from helpers import wait_for

NOW = 1_700_000_000_000


@pytest.fixture
def db(tmp_path):
    """A small auction database: bids per auction with a status column."""
    path = tmp_path / "quickbid.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE bids (auction TEXT, status TEXT, amount REAL, bidder INTEGER);
        INSERT INTO bids VALUES ('a1', 'open', 10.5, 1), ('a1', 'open', 12.0, 2),
                                ('a2', 'closed', 99.0, 1), ('a3', NULL, 5.0, 3);
    """)
    conn.commit()
    conn.close()
    return path


def source(db_path, query, **options) -> SqlSource:
    return SqlSource(name="bids", interval=5, timeout=2, jitter=0, dsn=f"sqlite:///{db_path}", query=query, **options)


def by_key(samples: list[Sample]) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}


def test_one_value_column_names_the_metric_and_other_columns_are_labels(db):
    src = source(db, "SELECT auction, count(*) AS n FROM bids GROUP BY auction", metric="quickbid_bids")
    samples = src.collect(NOW)
    assert by_key(samples) == {
        ("quickbid_bids", (("auction", "a1"),)): 2.0,
        ("quickbid_bids", (("auction", "a2"),)): 1.0,
        ("quickbid_bids", (("auction", "a3"),)): 1.0,
    }
    assert all(s.ts == NOW and isinstance(s.value, float) for s in samples)
    src.close()


def test_several_value_columns_get_suffixed_names_and_null_labels_are_left_out(db):
    src = source(db, "SELECT status, count(*) AS bids, sum(amount) AS amount FROM bids GROUP BY status",
                 metric="auction", labels={"env": "test"})
    got = by_key(src.collect(NOW))
    assert got[("auction_bids", (("env", "test"), ("status", "open")))] == 2.0
    assert got[("auction_amount", (("env", "test"), ("status", "open")))] == 22.5
    assert got[("auction_amount", (("env", "test"), ("status", "closed")))] == 99.0
    assert got[("auction_bids", (("env", "test"),))] == 1.0  # the NULL status row: no status label
    assert len(got) == 6


def test_explicit_value_and_label_columns(db):
    src = source(db, "SELECT auction, bidder, amount, status FROM bids WHERE status = 'open'",
                 metric="bid", value_columns=["amount"], label_columns=["bidder"])
    got = by_key(src.collect(NOW))
    # bidder is numeric but named a label; status and auction are neither, so left out
    assert got == {("bid", (("bidder", "1"),)): 10.5, ("bid", (("bidder", "2"),)): 12.0}


def test_a_numeric_text_cell_in_a_named_value_column_is_read_and_a_word_is_an_error(tmp_path):
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k TEXT, v TEXT)")
        conn.execute("INSERT INTO t VALUES ('x', '2.5')")
    src = source(path, "SELECT k, v FROM t", metric="m", value_columns=["v"])
    assert by_key(src.collect(NOW)) == {("m", (("k", "x"),)): 2.5}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO t VALUES ('y', 'lots')")
    with pytest.raises(ValueError, match=r"row 2, column 'v': 'lots' is not a number"):
        src.collect(NOW)


def test_empty_result_gives_no_samples(db):
    assert source(db, "SELECT auction, amount FROM bids WHERE 0").collect(NOW) == []


def test_metric_defaults_to_the_source_name(db):
    src = SqlSource(name="db-bids.total", dsn=f"sqlite:///{db}", query="SELECT count(*) AS n FROM bids")
    assert [s.name for s in src.collect(NOW)] == ["db_bids_total"]


@pytest.mark.parametrize("query, options, message", [
    ("SELECT auction, amount FROM bids", {}, "have the same labels"),
    ("SELECT auction AS \"bad name\", count(*) AS n FROM bids GROUP BY 1", {}, "not a valid label name"),
    ("SELECT auction FROM bids", {}, "no numeric column"),
    ("SELECT count(*) AS n FROM bids", {"value_columns": ["missing"]}, "not among the query's columns"),
    ("SELECT 1 AS n, 2 AS n", {}, "columns with the same name"),
    ("SELECT 'x' AS env, 1 AS n", {"labels": {"env": "prod"}}, "clashes with the labels option"),
])
def test_results_that_do_not_fit_are_errors(db, query, options, message):
    with pytest.raises(ValueError, match=message):
        source(db, query, **options).collect(NOW)


def test_too_many_rows_is_an_error(db, monkeypatch):
    monkeypatch.setattr(sql_module, "MAX_ROWS", 3)
    with pytest.raises(ValueError, match="more than 3 rows"):
        source(db, "SELECT rowid AS id, amount FROM bids").collect(NOW)


# ---- read-only -----------------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "DELETE FROM bids",
    "INSERT INTO bids VALUES ('a9', 'open', 1, 1)",
    "UPDATE bids SET amount = 0",
    "CREATE TABLE x (y)",
    "DROP TABLE bids",
    "PRAGMA user_version = 7",
])
def test_the_connection_cannot_write(db, statement):
    src = source(db, statement)
    with pytest.raises(sqlite3.Error):
        src.collect(NOW)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), sum(amount) FROM bids").fetchone() == (4, 126.5)
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)


def test_attach_is_refused_so_no_file_is_created(db, tmp_path):
    src = source(db, f"ATTACH '{tmp_path / 'new.db'}' AS other")
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        src.collect(NOW)
    assert not (tmp_path / "new.db").exists()


def test_a_missing_database_is_an_error_and_is_not_created(tmp_path):
    missing = tmp_path / "nope.db"
    src = source(missing, "SELECT 1 AS n")
    with pytest.raises(FileNotFoundError, match="no SQLite database"):
        src.collect(NOW)
    assert not missing.exists()


def test_reads_a_live_wal_store_while_its_writer_is_open(tmp_path):
    path = tmp_path / "store.db"
    with Store.open(path) as store:
        store.write([Sample("x", {"k": str(i)}, NOW, float(i)) for i in range(5)])
        src = source(path, "SELECT name, count(*) AS series FROM series GROUP BY name", metric="store")
        assert by_key(src.collect(NOW)) == {("store", (("name", "x"),)): 5.0}
        store.write([Sample("y", {}, NOW, 1.0)])
        assert len(src.collect(NOW + 1)) == 2  # the reused connection sees the new commit
        src.close()


def test_a_query_past_its_timeout_is_interrupted(db):
    src = SqlSource(name="slow", interval=5, timeout=0.5, jitter=0, dsn=f"sqlite:///{db}",
                    query="WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) "
                          "SELECT max(i) AS n FROM c")
    start = time.monotonic()
    with pytest.raises(sql_module.QueryTimeout, match="interrupted after 0.45s"):
        src.collect(NOW)
    assert time.monotonic() - start < 2
    # the connection still works afterwards
    src.query = "SELECT count(*) AS n FROM bids"
    assert [s.value for s in src.collect(NOW)] == [4.0]


def test_scheduler_reports_a_failing_query_as_a_down_source(db):
    batches, statuses = [], []
    src = source(db, "SELECT nope FROM bids")
    scheduler = Scheduler(batches.append, [src], on_status=statuses.append)
    scheduler.start()
    try:
        wait_for(lambda: statuses, 5, 0.02)
    finally:
        scheduler.stop()
    status = statuses[0]
    assert not status.up and "no such column: nope" in status.last_error and "\n" not in status.last_error


# ---- DSNs, options and config ------------------------------------------------------------
@pytest.mark.parametrize("dsn, message", [
    ("sqlite:///", "names no database file"),
    ("sqlite:///:memory:", "names no database file"),
    ("mysql://x/y", "must start with sqlite:/// or postgresql://"),
])
def test_bad_dsns_are_refused(dsn, message):
    with pytest.raises(ValueError, match=message):
        SqlSource(dsn=dsn, query="SELECT 1")


def test_postgres_needs_the_optional_extra():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg is installed here")
    with pytest.raises(ValueError, match=r"qbconsole\[postgres\]"):
        SqlSource(dsn="postgresql://user@127.0.0.1/quickbid", query="SELECT 1")


def test_relative_and_absolute_sqlite_paths(tmp_path, db, monkeypatch):
    monkeypatch.chdir(db.parent)
    relative = SqlSource(dsn=f"sqlite:///{db.name}", query="SELECT count(*) AS n FROM bids")
    assert [s.value for s in relative.collect(NOW)] == [4.0]
    assert str(db).startswith("/")
    absolute = SqlSource(dsn=f"sqlite:///{db}", query="SELECT count(*) AS n FROM bids")  # four slashes
    assert [s.value for s in absolute.collect(NOW)] == [4.0]


@pytest.mark.parametrize("options, message", [
    ({"metric": "9bad"}, "not a valid metric name"),
    ({"value_columns": "amount"}, "must be a list"),
    ({"value_columns": ["a"], "label_columns": ["a"]}, "both a value and a label column"),
    ({"labels": {"__x": "1"}}, "invalid label name"),
    ({"query": "  "}, "non-empty"),
])
def test_bad_options_are_refused(db, options, message):
    kwargs = {"dsn": f"sqlite:///{db}", "query": "SELECT 1 AS n", **options}
    with pytest.raises(ValueError, match=message):
        SqlSource(**kwargs)


def test_built_from_config(db):
    config = parse_config(textwrap.dedent(f"""
        sources:
          - name: bids
            kind: sql
            dsn: "sqlite:///{db}"
            query: SELECT status, count(*) AS n FROM bids WHERE status IS NOT NULL GROUP BY status
            metric: quickbid_bids_by_status
            label_columns: [status]
            labels: {{env: test}}
            interval: 30s
    """), env={})
    [src] = build_sources(config.sources)
    assert isinstance(src, SqlSource) and (src.interval, src.timeout) == (30, 10)
    got = by_key(src.collect(NOW))
    assert got == {("quickbid_bids_by_status", (("env", "test"), ("status", "open"))): 2.0,
                   ("quickbid_bids_by_status", (("env", "test"), ("status", "closed"))): 1.0}


def test_config_errors_point_at_the_option():
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent("""
            sources:
              - kind: sql
                dsn: mysql://x
                query: SELECT 1
                value_columns: [ok, "not ok"]
        """), "rules.yaml", env={})
    errors = {(d.line, d.col): d.message for d in caught.value.diagnostics}
    assert "expected a DSN starting with sqlite:/// or postgresql://" in errors[(4, 10)]
    assert "invalid column name 'not ok'" in errors[(6, 25)]


def test_build_sources_refuses_unknown_sql_options(db):
    cfg = SimpleNamespace(name="x", kind="sql", interval=None, timeout=None, jitter=None,
                          options={"dsn": f"sqlite:///{db}", "query": "SELECT 1", "table": "t"})
    with pytest.raises(ValueError, match="takes no option 'table'"):
        build_sources([cfg])


def test_database_file_permissions_untouched(db):
    before = os.stat(db)
    source(db, "SELECT count(*) AS n FROM bids").collect(NOW)
    after = os.stat(db)
    assert (before.st_mode, before.st_size, before.st_mtime_ns) == (after.st_mode, after.st_size, after.st_mtime_ns)


def test_names_stay_stable_when_a_value_column_is_all_null_for_a_run(tmp_path):
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k TEXT, a REAL, b REAL)")
        conn.execute("INSERT INTO t VALUES ('x', 1, 2)")
    src = source(path, "SELECT k, a, b FROM t", metric="m")
    assert by_key(src.collect(NOW)) == {("m_a", (("k", "x"),)): 1.0, ("m_b", (("k", "x"),)): 2.0}
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE t SET b = NULL")
    assert by_key(src.collect(NOW)) == {("m_a", (("k", "x"),)): 1.0}  # not renamed to plain "m"
