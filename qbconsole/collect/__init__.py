"""Collectors: sources of samples and the scheduler that runs them.

``build_sources()`` turns the config's source entries into Source objects;
``Scheduler`` runs them and hands their samples to the store.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from qbconsole.collect.base import Source, SourceStatus, check_timing, error_line
from qbconsole.collect.http import HttpProbeSource
from qbconsole.collect.prometheus import PrometheusSource, ScrapeFailed
from qbconsole.collect.scheduler import DURATION_METRIC, UP_METRIC, Scheduler
from qbconsole.collect.sql import SqlSource
from qbconsole.collect.system import SystemSource

__all__ = [
    "DURATION_METRIC", "SOURCE_KINDS", "HttpProbeSource", "PrometheusSource", "Scheduler", "ScrapeFailed",
    "Source", "SourceStatus", "SqlSource", "SystemSource", "UP_METRIC", "build_sources", "error_line",
    "option_names",
]

# kind (as written in rules.yaml) -> factory(name=, interval=, timeout=, jitter=, **options)
SOURCE_KINDS: dict[str, Callable[..., Source]] = {
    "system": SystemSource,
    "http": HttpProbeSource,
    "prometheus": PrometheusSource,
    "sql": SqlSource,
}


def option_names(factory: Callable[..., Source]) -> set[str]:
    """The options a source kind takes (its keyword parameters beyond the timing ones)."""
    params = inspect.signature(factory).parameters.values()
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {p.name for p in params if p.kind in keyword} - {"self", "name", "interval", "timeout", "jitter"}


def build_sources(configs: list[Any]) -> list[Source]:
    """Source objects for config entries with ``name, kind, interval, timeout,
    jitter, options``; None timing fields take the source's default.

    Raises ValueError for an unknown kind, an option the kind does not take,
    bad timing or a repeated name.
    """
    sources: list[Source] = []
    seen: set[str] = set()
    for cfg in configs:
        name, kind = cfg.name, cfg.kind
        factory = SOURCE_KINDS.get(kind)
        if factory is None:
            known = ", ".join(sorted(SOURCE_KINDS))
            raise ValueError(f"source {name!r}: unknown kind {kind!r} (known kinds: {known})")
        if name in seen:
            raise ValueError(f"source name {name!r} is used twice")
        seen.add(name)
        timing = {k: getattr(cfg, k, None) for k in ("interval", "timeout", "jitter")}
        kwargs = {k: v for k, v in timing.items() if v is not None}
        options = dict(getattr(cfg, "options", None) or {})
        clash = sorted(set(options) & {"name", *timing})
        if clash:
            raise ValueError(f"source {name!r}: {', '.join(clash)} belong outside options")
        allowed = option_names(factory)
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(
                f"source {name!r}: kind {kind!r} takes no option {', '.join(map(repr, unknown))}"
                f" (options: {', '.join(sorted(allowed)) or 'none'})"
            )
        source = factory(name=name, **kwargs, **options)
        check_timing(source.name, source.interval, source.timeout, source.jitter)
        sources.append(source)
    return sources
