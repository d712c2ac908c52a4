"""The loaded configuration: plain frozen dataclasses, times in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0

SOURCE_KINDS = ("system", "http", "prometheus", "sql")
DATASOURCE_KINDS = ("local", "prometheus")


@dataclass(frozen=True)
class Settings:
    """Global settings; every duration is in seconds."""

    raw_retention: float = 7 * DAY
    rollup_retention: float = 90 * DAY
    evaluation_interval: float = 15.0
    refresh: float = 1.0
    # The agent's event ingest endpoint: off unless ingest_listen is set; clients
    # authenticate with the token in the environment variable ingest_token_env.
    ingest_listen: str | None = None
    ingest_token_env: str = "QBCONSOLE_INGEST_TOKEN"
    ingest_rate: float = 100.0  # requests per second per client address (a token bucket)
    # The agent's own /metrics (Prometheus text format): off unless metrics_listen is set
    # (a bare port means 127.0.0.1:PORT). Scrapers send the token in metrics_token_env as a
    # bearer token when that variable is set; an address other than loopback requires it.
    metrics_listen: str | None = None
    metrics_token_env: str = "QBCONSOLE_METRICS_TOKEN"


@dataclass(frozen=True)
class SourceConfig:
    """One metric source; ``options`` holds the kind-specific keys (url, dsn, ...).

    ``jitter`` is a fraction of ``interval``; ``line`` is where the source is
    defined in the file (0 for the built-in default).
    """

    name: str
    kind: str
    interval: float
    timeout: float
    jitter: float = 0.1
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def default_interval(kind: str) -> float:
    """Seconds between two scrapes when a source does not say."""
    return 5.0 if kind == "system" else 10.0


def default_timeout(interval: float) -> float:
    return min(interval, 10.0)


def default_sources() -> list[SourceConfig]:
    """What a file without a ``sources`` section gets: this machine, every 5 s."""
    interval = default_interval("system")
    return [SourceConfig("system", "system", interval, default_timeout(interval))]


@dataclass(frozen=True)
class DatasourceConfig:
    """Where rule expressions and charts get their series (the ``datasource`` section).

    ``local`` (the default) is the store; ``prometheus`` is a Prometheus server's HTTP
    API at ``url`` (bearer token from the environment variable ``bearer_token_env``
    when it is set). ``alertmanager_url`` is the Alertmanager whose alerts are
    mirrored into the console (default: the first enabled ``alertmanager`` channel's
    url). Durations in seconds.
    """

    kind: str = "local"
    url: str | None = None
    bearer_token_env: str = "QBCONSOLE_DATASOURCE_TOKEN"
    timeout: float = 10.0
    local_sources: bool = False  # prometheus only: run the sources section's collectors too
    alertmanager_url: str | None = None
    alertmanager_bearer_token_env: str = "QBCONSOLE_ALERTMANAGER_TOKEN"
    alertmanager_sync_interval: float = 10.0

    @property
    def remote(self) -> bool:
        """True when a Prometheus server, not the store, holds the metrics."""
        return self.kind == "prometheus"


@dataclass(frozen=True)
class Config:
    """A validated ``rules.yaml``.

    Sections that later capabilities consume (rules, channels, SLOs, ...) are
    the validated data as written, with ``${ENV}`` already substituted;
    durations in them are still strings (see ``parse_duration``).
    ``notices`` are informational (e.g. sections accepted but not used yet).
    """

    file: str = "<default>"
    settings: Settings = field(default_factory=Settings)
    sources: list[SourceConfig] = field(default_factory=default_sources)
    recording_rules: list[dict[str, Any]] = field(default_factory=list)
    alert_rules: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    inhibit_rules: list[dict[str, Any]] = field(default_factory=list)
    optimizations: list[dict[str, Any]] = field(default_factory=list)
    slos: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    datasource: DatasourceConfig = field(default_factory=DatasourceConfig)
    notices: tuple[str, ...] = ()

    def source(self, name: str) -> SourceConfig | None:
        """The source called ``name``, if any."""
        return next((s for s in self.sources if s.name == name), None)
