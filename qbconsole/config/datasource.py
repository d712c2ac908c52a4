"""The ``datasource`` section: the store (``local``) or a Prometheus server, and the Alertmanager.

    datasource:
      kind: prometheus                  # or local (the default)
      url: http://127.0.0.1:9090        # the Prometheus HTTP API's base URL
      bearer_token_env: PROM_TOKEN      # optional; the token is read from this variable
      timeout: 10s                      # per query
      local_sources: false              # also run the sources section's collectors
      alertmanager_url: http://127.0.0.1:9093   # mirrored into the Alerts section
      alertmanager_bearer_token_env: AM_TOKEN
      alertmanager_sync_interval: 10s
"""

from __future__ import annotations

from typing import Any, Mapping

from yaml.nodes import Node

from . import schema as s
from .document import Document
from .model import DATASOURCE_KINDS, DatasourceConfig
from .sources import ENV_NAME


def _url(doc: Document, node: Node) -> str:
    value = s.string(doc, node)
    if value and not value.startswith(("http://", "https://")):
        raise s.Invalid(f"expected an http:// or https:// URL, got {doc.shown(node)}")
    return value


FIELDS: dict[str, s.Parser] = {
    "kind": s.one_of(DATASOURCE_KINDS, "datasource kind"),
    "url": _url,
    "bearer_token_env": s.matching(ENV_NAME, "environment variable name"),
    "timeout": s.positive(s.duration),
    "local_sources": s.boolean,
    "alertmanager_url": _url,
    "alertmanager_bearer_token_env": s.matching(ENV_NAME, "environment variable name"),
    "alertmanager_sync_interval": s.positive(s.duration),
}
PROMETHEUS_ONLY = ("url", "bearer_token_env", "timeout", "local_sources")


def read_datasource(doc: Document, node: Node) -> DatasourceConfig:
    if s.is_null(node):
        return DatasourceConfig()
    fields = s.read_mapping(doc, node, "datasource", FIELDS)
    if fields is None:
        return DatasourceConfig()
    kind = fields.get("kind", "local")
    if kind == "prometheus" and (not fields.present("url") or (fields.valid("url") and not fields.get("url"))):
        where = fields.nodes.get("url", node)
        doc.error(where, "a prometheus datasource needs 'url' (the Prometheus server's base URL, "
                         "e.g. http://127.0.0.1:9090)")
    if kind == "local" and (fields.valid("kind") or not fields.present("kind")):
        for key in PROMETHEUS_ONLY:
            if fields.present(key):
                doc.error(fields.keys[key], f"{key!r} applies to kind: prometheus only "
                                            "(add 'kind: prometheus', or remove it)")
    values: dict[str, Any] = dict(fields.values)
    values["alertmanager_url"] = values.get("alertmanager_url") or None
    values["url"] = values.get("url") or None
    return DatasourceConfig(**values)


def check_recording_rules(doc: Document, node: Node, values: Mapping[str, Any]) -> None:
    """With a Prometheus datasource the recording rules are not evaluated: say so once."""
    datasource = values.get("datasource")
    if not isinstance(datasource, DatasourceConfig) or not datasource.remote:
        return
    count = len(values.get("recording_rules") or [])
    count += sum(1 for g in values.get("groups") or [] for r in g.get("rules") or [] if "record" in r)
    if count:
        doc.notice(node, f"{count} recording rule(s) are not evaluated with a Prometheus datasource: "
                         "Prometheus owns those series, so put the rules in its own rule files")
