"""The YAML document as composed nodes: syntax errors, duplicate keys, merges and ``${ENV}``.

Validation works on PyYAML's composed nodes (not constructed data) because
nodes keep their ``start_mark``, which is how every diagnostic gets its line
and column.
"""

from __future__ import annotations

import re
from typing import Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Diagnostic

STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"

# "$${" is a literal "${"; "${NAME}" and "${NAME:-default}" are references.
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_YAML_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_NAME_DEFAULT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


class Substituted(str):
    """A string with ``${...}`` filled in; its repr shows the template, never the value."""

    template: str

    def __new__(cls, value: str, template: str) -> "Substituted":
        self = super().__new__(cls, value)
        self.template = template
        return self

    def __repr__(self) -> str:
        return repr(self.template)


class Document:
    """One config text being checked: its nodes, and the diagnostics found so far."""

    def __init__(self, text: str, filename: str, env: Mapping[str, str]):
        self.text = text
        self.filename = filename
        self.env = env
        self.errors: list[Diagnostic] = []
        self.notices: list[Diagnostic] = []
        # id(node) -> the scalar's text before substitution, for substituted scalars.
        self.templates: dict[int, str] = {}
        # Scalars whose substitution failed: already reported, so no further errors there.
        self._failed: set[int] = set()
        self._resolver = yaml.resolver.Resolver()
        self._yaml_starts: list[int] | None = None  # where each line starts, as YAML counts lines

    # -- reporting -------------------------------------------------------------

    def error(self, where: Node | yaml.Mark | None, message: str) -> None:
        """Record ``message`` at a node's start (or a mark; None means the top of the file)."""
        if isinstance(where, Node) and id(where) in self._failed:
            return
        self.errors.append(self.diagnostic(where, message))

    def notice(self, where: Node | yaml.Mark | None, message: str) -> None:
        self.notices.append(self.diagnostic(where, message))

    def diagnostic(self, where: Node | yaml.Mark | None, message: str) -> Diagnostic:
        mark = where.start_mark if isinstance(where, Node) else where
        if mark is None:
            return Diagnostic(self.filename, 1, 1, message)
        return Diagnostic(self.filename, *self._position(mark), message)

    def _position(self, mark: yaml.Mark) -> tuple[int, int]:
        """1-based (line, col) counting only "\n" as a line break, as editors and grep do.

        YAML also breaks lines at a lone "\r", U+0085, U+2028 and U+2029; a file holding
        one of those would otherwise get line numbers past its last line.
        """
        if self._yaml_starts is None:
            self._yaml_starts = [0] + [m.end() for m in _YAML_BREAK.finditer(self.text)]
        starts = self._yaml_starts
        if len(starts) == self.text.count("\n") + 1 or mark.line >= len(starts):
            return mark.line + 1, mark.column + 1  # only "\n" breaks: YAML's count is the same
        index = min(starts[mark.line] + mark.column, len(self.text))
        return self.text.count("\n", 0, index) + 1, index - self.text.rfind("\n", 0, index)

    def shown(self, node: ScalarNode) -> str:
        """A scalar as it may appear in a message: quoted, with ``${...}`` unexpanded."""
        template = self.templates.get(id(node))
        text = repr(_clip(node.value if template is None else template))
        return text if template is None else f"{text} (after substitution)"

    def is_substituted(self, node: Node) -> bool:
        return id(node) in self.templates

    # -- composing -------------------------------------------------------------

    def compose(self) -> Node | None:
        """The root node with merges applied and ``${...}`` substituted; None when unusable."""
        try:
            root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            self.error(exc.problem_mark or exc.context_mark, _syntax_message(exc))
            return None
        except yaml.reader.ReaderError as exc:
            line = self.text.count("\n", 0, exc.position)
            col = exc.position - (self.text.rfind("\n", 0, exc.position) + 1)
            what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
            self.errors.append(Diagnostic(self.filename, line + 1, col + 1,
                                          f"unacceptable character {what}: {exc.reason}"))
            return None
        except yaml.YAMLError as exc:  # any other YAML failure: position unknown
            self.error(None, f"YAML error: {exc}")
            return None
        if root is not None:
            self._prepare(root, set())
        return root

    def _prepare(self, node: Node, seen: set[int]) -> None:
        """Check duplicate keys, apply ``<<`` merges and substitute ``${...}``, once per node."""
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            self._substitute(node)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                self._prepare(item, seen)
        elif isinstance(node, MappingNode):
            self._check_duplicates(node)
            for key, value in node.value:
                if key.tag != MERGE_TAG:
                    self._prepare(value, seen)
            if any(key.tag == MERGE_TAG for key, _ in node.value) and not self._merge(node):
                return
            for _, value in node.value:  # merged-in values
                self._prepare(value, seen)

    def _check_duplicates(self, node: MappingNode) -> None:
        first: dict[tuple[str, str], Node] = {}
        kept = []
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag != MERGE_TAG:
                earlier = first.get((key.tag, key.value))
                if earlier is not None:
                    self.error(key, f"duplicate key {key.value!r} "
                                    f"(first at line {earlier.start_mark.line + 1}, "
                                    f"column {earlier.start_mark.column + 1})")
                    continue
                first[(key.tag, key.value)] = key
            kept.append((key, value))
        node.value = kept

    def _merge(self, node: MappingNode) -> bool:
        try:
            yaml.constructor.SafeConstructor().flatten_mapping(node)
        except yaml.constructor.ConstructorError as exc:
            self.error(exc.problem_mark, "'<<' needs a mapping or a list of mappings")
            node.value = [pair for pair in node.value if pair[0].tag != MERGE_TAG]
            return False
        latest: dict[tuple[str, str], int] = {}  # own keys override merged ones
        for index, (key, _) in enumerate(node.value):
            if isinstance(key, ScalarNode):
                latest[(key.tag, key.value)] = index
        node.value = [pair for index, pair in enumerate(node.value)
                      if not isinstance(pair[0], ScalarNode)
                      or latest[(pair[0].tag, pair[0].value)] == index]
        return True

    def _substitute(self, node: ScalarNode) -> None:
        if node.tag != STR_TAG or "${" not in node.value:
            return
        template = node.value
        pieces: list[str] = []
        position = cursor = 0
        ok = True
        for match in _REFERENCE.finditer(template):
            pieces.append(template[position:match.start()])
            position = match.end()
            text = match.group(0)
            where, cursor = self._mark_of(node, text, cursor)
            if text == "$${":
                pieces.append("${")
                continue
            inner = match.group(1)
            parsed = _NAME_DEFAULT.fullmatch(inner) if inner is not None else None
            if inner is None:
                self.error(where, "unterminated '${' (write '$${' for a literal '${')")
                ok = False
            elif parsed is None:
                self.error(where, f"malformed environment reference {text!r}: "
                                  "expected ${NAME} or ${NAME:-default}")
                ok = False
            else:
                name, default = parsed.group(1), parsed.group(2)
                value = self.env.get(name)
                if not value and default is not None:
                    value = default
                if value is None:
                    self.error(where, f"environment variable {name} is not set")
                    ok = False
                else:
                    pieces.append(value)
        pieces.append(template[position:])
        self.templates[id(node)] = template
        if not ok:
            self._failed.add(id(node))
            return
        node.value = "".join(pieces)
        if node.style is None:  # an unquoted ${PORT} may be a number
            node.tag = self._resolver.resolve(ScalarNode, node.value, (True, False))

    def _mark_of(self, node: ScalarNode, reference: str, cursor: int) -> tuple[yaml.Mark, int]:
        """The mark of ``reference`` in the scalar's source at or after ``cursor``, and the next cursor.

        Falls back to the node's start when the source spells it differently (escapes).
        """
        start, end = node.start_mark, node.end_mark
        source = self.text[start.index:end.index]
        offset = source.find(reference, cursor)
        if offset < 0:
            return start, cursor
        before = source[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            column = start.column + offset
        else:
            column = offset - (before.rfind("\n") + 1)
        mark = yaml.Mark(start.name, start.index + offset, start.line + newlines, column, None, None)
        return mark, offset + len(reference)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and problem.startswith("but "):  # "expected X ..., but found Y"
        return f"YAML syntax error: {exc.context}, {problem}"
    message = f"YAML syntax error: {problem}"
    if "'\\t'" in problem:
        return message + " (indent with spaces, not tabs)"
    if exc.context and exc.problem:
        context = exc.context
        if exc.context_mark is not None and exc.context_mark is not exc.problem_mark:
            context += (f" that started at line {exc.context_mark.line + 1}, "
                        f"column {exc.context_mark.column + 1}")
        message += f" ({context})"
    return message
