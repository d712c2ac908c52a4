"""Reading a whole ``rules.yaml``: the top-level sections, into a :class:`Config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

from yaml.nodes import MappingNode, Node, ScalarNode

from . import datasource, rules, schema, sources
from .diagnostics import ConfigError, Diagnostic
from .document import Document
from .model import Config

SECTIONS: dict[str, Callable[[Document, Node], object]] = {
    "settings": sources.read_settings,
    "sources": sources.read_sources,
    "recording_rules": rules.read_recording_rules,
    "alert_rules": rules.read_alert_rules,
    "groups": rules.read_groups,
    "channels": rules.read_channels,
    "routes": rules.read_routes,
    "inhibit_rules": rules.read_inhibit_rules,
    "optimizations": rules.read_optimizations,
    "slos": rules.read_slos,
    "experiments": rules.read_experiments,
    "datasource": datasource.read_datasource,
}

# Sections checked and kept but not acted on yet; each capability removes its own.
NOT_USED_YET: frozenset[str] = frozenset()  # every section is in use (reports, Overview targets)


def parse(text: str, filename: str, env: Mapping[str, str]) -> tuple[Config | None, list[Diagnostic], list[Diagnostic]]:
    """(config or None, errors sorted by position, notices) for a config text."""
    doc = Document(text, filename, env)
    root = doc.compose()
    config = None
    if not doc.errors:
        config = _read_root(doc, root)
    errors = sorted(doc.errors, key=lambda d: (d.line, d.col))
    if errors:
        return None, errors, doc.notices
    return config, [], doc.notices


def _read_root(doc: Document, root: Node | None) -> Config:
    if schema.is_null(root):
        return Config(file=doc.filename)
    if not isinstance(root, MappingNode):
        doc.error(None, "expected a mapping of sections at the top level "
                        f"({', '.join(SECTIONS)}), got {schema.kind_of(doc, root)}")
        return Config(file=doc.filename)
    values: dict[str, object] = {}
    routes_node: Node | None = None
    datasource_node: Node | None = None
    optimizations_node: Node | None = None
    for key, value in root.value:
        if not (isinstance(key, ScalarNode) and key.tag == schema.STR_TAG):
            doc.error(key, f"expected a section name, got {schema.kind_of(doc, key)}")
            continue
        if key.value.startswith("x-"):  # extension keys: a place to keep YAML anchors
            continue
        if key.value not in SECTIONS:
            doc.error(key, f"unknown key {key.value!r} at the top level"
                           f"{schema.did_you_mean(key.value, SECTIONS)}")
            continue
        values[key.value] = SECTIONS[key.value](doc, value)
        if key.value == "routes":
            routes_node = value
        if key.value == "optimizations":
            optimizations_node = value
        if key.value == "datasource":
            datasource_node = value
        if key.value in NOT_USED_YET and values[key.value]:
            doc.notice(key, f"section {key.value!r} is accepted but not used yet")
    if routes_node is not None and not doc.errors:
        rules.check_route_channels(doc, routes_node, values.get("channels"))  # type: ignore[arg-type]
    if optimizations_node is not None and not doc.errors:
        alerts = {r.get("alert") or r.get("name") for r in values.get("alert_rules") or []}  # type: ignore[union-attr]
        alerts |= {r.get("alert") for g in values.get("groups") or [] for r in g.get("rules") or []}  # type: ignore[union-attr]
        rules.check_optimization_alerts(doc, optimizations_node, {a for a in alerts if a})
    if datasource_node is not None and not doc.errors:
        datasource.check_recording_rules(doc, datasource_node, values)
    notices = tuple(str(n) for n in doc.notices)
    return Config(file=doc.filename, notices=notices, **values)


def read_text(path: str | os.PathLike) -> tuple[str | None, Diagnostic | None]:
    """The file's text, or a diagnostic saying why it cannot be read."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, Diagnostic(name, 1, 1, f"cannot read file: {exc.strerror or exc}")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        return None, Diagnostic(name, line, col, f"not valid UTF-8: byte 0x{data[exc.start]:02x}")


def load(path: str | os.PathLike, env: Mapping[str, str]) -> Config:
    text, problem = read_text(path)
    if problem is not None:
        raise ConfigError([problem])
    config, errors, _ = parse(text, str(path), env)
    if errors:
        raise ConfigError(errors)
    return config
