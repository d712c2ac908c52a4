"""Small validators over composed YAML nodes; each failure is reported at its node.

A parser is ``(doc, node) -> value`` and raises :class:`Invalid` when the value
is wrong. :func:`read_mapping` applies a table of parsers to a mapping and
reports unknown keys (with a "did you mean" hint) and missing required keys.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .document import STR_TAG, Document, Substituted
from .durations import parse_duration

Parser = Callable[[Document, Node], Any]

_TAG_NAMES = {
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    STR_TAG: "string",
    "tag:yaml.org,2002:timestamp": "timestamp",
    "tag:yaml.org,2002:binary": "binary",
}
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_NODES = 100_000  # bound on free-form data, against alias "billion laughs"


class Invalid(Exception):
    """A value that does not fit; ``node`` overrides where it is reported."""

    def __init__(self, message: str, node: Node | None = None):
        super().__init__(message)
        self.message = message
        self.node = node


def kind_of(doc: Document, node: Node) -> str:
    """What a node is, for "got ..." messages: ``list``, ``mapping``, ``string 'x'``, ..."""
    if isinstance(node, SequenceNode):
        return "list"
    if isinstance(node, MappingNode):
        return "mapping"
    name = _TAG_NAMES.get(node.tag)
    if name is None:
        return f"value tagged {node.tag}"
    if name == "null":
        return "null (empty value)"
    if name == "string" or doc.is_substituted(node):
        return f"{name} {doc.shown(node)}"
    return f"{name} {node.value}"


def expected(what: str, doc: Document, node: Node) -> Invalid:
    return Invalid(f"expected {what}, got {kind_of(doc, node)}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null")


# -- scalar parsers -----------------------------------------------------------


def string(doc: Document, node: Node) -> str:
    """A string; an unquoted ``${VAR}`` is one too, even when its value looks like a number."""
    template = doc.templates.get(id(node))
    if not isinstance(node, ScalarNode) or (node.tag != STR_TAG and template is None):
        raise expected("a string", doc, node)
    return Substituted(node.value, template) if template is not None else node.value


def nonempty_string(doc: Document, node: Node) -> str:
    value = string(doc, node)
    if not value.strip():
        raise Invalid("must not be empty")
    return value


def number(doc: Document, node: Node) -> float:
    if not isinstance(node, ScalarNode) or node.tag not in _NUMBER_TAGS:
        raise expected("a number", doc, node)
    value = float(_construct(node))
    if not math.isfinite(value):
        raise Invalid("must be a finite number")
    return value


def integer(doc: Document, node: Node) -> int:
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:int":
        raise expected("an integer", doc, node)
    return int(_construct(node))


def boolean(doc: Document, node: Node) -> bool:
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
        raise expected("true or false", doc, node)
    return bool(_construct(node))


def duration(doc: Document, node: Node) -> float:
    """Seconds; a number, or a Prometheus duration string such as ``1h30m``."""
    if not isinstance(node, ScalarNode) or node.tag not in (*_NUMBER_TAGS, STR_TAG):
        raise expected("a duration", doc, node)
    raw = node.value if node.tag == STR_TAG else _construct(node)
    try:
        return parse_duration(raw)
    except ValueError:
        raise Invalid(f"invalid duration {doc.shown(node)}: "
                      "use e.g. 30s, 5m, 1h30m, 500ms, 1d or a number of seconds") from None


def positive(parser: Parser) -> Parser:
    def parse(doc: Document, node: Node) -> float:
        value = parser(doc, node)
        if value <= 0:
            raise Invalid(f"must be positive, got {_number_text(value)}")
        return value
    return parse


def non_negative(parser: Parser) -> Parser:
    def parse(doc: Document, node: Node) -> float:
        value = parser(doc, node)
        if value < 0:
            raise Invalid(f"must not be negative, got {_number_text(value)}")
        return value
    return parse


def one_of(choices: Iterable[str], what: str) -> Parser:
    """A string from ``choices``; otherwise "unknown <what> 'x'; did you mean ...?"."""
    options = tuple(choices)

    def parse(doc: Document, node: Node) -> str:
        value = string(doc, node)
        if value not in options:
            raise Invalid(f"unknown {what} {doc.shown(node)}{did_you_mean(value, options)} "
                          f"(expected one of: {', '.join(options)})")
        return value
    return parse


def matching(pattern: re.Pattern[str], what: str) -> Parser:
    def parse(doc: Document, node: Node) -> str:
        value = string(doc, node)
        if not pattern.fullmatch(value):
            raise Invalid(f"invalid {what} {doc.shown(node)}")
        return value
    return parse


def string_map(what: str) -> Parser:
    """A mapping of label names to strings, as ``labels`` and ``annotations`` are."""
    def parse(doc: Document, node: Node) -> dict[str, str]:
        if is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            raise expected("a mapping", doc, node)
        result: dict[str, str] = {}
        for key, value in node.value:
            if not _is_string(key):
                doc.error(key, f"expected a string key in {what}, got {kind_of(doc, key)}")
                continue
            if not LABEL_NAME.fullmatch(key.value) or key.value.startswith("__"):
                doc.error(key, f"invalid name {key.value!r} in {what}: use letters, digits "
                               "and '_', not starting with a digit or '__'")
                continue
            try:
                result[key.value] = string(doc, value)
            except Invalid as exc:
                doc.error(value, f"{what} {key.value!r}: {exc.message}")
        return result
    return parse


def list_of(item: Parser, what: str) -> Parser:
    """A list whose items each go through ``item``; null is an empty list."""
    def parse(doc: Document, node: Node) -> list[Any]:
        if is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            raise expected(f"a list of {what}", doc, node)
        result = []
        for child in node.value:
            try:
                result.append(item(doc, child))
            except Invalid as exc:
                doc.error(exc.node or child, exc.message)
        return result
    return parse


# -- mappings -----------------------------------------------------------------


@dataclass
class Fields:
    """The checked contents of one mapping: valid values, and the nodes of every key present."""

    node: MappingNode
    values: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    keys: dict[str, Node] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def present(self, key: str) -> bool:
        return key in self.nodes

    def valid(self, key: str) -> bool:
        return key in self.values


def read_mapping(doc: Document, node: Node, what: str, fields: Mapping[str, Parser],
                 required: Iterable[str] = ()) -> Fields | None:
    """Check a mapping against ``fields`` (key -> parser); None when it is not a mapping."""
    if not isinstance(node, MappingNode):
        doc.error(node, f"expected a mapping for {what}, got {kind_of(doc, node)}")
        return None
    result = Fields(node)
    for key, value in node.value:
        if not _is_string(key):
            doc.error(key, f"expected a string key in {what}, got {kind_of(doc, key)}")
            continue
        name = key.value
        if name not in fields:
            doc.error(key, f"unknown key {name!r} in {what}{did_you_mean(name, fields)}")
            continue
        result.keys[name] = key
        result.nodes[name] = value
        try:
            result.values[name] = fields[name](doc, value)
        except Invalid as exc:
            doc.error(exc.node or value, f"{name}: {exc.message}")
    for name in required:
        if name not in result.nodes:
            doc.error(node, f"missing required key {name!r} in {what}")
    return result


def to_python(doc: Document, node: Node) -> Any:
    """Plain Python data for a node (free-form sections); mapping keys are always strings."""
    budget = [MAX_NODES]

    def convert(current: Node, active: frozenset[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise Invalid("too much data (aliases expand past the limit)", node)
        if id(current) in active:
            raise Invalid("recursive alias", current)
        if isinstance(current, SequenceNode):
            inner = active | {id(current)}
            return [convert(child, inner) for child in current.value]
        if isinstance(current, MappingNode):
            inner = active | {id(current)}
            result = {}
            for key, value in current.value:
                if not isinstance(key, ScalarNode):
                    raise Invalid(f"expected a string key, got {kind_of(doc, key)}", key)
                result[key.value] = convert(value, inner)  # keys stay text: `on` is not True
            return result
        if current.tag == STR_TAG or doc.is_substituted(current):
            return string(doc, current)  # substituted text stays text: "007" is not 7
        return _construct(current)

    return convert(node, frozenset())


def _construct(node: ScalarNode) -> Any:
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        raise Invalid(exc.problem or f"cannot read value tagged {node.tag}", node) from None


def _is_string(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == STR_TAG


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
