"""The `sql` source: a query whose rows become samples.

Each row gives one sample per value column, named ``<metric>`` when there is
one value column and ``<metric>_<column>`` otherwise, labelled by the row's
label columns (NULL labels are left out, NULL values skipped) plus the
``labels`` option. By default the value columns are those whose every
non-NULL value is a number, and the label columns all the others.

DSNs: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the
SQLAlchemy spelling), opened read-only (``mode=ro``, ``PRAGMA
query_only``, no ATTACH); ``postgresql://...`` when psycopg is installed (the optional
extra ``qbconsole[postgres]``), in a read-only transaction. A query gets 90 %
of the source timeout: SQLite is interrupted by a progress handler,
PostgreSQL by ``statement_timeout``. At most MAX_ROWS rows are read.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping

from qbconsole.collect.base import check_timing
from qbconsole.collect.http import PROBE_SHARE
from qbconsole.model import Sample

MAX_ROWS = 10_000
PROGRESS_STEPS = 1_000  # SQLite VM instructions between two deadline checks
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _refuse_attach(action: int, *_args) -> int:
    """SQLite authorizer: ATTACH would create a missing file even on a read-only connection."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class QueryTimeout(Exception):
    """The query ran past its time and was interrupted."""


def sqlite_path(dsn: str) -> Path:
    """The file a ``sqlite:///...`` DSN names (three slashes: relative, four: absolute)."""
    rest = dsn[len("sqlite:///"):]
    if not rest or rest == ":memory:" or rest.startswith("file:"):
        raise ValueError(f"sql source: {dsn!r} names no database file "
                         "(use sqlite:///relative.db or sqlite:////absolute/path.db)")
    return Path(urllib.parse.unquote(rest))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal))


