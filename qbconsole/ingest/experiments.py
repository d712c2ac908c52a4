"""The experiment parts of the ingest endpoint: exposures and events in a batch, and ``POST /v1/assign``.

Both run inside the batch's one store transaction, so an unknown experiment
(400 in a batch, 404 for ``/v1/assign``) or one that is not running (409)
leaves nothing of the request stored. ``/v1/assign`` takes
``{"experiment": NAME, "user": ID}`` and answers
``200 {"experiment", "user", "variant", "first_exposure", "exposed_at"}``,
recording the user's first exposure.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from qbconsole.experiments import lifecycle
from qbconsole.experiments.assign import assign, expose, track
from qbconsole.experiments.model import (
    EXPERIMENT_NAME,
    USER_ID,
    Experiment,
    ExperimentError,
    NotRunning,
)
from qbconsole.ingest.errors import Rejected
from qbconsole.ingest.events import ExperimentItem

ASSIGN_PATH = "/v1/assign"


def _experiment(conn: sqlite3.Connection, cache: dict[str, Experiment], name: str, *, status: int,
                index: int | None) -> Experiment:
    exp = cache.get(name)
    if exp is None:
        exp = lifecycle.find(conn, name)
        if exp is None:
            raise Rejected(status, f"unknown experiment {name!r}", index=index, field="experiment",
                           reason="unknown_experiment")
        cache[name] = exp
    return exp


def record_items(conn: sqlite3.Connection, items: list[ExperimentItem], now: int) -> None:
    """Write a batch's exposures and experiment events (inside the batch's transaction)."""
    cache: dict[str, Experiment] = {}
    for item in items:
        exp = _experiment(conn, cache, item.experiment, status=400, index=item.index)
        ts = now if item.ts is None else item.ts
        try:
            if item.type == "exposure":
                if item.variant is not None and item.variant != assign(exp, item.user):
                    raise Rejected(400, f"user {item.user[:64]!r} is in variant {assign(exp, item.user)!r} of "
                                        f"{exp.name!r}, not {item.variant!r} (ask POST {ASSIGN_PATH})",
                                   index=item.index, field="variant")
                expose(conn, exp, item.user, ts)
            else:
                track(conn, exp, item.user, item.event or "", ts, item.value)
        except NotRunning as err:
            raise Rejected(409, str(err), index=item.index, field="experiment", reason="not_running") from None
        except ExperimentError as err:
            raise Rejected(400, str(err), index=item.index, field="ts") from None


def parse_assign(events: list[Any]) -> tuple[str, str]:
    """(experiment, user) from a decoded ``/v1/assign`` body; Rejected(400) otherwise."""
    if len(events) != 1 or not isinstance(events[0], dict):
        raise Rejected(400, 'the body must be one JSON object: {"experiment": NAME, "user": ID}')
    body = events[0]
    for key in body:
        if key not in ("experiment", "user"):
            raise Rejected(400, f"unknown field {key!r} (fields: experiment, user)", field=key)
    name, user = body.get("experiment"), body.get("user")
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise Rejected(400, "experiment must be an experiment name (a string)", field="experiment")
    if not isinstance(user, str) or not USER_ID.fullmatch(user):
        raise Rejected(400, "user must be a user id: a string of 1 to 256 characters without control "
                            "characters", field="user")
    return name, user


def assign_user(store, events: list[Any], now: int) -> dict[str, Any]:
    """Handle ``/v1/assign``: the user's variant, with the first exposure recorded."""
    name, user = parse_assign(events)

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        exp = _experiment(conn, {}, name, status=404, index=None)
        if exp.status != "running":
            raise Rejected(409, f"experiment {name!r} is {exp.status}; users are assigned only while it runs",
                           field="experiment", reason="not_running")
        exposure = expose(conn, exp, user, now)
        return {"experiment": name, "user": user, "variant": exposure.variant,
                "first_exposure": exposure.first, "exposed_at": exposure.ts}

    return store.transaction(work)
