"""Theme files: small YAML colour tables turned into Textual themes.

The canonical files ship inside the package (``qbconsole/tui/themes/``); the
repository's top-level ``themes/`` holds the same files for people to copy.
Users may add their own ``*.yaml`` next to their settings file, in ``themes/``.
A broken file is reported and skipped, never fatal.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable

import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme

PACKAGE_THEME_DIR = Path(__file__).parent / "themes"
APP_CSS_PATH = PACKAGE_THEME_DIR / "app.tcss"
BUILTIN_ORDER = ("dark", "light", "high-contrast")
DEFAULT_THEME = "dark"

COLOUR_KEYS = (
    "primary", "secondary", "accent", "background", "surface", "panel",
    "foreground", "success", "warning", "error",
)
REQUIRED_KEYS = ("name", "primary", "dark")
ALLOWED_KEYS = frozenset(("name", "dark", *COLOUR_KEYS))


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message starts with ``file:line:col:``."""


def _position(path: Path, node: yaml.Node | None) -> str:
    if node is None:
        return f"{path}:1:1"
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _key_nodes(root: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Map each key of a YAML mapping node to its (key node, value node)."""
    return {k.value: (k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)}


def load_theme_file(path: Path) -> Theme:
    """Read one theme file; raise ThemeFileError naming the line and column of the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ThemeFileError(f"{path}:1:1: cannot read: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text)
        values = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        raise ThemeFileError(f"{where}: invalid YAML: {exc.problem or exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ThemeFileError(f"{_position(path, root)}: a theme file is a mapping of name, dark and colours")
    nodes = _key_nodes(root)
    for key, (key_node, _) in nodes.items():
        if key not in ALLOWED_KEYS:
            close = difflib.get_close_matches(key, sorted(ALLOWED_KEYS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ThemeFileError(f"{_position(path, key_node)}: unknown key {key!r}{hint}")
    for key in REQUIRED_KEYS:
        if key not in nodes:
            raise ThemeFileError(f"{_position(path, root)}: missing required key {key!r}")
    fields: dict[str, object] = {}
    name = values["name"]
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{_position(path, nodes['name'][1])}: name must be a non-empty string")
    fields["name"] = name.strip()
    if not isinstance(values["dark"], bool):
        raise ThemeFileError(f"{_position(path, nodes['dark'][1])}: dark must be true or false")
    fields["dark"] = values["dark"]
    for key in COLOUR_KEYS:
        if key not in values:
            continue
        raw = values[key]
        try:
            Color.parse(str(raw))
        except ColorParseError:
            raise ThemeFileError(
                f"{_position(path, nodes[key][1])}: {key}: {raw!r} is not a colour (use e.g. \"#4C9BE8\")"
            ) from None
        fields[key] = str(raw)
    return Theme(**fields)  # type: ignore[arg-type]


def load_themes(directories: Iterable[Path]) -> tuple[list[Theme], list[str]]:
    """Load every ``*.yaml`` theme in the directories (later ones override earlier by name).

    Returns the themes in a stable order (built-ins first) and one message per broken file.
    """
    found: dict[str, Theme] = {}
    errors: list[str] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                errors.append(str(exc))
                continue
            found[theme.name] = theme
    order = [n for n in BUILTIN_ORDER if n in found] + sorted(n for n in found if n not in BUILTIN_ORDER)
    return [found[n] for n in order], errors
