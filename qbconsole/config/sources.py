"""The ``settings`` and ``sources`` sections."""

from __future__ import annotations

import re
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import schema as s
from .document import Document
from .durations import format_duration
from .model import (SOURCE_KINDS, Settings, SourceConfig, default_interval, default_sources,
                    default_timeout)

LISTEN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _listen(doc: Document, node: Node) -> str:
    value = s.nonempty_string(doc, node)
    m = LISTEN.fullmatch(value)
    if not m or int(m["port"]) > 65535:
        raise s.Invalid("expected HOST:PORT, e.g. 127.0.0.1:9465 (port 0 picks a free one)")
    return value


def _metrics_listen(doc: Document, node: Node) -> str:
    """HOST:PORT, or a bare port meaning 127.0.0.1:PORT."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:int":
        port = s.integer(doc, node)
        if not 0 <= port <= 65535:
            raise s.Invalid(f"not a port number: {port}")
        return f"127.0.0.1:{port}"
    return _listen(doc, node)


SETTINGS_FIELDS = {
    "raw_retention": s.positive(s.duration),
    "rollup_retention": s.positive(s.duration),
    "evaluation_interval": s.positive(s.duration),
    "refresh": s.positive(s.duration),
    "ingest_listen": _listen,
    "ingest_token_env": s.matching(ENV_NAME, "environment variable name"),
    "ingest_rate": s.positive(s.number),
    "metrics_listen": _metrics_listen,
    "metrics_token_env": s.matching(ENV_NAME, "environment variable name"),
}

SOURCE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HTTP_METHODS = ("GET", "HEAD", "POST")  # what the http probe sends
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _url(doc: Document, node: Node) -> str:
    value = s.string(doc, node)
    if not value.startswith(("http://", "https://")):
        raise s.Invalid(f"expected an http:// or https:// URL, got {doc.shown(node)}")
    return value


def _headers(doc: Document, node: Node) -> dict[str, str]:
    if s.is_null(node):
        return {}
    if not isinstance(node, MappingNode):
        raise s.expected("a mapping of header names to values", doc, node)
    result = {}
    for key, value in node.value:
        if not (isinstance(key, ScalarNode) and _HEADER_NAME.fullmatch(str(key.value))):
            doc.error(key, f"invalid HTTP header name {str(key.value)!r}")
            continue
        try:
            result[key.value] = s.string(doc, value)
        except s.Invalid as exc:
            doc.error(value, f"header {key.value!r}: {exc.message}")
    return result


def _status(doc: Document, node: Node) -> int:
    code = s.integer(doc, node)
    if not 100 <= code <= 599:
        raise s.Invalid(f"not an HTTP status code: {code}")
    return code


def _statuses(doc: Document, node: Node) -> list[int]:
    if isinstance(node, SequenceNode):
        return s.list_of(_status, "status codes")(doc, node)
    return [_status(doc, node)]


def _dsn(doc: Document, node: Node) -> str:
    value = s.nonempty_string(doc, node)
    if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise s.Invalid("expected a DSN starting with sqlite:/// or postgresql://")
    return value


def _column(doc: Document, node: Node) -> str:
    value = s.string(doc, node)
    if not s.LABEL_NAME.fullmatch(value) or value.startswith("__"):
        raise s.Invalid(f"invalid column name {doc.shown(node)}: use letters, digits and '_' "
                        "(rename it with AS in the query)")
    return value


_columns = s.list_of(_column, "column names")


def _jitter(doc: Document, node: Node) -> float:
    value = s.number(doc, node)
    if not 0 <= value <= 1:
        raise s.Invalid(f"must be between 0 and 1 (a fraction of the interval), got {value:g}")
    return value


COMMON_FIELDS: dict[str, s.Parser] = {
    "name": s.matching(SOURCE_NAME, "source name (letters, digits, '_', '.', '-')"),
    "kind": s.one_of(SOURCE_KINDS, "source kind"),
    "interval": s.positive(s.duration),
    "timeout": s.positive(s.duration),
    "jitter": _jitter,
}

# Kind-specific keys, kept in SourceConfig.options. Each collector's issue owns its row.
OPTION_FIELDS: dict[str, dict[str, s.Parser]] = {
    "system": {},
    "http": {"url": _url, "method": s.one_of(HTTP_METHODS, "HTTP method"),
             "expected_status": _statuses, "headers": _headers, "body": s.string,
             "target": s.nonempty_string, "follow_redirects": s.boolean},
    "prometheus": {"url": _url, "labels": s.string_map("labels"), "headers": _headers,
                   "honor_timestamps": s.boolean,
                   "bearer_token_env": s.matching(_ENV_NAME, "environment variable name")},
    "sql": {"dsn": _dsn, "query": s.nonempty_string,
            "metric": s.matching(s.METRIC_NAME, "metric name"), "labels": s.string_map("labels"),
            "value_columns": _columns, "label_columns": _columns},
}
REQUIRED_OPTIONS = {"system": (), "http": ("url",), "prometheus": ("url",), "sql": ("dsn", "query")}


def read_settings(doc: Document, node: Node) -> Settings:
    if s.is_null(node):
        return Settings()
    fields = s.read_mapping(doc, node, "settings", SETTINGS_FIELDS)
    if fields is None:
        return Settings()
    settings = Settings(**fields.values)
    if (fields.valid("rollup_retention") and fields.valid("raw_retention")
            and settings.rollup_retention < settings.raw_retention):
        doc.error(fields.nodes["rollup_retention"],
                  "rollup_retention must be at least raw_retention "
                  "(rollups are made from raw samples)")
    return settings


def read_sources(doc: Document, node: Node) -> list[SourceConfig]:
    if s.is_null(node):
        return default_sources()
    if not isinstance(node, SequenceNode):
        doc.error(node, f"expected a list of sources, got {s.kind_of(doc, node)}")
        return []
    sources: list[SourceConfig] = []
    first_line: dict[str, int] = {}
    for item in node.value:
        source = _read_source(doc, item)
        if source is None:
            continue
        if source.name in first_line:
            doc.error(item, f"duplicate source name {source.name!r} "
                            f"(first defined at line {first_line[source.name]})")
            continue
        first_line[source.name] = source.line
        sources.append(source)
    return sources


def _read_source(doc: Document, node: Node) -> SourceConfig | None:
    kind = _peek_kind(doc, node)
    if kind in OPTION_FIELDS:
        options, what = OPTION_FIELDS[kind], f"{kind} source"
    else:  # unknown kind: reported once; accept every known option key meanwhile
        options = {k: p for table in OPTION_FIELDS.values() for k, p in table.items()}
        what = "source"
    fields = s.read_mapping(doc, node, what, {**COMMON_FIELDS, **options},
                            required=("kind", *REQUIRED_OPTIONS.get(kind, ())))
    if fields is None or not fields.valid("kind"):
        return None
    interval = fields.get("interval", default_interval(kind))
    timeout = fields.get("timeout", default_timeout(interval))
    interval_known = fields.valid("interval") or not fields.present("interval")
    if fields.valid("timeout") and interval_known and timeout > interval:
        default = "" if fields.present("interval") else ", the default"
        doc.error(fields.nodes["timeout"], f"timeout ({format_duration(timeout)}) must not "
                                           f"exceed interval ({format_duration(interval)}{default})")
    option_values: dict[str, Any] = {k: v for k, v in fields.values.items() if k in options}
    return SourceConfig(
        name=fields.get("name", kind), kind=kind, interval=interval, timeout=timeout,
        jitter=fields.get("jitter", 0.1), options=option_values, line=node.start_mark.line + 1)


def _peek_kind(doc: Document, node: Node) -> str | None:
    if not isinstance(node, MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == "kind" and isinstance(value, ScalarNode):
            return value.value
    return None
