"""Missing indexes: from the platform's slow queries to exact ``CREATE INDEX`` statements.

For each slow query (``GET /admin/slow_queries``: name, SQL text, average and
maximum duration, count) this asks SQLite itself, on the platform's database
opened READ-ONLY, for ``EXPLAIN QUERY PLAN`` (parameters bound to NULL:
the plan does not depend on them). A plan row ``SCAN <table>`` (no index) is
a full scan; the columns compared for equality in the query's WHERE clause
(``col = ?``, ``t.col = 'x'``, ``? = col``) that belong to that table become
the index: ``CREATE INDEX IF NOT EXISTS ix_<table>_<cols> ON <table>(<cols>)``.

Deliberately conservative: one statement, SELECT/UPDATE/DELETE only, no
sub-selects, no OR at the top of the WHERE clause, positional ``?``
parameters only; table and column names must be plain identifiers that
``PRAGMA table_info`` of a real table confirms (the schema's spelling is
used). Anything else is skipped, never guessed. Once the index exists the
plan says ``SEARCH ... USING INDEX`` and nothing is proposed.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import httpx

from qbconsole.actions.executors.statement import connect

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_COLUMNS = 4
_TOKEN = re.compile(r"""
    (?P<space>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<str>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)
  | (?P<param>\?\d*|[:@$][A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|<=|>=|\|\||[(),.;=<>*+\-/%&|~])
""", re.X | re.S)
_CLAUSE_END = {"ORDER", "GROUP", "LIMIT", "HAVING", "WINDOW", "RETURNING", "UNION", "EXCEPT", "INTERSECT"}
_NOT_ALIAS = {"ON", "USING", "JOIN", "LEFT", "RIGHT", "FULL", "INNER", "OUTER", "CROSS", "NATURAL", "WHERE",
              "SET", "INDEXED", "NOT", "ORDER", "GROUP", "LIMIT"}
_SCAN = re.compile(r"^SCAN (?:TABLE )?([A-Za-z_][A-Za-z0-9_]*)(?: AS ([A-Za-z_][A-Za-z0-9_]*))?$")


class Suggestion(NamedTuple):
    table: str
    columns: tuple[str, ...]
    statement: str  # CREATE INDEX IF NOT EXISTS ix_<table>_<cols> ON <table>(<cols>)
    query: dict[str, Any]  # the slow query as the platform reported it
    plan: list[str]

    @property
    def target(self) -> str:
        return f"{self.table}({','.join(self.columns)})"


class Token(NamedTuple):
    kind: str
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokens(sql: str) -> list[Token] | None:
    """The SQL's tokens (quoted identifiers unquoted), or None when it cannot be read."""
    out, pos = [], 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:
            return None
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        text = m.group()
        if kind == "qident":
            text, kind = text[1:-1].replace('""', '"'), "word"
        out.append(Token(kind, text))
    return out


def _top_level(toks: list[Token]) -> Iterable[tuple[int, Token]]:
    depth = 0
    for i, tok in enumerate(toks):
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        elif depth == 0:
            yield i, tok


def where_equalities(toks: list[Token]) -> list[tuple[str | None, str]] | None:
    """(qualifier, column) of each ``col = value`` conjunct; None when the clause is not simple."""
    start = next((i for i, t in _top_level(toks) if t.upper == "WHERE"), None)
    if start is None:
        return []
    end = next((i for i, t in _top_level(toks) if i > start and (t.upper in _CLAUSE_END or t.text == ";")),
               len(toks))
    clause = toks[start + 1:end]
    conjuncts, current, between = [], [], False
    for i, tok in _top_level(clause):
        if tok.upper == "OR":
            return None
        if tok.upper == "BETWEEN":
            between = True
        elif tok.upper == "AND" and between:
            between = False
            continue
        elif tok.upper == "AND":
            conjuncts.append(current)
            current = []
            continue
        current.append(i)
    conjuncts.append(current)
    found = []
    for indexes in conjuncts:
        if not indexes or indexes != list(range(indexes[0], indexes[-1] + 1)):
            continue  # holds parentheses: not a simple comparison
        part = clause[indexes[0]:indexes[-1] + 1]
        column = _equality(part)
        if column:
            found.append(column)
    return found


def _equality(part: list[Token]) -> tuple[str | None, str] | None:
    """``col = value`` or ``value = col`` (col possibly ``t.col``; value a parameter or literal)."""
    def column(side: list[Token]) -> tuple[str | None, str] | None:
        if len(side) == 1 and side[0].kind == "word":
            return None, side[0].text
        if len(side) == 3 and side[0].kind == "word" and side[1].text == "." and side[2].kind == "word":
            return side[0].text, side[2].text
        return None

    equals = [i for i, t in enumerate(part) if t.text in ("=", "==")]
    if len(equals) != 1:
        return None
    left, right = part[:equals[0]], part[equals[0] + 1:]
    if len(right) == 1 and right[0].kind in ("param", "num", "str"):
        return column(left)
    if len(left) == 1 and left[0].kind in ("param", "num", "str"):
        return column(right)
    return None


def table_refs(toks: list[Token]) -> dict[str, str] | None:
    """alias (or name) -> table for the statement's FROM / UPDATE / DELETE FROM list."""
    head = toks[0].upper
    if head == "UPDATE":
        start = 1
        while start < len(toks) and toks[start].upper in ("OR", "ROLLBACK", "ABORT", "REPLACE", "FAIL", "IGNORE"):
            start += 1
        stop_words = {"SET"}
    else:
        start = next((i + 1 for i, t in _top_level(toks) if t.upper == "FROM"), None)
        if start is None:
            return None
        stop_words = {"WHERE"} | _CLAUSE_END
    refs: dict[str, str] = {}
    expect_table = True
    i = start
    while i < len(toks) and toks[i].upper not in stop_words and toks[i].text != ";":
        tok = toks[i]
        if tok.text == "(":
            return None  # a sub-select or table function: not simple
        if expect_table and tok.kind == "word" and tok.upper not in _NOT_ALIAS:
            name, alias = tok.text, tok.text
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is not None and nxt.upper == "AS":
                i += 1
                nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is not None and nxt.kind == "word" and nxt.upper not in _NOT_ALIAS | stop_words:
                alias = nxt.text
                i += 1
            refs[alias] = name
            expect_table = False
        elif tok.text == "," or tok.upper == "JOIN":
            expect_table = True
        i += 1
    return refs or None


def parameter_count(toks: list[Token]) -> int | None:
    """How many positional parameters to bind; None for named ones (not handled)."""
    count, numbered = 0, 0
    for tok in toks:
        if tok.kind != "param":
            continue
        if tok.text[0] != "?":
            return None
        if len(tok.text) > 1:
            numbered = max(numbered, int(tok.text[1:]))
        else:
            count += 1
    return max(count, numbered)


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str] | None:
    """lower-case name -> the schema's spelling, for a real table; None otherwise."""
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
                       (table,)).fetchone()
    if row is None or not IDENT.fullmatch(row[0]):
        return None
    return {r[1].lower(): r[1] for r in conn.execute(f'PRAGMA table_info("{row[0]}")')}


