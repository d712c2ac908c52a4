"""Notifications: channels, routes and the persistent outbox (DESIGN.md section 1).

The rules engine writes alerts into the store; :class:`Notifier` turns them into
notifications (routing, grouping, timing, silences, inhibition, escalation),
stores each one in the outbox and delivers it to email, Slack, SMS, a webhook
or an Alertmanager, retrying until the sink accepts it.

Names are loaded lazily: importing one part does not import the others.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Notifier": "notifier", "ChannelStatus": "notifier",
    "DeliveryError": "channels", "build_sender": "channels",
    "ChannelConfig": "config", "Route": "config", "InhibitRule": "config",
    "parse_channels": "config", "parse_routes": "config", "parse_inhibit_rules": "config",
    "enqueue": "outbox", "deliver_due": "outbox", "backlog": "outbox",
    "Backlog": "outbox", "notifications_for_alert": "outbox",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qbconsole.notify' has no attribute {name!r}")
    return getattr(importlib.import_module(f"qbconsole.notify.{module}"), name)
