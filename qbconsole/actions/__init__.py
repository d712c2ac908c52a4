"""Optimization actions: rules propose, a person approves, the engine runs and verifies.

The console and the CLI use::

    list_proposals(conn, open_only=False, states=None, rule=None, limit=200) -> [Proposal]
    get(conn, proposal_id) -> Proposal | None
    approve(store, proposal_id, operator, now, note="") -> Proposal   # ValueError with the reason
    reject(store, proposal_id, operator, now, note="") -> Proposal
    dry_run(store, proposal_id, config, env=None, now=None) -> DryRun  # runs nothing
    audit_entries(conn, since=None, target=None) -> [AuditEntry]

The agent runs ``ActionEngine(store, config).tick(now_ms)`` (see engine.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qbconsole.actions.audit import AuditEntry, entries as audit_entries
    from qbconsole.actions.dryrun import DryRun, dry_run
    from qbconsole.actions.engine import ActionEngine
    from qbconsole.actions.proposals import (
        FINAL_STATES, OPEN_STATES, STATES, Proposal, approve, get, list_proposals, reject,
    )

# Name -> (module, attribute). The names are imported on first use (PEP 562): the rules file's
# validation imports ``qbconsole.actions.schema`` before the console's first frame, and should
# not bring the engine, the executors and httpx with it.
_EXPORTS = {
    "AuditEntry": ("audit", "AuditEntry"), "audit_entries": ("audit", "entries"),
    "DryRun": ("dryrun", "DryRun"), "dry_run": ("dryrun", "dry_run"),
    "ActionEngine": ("engine", "ActionEngine"),
    **{name: ("proposals", name) for name in (
        "FINAL_STATES", "OPEN_STATES", "STATES", "Proposal", "approve", "get", "list_proposals", "reject")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value
