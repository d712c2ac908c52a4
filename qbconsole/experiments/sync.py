"""Bringing the ``experiments:`` of rules.yaml into the store (the agent calls it at start and on reload).

For each configured experiment:

* not in the store: created (origin ``config``), and started when ``start: true``;
* a draft: its definition follows the file, and it starts when ``start: true``;
* running: changes to the analysis plan (metrics, duration, mde, ...) are
  applied; a change to its variants, split or seed is **refused** and logged
  with the reason (it would bias the result; stop it and start a new one), and
  the rest of that experiment's changes are not applied either;
  ``start: false`` does not stop it (stopping is an operator's decision,
  ``qbconsole ab stop``);
* stopped: left as it is (it never runs again).

Experiments in the store but not in the file are left alone. Each change is
an audit_log row with the actor ``config``; one experiment's problem never
stops the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from qbconsole.experiments import lifecycle
from qbconsole.experiments.model import ExperimentError, Spec, spec_from_config

log = logging.getLogger("qbconsole.experiments")
ACTOR = "config"


@dataclass(frozen=True)
class SyncResult:
    """What happened to one configured experiment: created, started, updated, unchanged or refused."""

    name: str
    action: str
    detail: str = ""


def sync_from_config(store, experiments: Iterable[Mapping[str, Any]], now: int | None = None) -> list[SyncResult]:
    """Apply the configured experiments to ``store`` (a :class:`qbconsole.store.Store`); log and return results."""
    results = []
    for raw in experiments:
        name = str(raw.get("name", "?"))
        try:
            spec, start = spec_from_config(raw)
        except ExperimentError as err:  # the config validator reports these first
            results.append(SyncResult(name, "refused", str(err)))
            continue
        at = int(time.time() * 1000) if now is None else now
        try:
            result = store.transaction(lambda conn, s=spec, go=start: _apply(conn, s, go, at))
        except ExperimentError as err:
            result = SyncResult(spec.name, "refused", str(err))
        results.append(result)
    for r in results:
        if r.action == "refused":
            log.warning("experiment %s from the config not applied: %s", r.name, r.detail)
        elif r.action != "unchanged":
            log.info("experiment %s %s from the config%s", r.name, r.action, f": {r.detail}" if r.detail else "")
    return results


def _apply(conn, spec: Spec, start: bool, now: int) -> SyncResult:
    exp = lifecycle.find(conn, spec.name)
    if exp is None:
        created = lifecycle.create(conn, spec, ACTOR, now, origin="config", start=start)
        return SyncResult(spec.name, "created", created.status)
    if exp.status == "stopped":
        return SyncResult(spec.name, "unchanged", "stopped")
    changes = {f: getattr(spec, f) for f in (*lifecycle.EDITABLE_FIELDS, "variants", "weights")}
    if spec.seed is not None:
        changes["seed"] = spec.seed
    before = exp
    exp = lifecycle.edit(conn, spec.name, ACTOR, now, **changes)  # SplitLocked if running and split changed
    actions = ["updated"] if exp != before else []
    if start and exp.status == "draft":
        exp = lifecycle.start(conn, spec.name, ACTOR, now)
        actions.append("started")
    note = ""
    if not start and exp.status == "running":
        note = "running although start is false: stop it with `qbconsole ab stop` if that is meant"
        log.info("experiment %s: %s", spec.name, note)
    return SyncResult(spec.name, " and ".join(actions) or "unchanged", note)
