"""Alertmanager as the router: its alerts in the console, acknowledgements as its silences.

Forwarding qbconsole's own alerts is the notify ``alertmanager`` channel's job
(``POST /api/v2/alerts``); this package reads back (:mod:`sync`) over the API
described in :mod:`api`.

Which Alertmanager: ``datasource.alertmanager_url`` when set, else the URL of
the first enabled ``alertmanager`` notification channel (the Alertmanager
qbconsole forwards to is the one it mirrors), else none and no sync runs.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from qbconsole.alertmanager.api import AlertmanagerClient, AlertmanagerError, AmAlert, AmSilence
from qbconsole.alertmanager.sync import AlertmanagerSync, SyncResult

__all__ = ["AlertmanagerClient", "AlertmanagerError", "AlertmanagerSync", "AmAlert", "AmSilence",
           "SyncResult", "build_sync", "sync_target"]

log = logging.getLogger("qbconsole.alertmanager")


def sync_target(config, env: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]] | None:
    """(base URL, extra headers) of the Alertmanager to mirror, or None (see the module docstring)."""
    env = os.environ if env is None else env
    datasource = config.datasource
    if datasource.alertmanager_url:
        token = env.get(datasource.alertmanager_bearer_token_env)
        return datasource.alertmanager_url, ({"Authorization": f"Bearer {token}"} if token else {})
    from qbconsole.notify.config import parse_channels

    try:
        channels = parse_channels(config.channels or None, env)
    except ValueError:
        return None  # the notifier reports a bad channel list
    for channel in channels:
        if channel.kind == "alertmanager" and channel.enabled:
            headers: dict[str, Any] = dict(channel.options.get("headers") or {})
            return str(channel.options["url"]), {str(k): str(v) for k, v in headers.items()}
    return None


def build_sync(store, config, env: Mapping[str, str] | None = None) -> AlertmanagerSync | None:
    """The sync loop's worker for ``config``, or None when no Alertmanager is configured."""
    target = sync_target(config, env)
    if target is None:
        return None
    url, headers = target
    client = AlertmanagerClient(url, timeout_s=min(10.0, config.datasource.alertmanager_sync_interval * 2),
                                headers=headers)
    log.info("mirroring the alerts of the Alertmanager at %s", client.origin)
    return AlertmanagerSync(store, client)
