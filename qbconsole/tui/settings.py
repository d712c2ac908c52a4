"""The console's remembered choices (for now: the theme), in a small JSON file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping


def default_settings_path() -> Path:
    """``$XDG_CONFIG_HOME/qbconsole/settings.json``, else ``~/.config/qbconsole/settings.json``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "qbconsole" / "settings.json"


def load_settings(path: Path) -> tuple[dict[str, Any], str | None]:
    """Read the settings; a missing file is empty settings, a broken one is empty plus a message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"{path}: cannot read settings: {exc.strerror or exc}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"{path}:{exc.lineno}:{exc.colno}: settings are not valid JSON: {exc.msg}"
    if not isinstance(data, dict):
        return {}, f"{path}: settings must be a JSON object"
    return data, None


def save_settings(path: Path, settings: Mapping[str, Any]) -> None:
    """Write the settings atomically (a temporary file renamed over the old one), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(settings), handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
