"""Deterministic assignment, first exposures and experiment events.

The bucket of a user is the first 8 bytes of SHA-256 over the UTF-8 text
``seed + "\\n" + user_id``, read as a big-endian unsigned integer and divided
by 2**64: a number in [0, 1) that depends on nothing else, so a user keeps
the same variant forever, on every machine and in every language that has
SHA-256. (A newline cannot occur in a user id, so distinct ids never hash the
same text.) The buckets are split by the cumulative normalised weights: with
50/50, [0, 0.5) is the control and [0.5, 1) the treatment. Each experiment
has its own seed (default: its name and a random salt), so the assignments
of two experiments are independent.

:func:`assign` is pure. :func:`expose` records a user's first exposure
(``INSERT OR IGNORE``: the first one wins, with its timestamp); :func:`track`
records an event. Only exposed users count in the analysis, and only their
events at or after their exposure.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from bisect import bisect_right
from itertools import accumulate
from typing import NamedTuple

from qbconsole.experiments.model import Experiment, ExperimentError, NotRunning, Spec, check_event, check_user

MAX_VALUE = 1e12  # an event value beyond this is not a purchase amount but a bug


def bucket(seed: str, user_id: str) -> float:
    """The user's position in [0, 1) for this seed (see the module docstring)."""
    digest = hashlib.sha256(f"{seed}\n{user_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def variant_for_bucket(spec: Spec, position: float) -> str:
    """The variant whose share of [0, 1) contains ``position`` (cumulative normalised weights)."""
    bounds = list(accumulate(spec.shares))
    index = min(bisect_right(bounds, position), len(spec.variants) - 1)  # float rounding at the top
    return spec.variants[index]


def assign(experiment: Experiment, user_id: str) -> str:
    """The variant of ``user_id`` in ``experiment``: a pure function of the seed, the split and the id."""
    if not experiment.seed:
        raise ExperimentError(f"experiment {experiment.name!r} has no seed")
    return variant_for_bucket(experiment, bucket(experiment.seed, user_id))


class Exposure(NamedTuple):
    """A user's recorded exposure: the variant, when it first happened, and whether this call recorded it."""

    variant: str
    ts: int
    first: bool


def expose(conn: sqlite3.Connection, experiment: Experiment, user_id: str, ts: int) -> Exposure:
    """Record the first exposure of ``user_id`` (a no-op for later ones); runs in a writer transaction."""
    check_user(user_id)
    if experiment.status != "running":
        raise NotRunning(f"experiment {experiment.name!r} is {experiment.status}; exposures are recorded "
                         "only while it runs")
    if experiment.started_at is not None and ts < experiment.started_at:
        raise ExperimentError(f"exposure at {ts} is before experiment {experiment.name!r} started "
                              f"({experiment.started_at})")
    variant = assign(experiment, user_id)
    cur = conn.execute("INSERT OR IGNORE INTO exposures(experiment_id, user_id, variant, ts) VALUES (?, ?, ?, ?)",
                       (experiment.id, user_id, variant, ts))
    if cur.rowcount:
        return Exposure(variant, ts, True)
    stored_variant, first_ts = exposure_of(conn, experiment, user_id)  # type: ignore[misc]
    return Exposure(stored_variant, first_ts, False)


def exposure_of(conn: sqlite3.Connection, experiment: Experiment, user_id: str) -> tuple[str, int] | None:
    """(variant, ts) of the user's first exposure, or None if never exposed."""
    row = conn.execute("SELECT variant, ts FROM exposures WHERE experiment_id = ? AND user_id = ?",
                       (experiment.id, user_id)).fetchone()
    return (row[0], row[1]) if row else None


def check_value(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > MAX_VALUE:
        raise ExperimentError(f"an event value must be a finite number of at most {MAX_VALUE:g} in size, "
                              f"got {value!r}")
    return float(value)


def track(conn: sqlite3.Connection, experiment: Experiment, user_id: str, event: str, ts: int,
          value: float | None = None) -> None:
    """Record one event of ``user_id``; it counts only if the user was exposed at or before ``ts``.

    Refused for a draft, and for a stopped experiment after it stopped. Runs in a writer transaction.
    """
    check_user(user_id)
    check_event(event)
    value = check_value(value)
    if experiment.status == "draft":
        raise NotRunning(f"experiment {experiment.name!r} has not started; its events are not recorded yet")
    if experiment.status == "stopped" and experiment.stopped_at is not None and ts > experiment.stopped_at:
        raise NotRunning(f"experiment {experiment.name!r} stopped at {experiment.stopped_at}; "
                         "later events do not count")
    conn.execute("INSERT INTO experiment_events(experiment_id, user_id, event, value, ts) VALUES (?, ?, ?, ?, ?)",
                 (experiment.id, user_id, event, value, ts))
