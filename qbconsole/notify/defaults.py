"""The source design's notification defaults: channels from the environment, routes, inhibition.

Used when ``rules.yaml`` has no ``channels`` / ``routes`` / ``inhibit_rules``:
email and Slack (and a webhook or an Alertmanager when their URL is set) for
every alert, SMS for critical ones and for firing alerts unacknowledged for
15 minutes; a firing critical alert mutes warnings of the same alertname and
instance. Credentials come from the environment; a channel whose variables are
not set is disabled (see :mod:`qbconsole.notify.config`).
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

DEFAULT_ROUTES: list[dict[str, Any]] = [
    {"name": "critical", "match": ['severity="critical"'], "channels": ["sms"], "continue": True,
     "group_by": ["alertname"], "group_wait": "10s", "group_interval": "1m", "repeat_interval": "1h"},
    {"name": "default", "match": [], "channels": ["email", "slack", "webhook", "alertmanager"],
     "group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
     "escalation": [{"after": "15m", "channels": ["sms"]}]},
]
"""The source design's routing: email and Slack (and webhook/Alertmanager when configured)
for every alert, SMS for critical ones, and SMS when a firing alert is unacknowledged for 15 min."""

DEFAULT_INHIBIT_RULES: list[dict[str, Any]] = [
    {"source_match": ['severity="critical"'], "target_match": ['severity="warning"'],
     "equal": ["alertname", "instance"]},
]

# The source design's channels, credentials from the environment (used when a file has none).
DEFAULT_CHANNEL_TEMPLATES: list[dict[str, Any]] = [
    {"name": "email", "kind": "email", "smtp_host": "${SMTP_HOST:-}", "smtp_port": 587,
     "starttls": True, "username": "${SMTP_USER:-}", "password": "${SMTP_PASSWORD:-}",
     "from": "${SMTP_FROM:-qbconsole@quickbid.example}", "to": "${ALERT_EMAIL_TO:-}",
     "send_resolved": True},
    {"name": "slack", "kind": "slack", "url": "${SLACK_WEBHOOK_URL:-}", "send_resolved": True},
    {"name": "sms", "kind": "sms",
     "url": "https://api.twilio.com/2010-04-01/Accounts/${TWILIO_ACCOUNT_SID:-}/Messages.json",
     "account_sid": "${TWILIO_ACCOUNT_SID:-}", "auth_token": "${TWILIO_AUTH_TOKEN:-}",
     "from": "${SMS_FROM:-}", "to": "${SMS_TO:-}", "send_resolved": False},
    {"name": "webhook", "kind": "webhook", "url": "${WEBHOOK_URL:-}",
     "headers": {"Authorization": "Bearer ${WEBHOOK_TOKEN:-}"}},
    {"name": "alertmanager", "kind": "alertmanager", "url": "${ALERTMANAGER_URL:-}"},
]


class _Templated(str):
    """A string filled from ``${ENV}`` that remembers its template (like the config loader's)."""

    template: str

    def __new__(cls, value: str, template: str) -> "_Templated":
        self = super().__new__(cls, value)
        self.template = template
        return self

    def __repr__(self) -> str:
        return repr(self.template)


def _fill(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str) and "${" in value:
        return _Templated(ENV_REF.sub(lambda m: env.get(m[1]) or (m[2] or ""), value), value)
    if isinstance(value, dict):
        return {k: _fill(v, env) for k, v in value.items()}
    return value


def default_channels(env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The default channel list as raw config, filled from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    return [_fill(dict(c), env) for c in DEFAULT_CHANNEL_TEMPLATES]
