"""A/B experiments: definitions and lifecycle, deterministic assignment, tracking, analysis and verdicts.

    model      Spec / Experiment, metric and split parsing (pure)
    lifecycle  create / start / stop / edit in the store, each an audit_log row
    assign     bucket = SHA-256(seed, user) -> variant; first exposures; events
    analyze    per-variant aggregates in SQL, then the tests of ``stats``
    verdict    ship / keep control / no difference yet / invalid (SRM)
    sync       the ``experiments:`` of rules.yaml into the store
    stats      the statistics (gbstats-compatible)
"""

from qbconsole.experiments.sync import sync_from_config

__all__ = ["sync_from_config"]
