"""Loading and validating ``rules.yaml``, with every problem reported as ``file:line:col: message``.

    config = load_config("rules.yaml")          # raises ConfigError
    config, errors, notices = check_file(path)  # for `qbconsole rules check`
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .diagnostics import ConfigError, Diagnostic
from .durations import format_duration, parse_duration
from .loader import NOT_USED_YET, SECTIONS, load, parse, read_text
from .model import SOURCE_KINDS, Config, Settings, SourceConfig

__all__ = [
    "DEFAULT_RULES", "NOT_USED_YET", "SECTIONS", "SOURCE_KINDS", "Config", "ConfigError",
    "Diagnostic", "Settings", "SourceConfig", "check_file", "format_duration", "load_config",
    "parse_config", "parse_duration",
]

DEFAULT_RULES: Path = Path(__file__).with_name("default_rules.yaml")
"""The shipped default rules; the repository's top-level ``rules.yaml`` is a copy of it."""


def load_config(path: str | os.PathLike, *, env: Mapping[str, str] | None = None) -> Config:
    """The validated config in ``path``; raises ConfigError listing every problem.

    ``${VAR}`` references are filled from ``env`` (default: ``os.environ``).
    """
    return load(path, os.environ if env is None else env)


def parse_config(text: str, filename: str = "<string>", *,
                 env: Mapping[str, str] | None = None) -> Config:
    """Like :func:`load_config` for a text; ``filename`` is used in diagnostics."""
    config, errors, _ = parse(text, filename, os.environ if env is None else env)
    if errors:
        raise ConfigError(errors)
    return config


def check_file(path: str | os.PathLike, *, env: Mapping[str, str] | None = None
               ) -> tuple[Config | None, list[Diagnostic], list[str]]:
    """(config or None, errors, notices) for ``qbconsole rules check``; never raises ConfigError."""
    text, problem = read_text(path)
    if problem is not None:
        return None, [problem], []
    config, errors, notices = parse(text, str(path), os.environ if env is None else env)
    return config, errors, [str(n) for n in notices]
