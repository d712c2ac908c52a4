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

from qbconsole.actions.audit import AuditEntry, entries as audit_entries
from qbconsole.actions.dryrun import DryRun, dry_run
from qbconsole.actions.engine import ActionEngine
from qbconsole.actions.proposals import (
    FINAL_STATES, OPEN_STATES, STATES, Proposal, approve, get, list_proposals, reject,
)

__all__ = [
    "ActionEngine", "AuditEntry", "DryRun", "FINAL_STATES", "OPEN_STATES", "Proposal", "STATES", "approve",
    "audit_entries", "dry_run", "get", "list_proposals", "reject",
]