def suggest(conn: sqlite3.Connection, query: dict[str, Any]) -> list[Suggestion]:
    """Index suggestions for one slow query (an empty list when it needs none or is not simple)."""
    sql = query.get("sql") or ""
    toks = tokens(sql)
    if not toks or toks[0].upper not in ("SELECT", "UPDATE", "DELETE"):
        return []
    semis = [i for i, t in enumerate(toks) if t.text == ";"]
    if semis and semis != [len(toks) - 1] or sum(t.upper == "SELECT" for t in toks) > 1:
        return []
    count, refs, equalities = parameter_count(toks), table_refs(toks), where_equalities(toks)
    if count is None or not refs or not equalities:
        return []
    try:
        plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql.rstrip().rstrip(";"), [None] * count)]
    except sqlite3.Error:
        return []
    out = []
    for line in plan:
        m = _SCAN.match(line)
        if m is None:
            continue
        alias = m.group(2) or m.group(1)
        table = refs.get(alias, refs.get(m.group(1)))
        columns = _columns(conn, table) if table else None
        if not columns:
            continue
        real_table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
                                  (table,)).fetchone()[0]
        chosen: list[str] = []
        for qualifier, column in equalities:
            if qualifier is None and len(refs) > 1:
                continue  # unqualified in a join: whose column is it?
            if qualifier is not None and qualifier not in (alias, table):
                continue
            name = columns.get(column.lower())
            if name and IDENT.fullmatch(name) and name not in chosen:
                chosen.append(name)
        if chosen:
            cols = tuple(chosen[:MAX_COLUMNS])
            statement = (f"CREATE INDEX IF NOT EXISTS ix_{real_table}_{'_'.join(cols)} "
                         f"ON {real_table}({', '.join(cols)})")
            out.append(Suggestion(real_table, cols, statement, query, plan))
    return out


def analyse(db_file: Path, queries: list[dict[str, Any]], min_avg_s: float = 0.0,
            timeout_s: float = 10.0) -> list[Suggestion]:
    """Suggestions for the slow queries averaging at least ``min_avg_s``, one per (table, columns),
    slowest query first."""
    conn = connect(db_file, readonly=True, timeout=timeout_s)
    try:
        seen: dict[tuple, Suggestion] = {}
        ordered = sorted(queries, key=lambda q: -float(q.get("avg_seconds") or 0))
        for query in ordered:
            if float(query.get("avg_seconds") or 0) < min_avg_s:
                continue
            for s in suggest(conn, query):
                seen.setdefault((s.table, s.columns), s)
        return list(seen.values())
    finally:
        conn.close()


def fetch_slow_queries(url: str, token: str | None, *, limit: int = 10, timeout_s: float = 10.0) -> list[dict]:
    """The platform's slowest recent queries; raises ValueError with the reason when it cannot."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            reply = client.get(f"{url.rstrip('/')}/admin/slow_queries", params={"limit": limit}, headers=headers)
    except httpx.HTTPError as err:
        raise ValueError(f"cannot read the slow queries from {url}: {type(err).__name__}") from None
    if reply.status_code != 200:
        raise ValueError(f"GET {url.rstrip('/')}/admin/slow_queries answered {reply.status_code}")
    try:
        queries = reply.json()["queries"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("the slow-query answer is not the expected JSON") from None
    return [q for q in queries if isinstance(q, dict) and isinstance(q.get("sql"), str)]
