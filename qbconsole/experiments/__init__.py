"""A/B experiments: definitions and lifecycle, deterministic assignment, tracking, analysis and verdicts.

    model      Spec / Experiment, metric and split parsing (pure)
    lifecycle  create / start / stop / edit in the store, each an audit_log row
    assign     bucket = SHA-256(seed, user) -> variant; first exposures; events
    analyze    per-variant aggregates in SQL, then the tests of ``stats``
    verdict    ship / keep control / no difference yet / invalid (SRM)
    sync       the ``experiments:`` of rules.yaml into the store
    stats      the statistics (gbstats-compatible)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qbconsole.experiments.sync import sync_from_config

__all__ = ["sync_from_config"]


def __getattr__(name: str):
    """``sync_from_config`` on first use (PEP 562): importing ``experiments.model`` (to validate
    a rules file) or ``experiments.lifecycle`` should not bring the sync in with it."""
    if name != "sync_from_config":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from qbconsole.experiments.sync import sync_from_config

    globals()[name] = sync_from_config
    return sync_from_config
