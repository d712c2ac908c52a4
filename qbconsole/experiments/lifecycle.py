"""Experiments in the store: create, start, stop, edit, read; every change an audit_log row.

Functions that write take the writer's connection and run inside one
``Store.transaction``; refusals raise :class:`ExperimentError` subclasses whose
message is the reason, and leave nothing behind (the transaction rolls back).

Rules:

* draft -> running (``start``), running -> stopped and draft -> stopped
  (``stop``, which also abandons a draft). A stopped experiment never runs
  again: users exposed before and after would mix.
* The seed, variants and split of a started experiment never change
  (:class:`SplitLocked`, also enforced by a trigger). Users already exposed keep
  their variant, so changing the split would bias the comparison. Stop it and
  start a new experiment instead.
* The analysis plan (metrics, duration, mde, alpha, min_users, sequential,
  description) of a draft or running experiment may change; each change is
  audited with the old and new values.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from typing import Any, Mapping

from qbconsole.experiments.model import (
    COLUMNS,
    Experiment,
    ExperimentError,
    Spec,
    SplitLocked,
    UnknownExperiment,
    describe,
    from_row,
    metrics_json,
    with_changes,
)

LOCKED_FIELDS = ("variants", "weights", "seed")
EDITABLE_FIELDS = ("metrics", "duration_s", "sequential", "mde", "alpha", "min_users", "description")


def audit(conn: sqlite3.Connection, ts: int, actor: str, action: str, target: str,
          detail: Mapping[str, Any] | None = None) -> None:
    """Append one row to the audit log (migration 2; append-only)."""
    conn.execute("INSERT INTO audit_log(ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                 (ts, actor, action, target, json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"))))


def find(conn: sqlite3.Connection, name: str) -> Experiment | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM experiments WHERE name = ?", (name,)).fetchone()
    return from_row(row) if row else None


def get(conn: sqlite3.Connection, name: str) -> Experiment:
    """The experiment called ``name``; UnknownExperiment if there is none."""
    exp = find(conn, name)
    if exp is None:
        known = [r[0] for r in conn.execute("SELECT name FROM experiments ORDER BY name LIMIT 20")]
        hint = f" (known: {', '.join(known)})" if known else " (there are no experiments yet)"
        raise UnknownExperiment(f"unknown experiment {name!r}{hint}")
    return exp


def list_all(conn: sqlite3.Connection) -> list[Experiment]:
    """Every experiment: running first, then drafts, then stopped; newest first within each."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM experiments ORDER BY"
        " CASE status WHEN 'running' THEN 0 WHEN 'draft' THEN 1 ELSE 2 END, created_at DESC, id DESC")
    return [from_row(r) for r in rows]


def new_seed(name: str) -> str:
    """The default seed: the name and a random salt (so two experiments never share buckets)."""
    return f"{name}:{secrets.token_hex(8)}"


def create(conn: sqlite3.Connection, spec: Spec, actor: str, now: int, *, origin: str = "cli",
           start: bool = False) -> Experiment:
    """Store a new experiment (a draft, or running when ``start``)."""
    existing = find(conn, spec.name)
    if existing is not None:
        raise ExperimentError(f"experiment {spec.name!r} already exists ({existing.status}); "
                              "choose another name")
    seed = spec.seed or new_seed(spec.name)
    conn.execute(
        "INSERT INTO experiments(name, description, seed, variants, weights, metrics, status, origin, duration_s,"
        " sequential, mde, alpha, min_users, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?,"
        " ?, ?, ?, ?, ?)",
        (spec.name, spec.description, seed, json.dumps(list(spec.variants)), json.dumps(list(spec.weights)),
         metrics_json(spec.metrics), origin, spec.duration_s, int(spec.sequential), spec.mde, spec.alpha,
         spec.min_users, actor, now))
    audit(conn, now, actor, "experiment.create", spec.name, {**describe(spec), "origin": origin})
    if start:
        return _start(conn, get(conn, spec.name), actor, now)
    return get(conn, spec.name)