def _label_value(column: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    raise ValueError(f"label column {column!r} holds {type(value).__name__} data; "
                     "select it as text or leave it out")


def _names(option: str, value: Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"sql source: {option} must be a list of column names")
    names = list(value)
    if len(set(names)) != len(names):
        raise ValueError(f"sql source: {option} names a column twice")
    return names


class SqlSource:
    """Runs ``query`` against ``dsn`` each run; see the module docstring."""

    kind = "sql"

    def __init__(
        self,
        name: str = "sql",
        interval: float = 10,
        timeout: float = 10,
        jitter: float = 0.1,
        *,
        dsn: str,
        query: str,
        metric: str | None = None,
        value_columns: Iterable[str] | None = None,
        label_columns: Iterable[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        check_timing(name, interval, timeout, jitter)
        self.name, self.interval, self.timeout, self.jitter = name, float(interval), float(timeout), float(jitter)
        if not isinstance(query, str) or not query.strip():
            raise ValueError("sql source: query must be a non-empty string")
        self.query = query
        self.metric = metric if metric is not None else re.sub(r"[^a-zA-Z0-9_]", "_", name)
        if not isinstance(self.metric, str) or not METRIC_NAME.fullmatch(self.metric):
            raise ValueError(f"sql source: metric {self.metric!r} is not a valid metric name")
        self.value_columns = _names("value_columns", value_columns)
        self.label_columns = _names("label_columns", label_columns)
        if self.value_columns is not None and self.label_columns is not None:
            both = sorted(set(self.value_columns) & set(self.label_columns))
            if both:
                raise ValueError(f"sql source: column {both[0]!r} is both a value and a label column")
        self.labels = dict(labels or {})
        for key, value in self.labels.items():
            if not isinstance(key, str) or not LABEL_NAME.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"sql source: invalid label name {key!r}")
            if not isinstance(value, str):
                raise ValueError(f"sql source: label {key!r} must have a string value")
        self._budget = self.timeout * PROBE_SHARE
        self._lock = threading.Lock()
        self._conn: Any = None
        self._kinds: dict[str, str] = {}  # column -> "value" | "label", as last seen with data
        if not isinstance(dsn, str):
            raise ValueError("sql source: dsn must be a string")
        if dsn.startswith("sqlite:///"):
            self._path: Path | None = sqlite_path(dsn)
        elif dsn.startswith(POSTGRES_SCHEMES):
            self._path = None
            try:
                import psycopg  # noqa: F401  (optional extra)
            except ImportError:
                raise ValueError("sql source: postgresql DSNs need psycopg; install the optional "
                                 "extra qbconsole[postgres]") from None
        else:
            raise ValueError("sql source: dsn must start with sqlite:/// or postgresql://")
        self._dsn = dsn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def collect(self, now_ms: int) -> list[Sample]:
        with self._lock:
            columns, rows = self._run()
        return self.rows_to_samples(columns, rows, now_ms)

    # ---- running the query ---------------------------------------------------
    def _run(self) -> tuple[list[str], list[tuple]]:
        if self._path is not None:
            return self._run_sqlite()
        return self._run_postgres()

    def _run_sqlite(self) -> tuple[list[str], list[tuple]]:
        if self._conn is None:
            self._conn = self._open_sqlite()
        conn = self._conn
        deadline = time.monotonic() + self._budget
        conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            cursor = conn.execute(self.query)
            columns = [d[0] for d in cursor.description] if cursor.description else []
            rows = cursor.fetchmany(MAX_ROWS + 1)
            cursor.close()
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline and "interrupt" in str(exc):
                raise QueryTimeout(f"query interrupted after {self._budget:g}s") from None
            raise
        except sqlite3.DatabaseError:
            self.close_connection()
            raise
        return columns, rows

    def close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _open_sqlite(self) -> sqlite3.Connection:
        assert self._path is not None
        path = self._path.resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no SQLite database at {path}")
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self._budget, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(_refuse_attach)
        return conn

    def _run_postgres(self) -> tuple[list[str], list[tuple]]:
        import psycopg

        options = f"-c default_transaction_read_only=on -c statement_timeout={int(self._budget * 1000)}"
        with psycopg.connect(self._dsn, connect_timeout=max(1, int(self._budget)),
                             options=options, autocommit=True) as conn:
            with conn.cursor() as cursor:
                try:
                    cursor.execute(self.query)
                except psycopg.errors.QueryCanceled:
                    raise QueryTimeout(f"query cancelled after {self._budget:g}s") from None
                columns = [d.name for d in cursor.description] if cursor.description else []
                rows = cursor.fetchmany(MAX_ROWS + 1) if columns else []
        return columns, rows

    # ---- rows to samples -------------------------------------------------------
    def rows_to_samples(self, columns: list[str], rows: list[tuple], now_ms: int) -> list[Sample]:
        """One sample per row per value column; ValueError when the result does not fit."""
        if not columns:
            raise ValueError("the query returns no columns")
        if len(set(columns)) != len(columns):
            raise ValueError(f"the query returns columns with the same name: {', '.join(columns)}")
        if len(rows) > MAX_ROWS:
            raise ValueError(f"the query returns more than {MAX_ROWS} rows")
        if not rows:
            return []
        values, labels = self._split(columns, rows)
        index = {c: i for i, c in enumerate(columns)}
        names = {c: self.metric if len(values) == 1 else f"{self.metric}_{c}" for c in values}
        out: list[Sample] = []
        seen: dict[tuple, int] = {}
        for n, row in enumerate(rows, 1):
            row_labels = dict(self.labels)
            for column in labels:
                cell = row[index[column]]
                if cell is not None and cell != "":
                    row_labels[column] = _label_value(column, cell)
            key = tuple(sorted(row_labels.items()))
            if key in seen:
                raise ValueError(f"rows {seen[key]} and {n} have the same labels {dict(key)}; "
                                 "add a label column or aggregate")
            seen[key] = n
            for column in values:
                cell = row[index[column]]
                if cell is None:
                    continue
                out.append(Sample(names[column], row_labels, now_ms, self._number(column, n, cell)))
        return out

    def _split(self, columns: list[str], rows: list[tuple]) -> tuple[list[str], list[str]]:
        """(value columns, label columns), checked against the result."""
        for option, wanted in (("value_columns", self.value_columns), ("label_columns", self.label_columns)):
            missing = [c for c in wanted or () if c not in columns]
            if missing:
                raise ValueError(f"{option} names {', '.join(map(repr, missing))}, not among the "
                                 f"query's columns ({', '.join(columns)})")
        if self.value_columns is not None:
            values = self.value_columns
        else:
            skip = set(self.label_columns or ())
            values = [c for i, c in enumerate(columns) if c not in skip and self._numeric(c, rows, i)]
        if not values:
            raise ValueError("the query returns no numeric column to use as a value "
                             "(name them in value_columns)")
        if self.label_columns is not None:
            labels = self.label_columns
        elif self.value_columns is not None:
            labels = [c for c in columns if c not in values]
        else:  # a column never seen with a value yet is left out
            labels = [c for c in columns if c not in values and self._kinds.get(c) is not None]
        for column in labels:
            if not LABEL_NAME.fullmatch(column) or column.startswith("__"):
                raise ValueError(f"column {column!r} is not a valid label name; rename it with AS")
            if column in self.labels:
                raise ValueError(f"label column {column!r} clashes with the labels option")
        for column in values:
            name = self.metric if len(values) == 1 else f"{self.metric}_{column}"
            if not METRIC_NAME.fullmatch(name):
                raise ValueError(f"column {column!r} gives the invalid metric name {name!r}; rename it with AS")
        return values, labels

    def _numeric(self, column: str, rows: list[tuple], i: int) -> bool:
        """Every non-NULL value is a number; a column all NULL keeps what it was last time."""
        cells = [row[i] for row in rows if row[i] is not None]
        if cells:
            self._kinds[column] = "value" if all(_is_number(c) for c in cells) else "label"
        return self._kinds.get(column) == "value"

    @staticmethod
    def _number(column: str, row: int, cell: Any) -> float:
        if _is_number(cell):
            return float(cell)
        if isinstance(cell, str):
            try:
                return float(cell)
            except ValueError:
                pass
        raise ValueError(f"row {row}, column {column!r}: {cell!r} is not a number")