def start(conn: sqlite3.Connection, name: str, actor: str, now: int) -> Experiment:
    """draft -> running."""
    return _start(conn, get(conn, name), actor, now)


def _start(conn: sqlite3.Connection, exp: Experiment, actor: str, now: int) -> Experiment:
    if exp.status == "running":
        raise ExperimentError(f"experiment {exp.name!r} is already running")
    if exp.status == "stopped":
        raise ExperimentError(f"experiment {exp.name!r} is stopped and cannot run again (users exposed "
                              "before and after would mix); create a new experiment")
    conn.execute("UPDATE experiments SET status = 'running', started_at = ? WHERE id = ?", (now, exp.id))
    audit(conn, now, actor, "experiment.start", exp.name, {})
    return get(conn, exp.name)


def stop(conn: sqlite3.Connection, name: str, actor: str, now: int, reason: str = "") -> Experiment:
    """running -> stopped (or abandon a draft). Exposures and events after ``now`` no longer count."""
    exp = get(conn, name)
    if exp.status == "stopped":
        raise ExperimentError(f"experiment {name!r} is already stopped")
    conn.execute("UPDATE experiments SET status = 'stopped', stopped_at = ?, stopped_by = ? WHERE id = ?",
                 (now, actor, exp.id))
    audit(conn, now, actor, "experiment.stop", name, {"was": exp.status, "reason": reason})
    return get(conn, name)


def split_locked_reason(exp: Experiment, fields: list[str]) -> str:
    what = " and ".join({"weights": "split", "variants": "variants", "seed": "seed"}[f] for f in fields)
    return (f"refused: experiment {exp.name!r} is {exp.status}, so its {what} cannot change: users already "
            "exposed keep their variant, so a new split would bias the comparison (and trip the "
            f"sample-ratio check). Stop it (`qbconsole ab stop {exp.name}`) and start a new experiment "
            "with the new split instead.")


def edit(conn: sqlite3.Connection, name: str, actor: str, now: int, **changes: Any) -> Experiment:
    """Change fields of a draft (any) or running experiment (not the split); returns the result.

    ``changes`` uses :class:`Spec` field names (``weights`` is the split). Unchanged values are
    ignored; nothing changed is no write and no audit row.
    """
    unknown = set(changes) - set(LOCKED_FIELDS) - set(EDITABLE_FIELDS)
    if unknown:
        raise ExperimentError(f"cannot edit {', '.join(sorted(unknown))}")
    exp = get(conn, name)
    if exp.status == "stopped":
        raise ExperimentError(f"experiment {name!r} is stopped; its record is final (create a new experiment)")
    if "weights" in changes:
        changes["weights"] = tuple(float(w) for w in changes["weights"])
    changed = {k: v for k, v in changes.items() if _differs(getattr(exp, k), v)}
    locked = [k for k in LOCKED_FIELDS if k in changed]
    if locked and exp.status != "draft":
        raise SplitLocked(split_locked_reason(exp, locked))
    if not changed:
        return exp
    updated = with_changes(exp.spec(), **changed)  # validates the whole definition again
    before, after = describe(exp.spec()), describe(updated)
    conn.execute(
        "UPDATE experiments SET description = ?, seed = ?, variants = ?, weights = ?, metrics = ?, duration_s = ?,"
        " sequential = ?, mde = ?, alpha = ?, min_users = ? WHERE id = ?",
        (updated.description, updated.seed, json.dumps(list(updated.variants)), json.dumps(list(updated.weights)),
         metrics_json(updated.metrics), updated.duration_s, int(updated.sequential), updated.mde, updated.alpha,
         updated.min_users, exp.id))
    detail = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if "seed" in changed:
        detail["seed"] = {"from": exp.seed, "to": updated.seed}
    audit(conn, now, actor, "experiment.edit", name, detail)
    return get(conn, name)


def _differs(old: Any, new: Any) -> bool:
    if isinstance(old, tuple) and isinstance(new, (list, tuple)):
        return tuple(old) != tuple(new)
    return old != new
