"""The `prometheus` scrape source: reads a /metrics endpoint as Prometheus does.

Every exposed sample is stored under its sample name (``x_total``,
``x_bucket{le}``, ``x_sum``, ``x_count``, ``x{quantile}``, ...), with ``le`` and
``quantile`` kept exactly as exposed, plus the target labels (default
``job`` = the source name, ``instance`` = host:port of the url). A scraped label
that clashes with a target label is kept as ``exported_<name>``, and labels
with empty values are dropped, as Prometheus does (``honor_labels: false``).

Each run also records ``up``, ``scrape_duration_seconds`` and
``scrape_samples_scraped`` with the target labels. A series that was in the
previous scrape and is missing now gets a staleness marker (``STALE_NAN``) at
the scrape time. Series carrying an exported timestamp are not tracked for
staleness while timestamps are honoured (Prometheus's default too).

A failed scrape (no answer, not HTTP 200, unreadable body, timeout) raises
:class:`ScrapeFailed`, whose one-line message the scheduler shows; its
``samples`` hold ``up`` = 0 and the staleness markers of every series, for a
scheduler that writes them.

The text format is parsed with prometheus_client's parser; a target that
answers in OpenMetrics anyway is parsed with the OpenMetrics parser (its
``_created`` series are left out). A text body that differs from the last good
one only in its numbers (the usual case) is read against that one's
:class:`~qbconsole.collect.shape.Shape` instead, and turned into samples
through the plan the full parse left (series, labels, which carry their own
timestamp): the same samples for a fraction of the work.
"""

from __future__ import annotations

import os
import re
import time
from typing import Iterable, Mapping, NamedTuple

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from qbconsole import __version__
from qbconsole.collect.base import check_timing, error_line
from qbconsole.collect.http import PROBE_SHARE, check_headers, check_url
from qbconsole.collect.shape import Shape
from qbconsole.model import STALE_NAN, Sample

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
MAX_SCRAPE_BYTES = 50 << 20
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COUNTER_TYPE = re.compile(r"^#\s*TYPE\s+(\S+)\s+counter\s*$", re.MULTILINE)

SeriesKey = tuple  # (name, sorted label items)


class ScrapeFailed(Exception):
    """A scrape that produced no data; ``samples`` are what to record about it."""

    def __init__(self, message: str, samples: list[Sample]) -> None:
        super().__init__(message)
        self.samples = samples


class Exposed(NamedTuple):
    """One sample as exposed: its family's type and its own timestamp (ms) if any."""

    family: str
    type: str
    name: str
    labels: dict[str, str]
    value: float
    ts: int | None


def is_openmetrics(content_type: str) -> bool:
    """Whether a body of this content type is OpenMetrics (else it is the text format)."""
    return content_type.split(";")[0].strip().lower() == "application/openmetrics-text"


def parse_exposition(text: str, content_type: str = "text/plain") -> list[Exposed]:
    """The samples of a text (or OpenMetrics) exposition, in order; ValueError if it is malformed.

    prometheus_client's text parser appends ``_total`` to the samples of a
    counter whose declared name lacks it; that is undone here, so names are the
    ones on the wire.
    """
    if is_openmetrics(content_type):
        families, openmetrics = openmetrics_families(text), True
    else:
        families, openmetrics = text_string_to_metric_families(text), False
    bare_counters = set() if openmetrics else {
        n for n in _COUNTER_TYPE.findall(text) if not n.endswith("_total")}
    try:
        return _flatten(families, openmetrics, bare_counters)
    except (KeyError, IndexError, TypeError) as exc:  # the parsers' other ways of saying "malformed"
        raise ValueError(f"malformed exposition ({type(exc).__name__}: {exc})") from None


def _flatten(families: Iterable, openmetrics: bool, bare_counters: set[str]) -> list[Exposed]:
    out: list[Exposed] = []
    for family in families:
        rename = family.type == "counter" and family.name in bare_counters
        for sample in family.samples:
            name = sample.name
            if openmetrics and name.endswith("_created") and family.type in ("counter", "histogram", "summary"):
                continue
            if rename and name == family.name + "_total":
                name = family.name
            ts = None if sample.timestamp is None else round(float(sample.timestamp) * 1000)
            out.append(Exposed(family.name, family.type, name, dict(sample.labels), float(sample.value), ts))
    return out


def default_instance(url: httpx.URL) -> str:
    """host:port of a URL, with the scheme's default port when none is given."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{port}"


def shown_url(url: httpx.URL) -> str:
    """The URL for messages: without user and password."""
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


def _key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    return (name, tuple(sorted(labels.items())))


def merge_labels(scraped: Mapping[str, str], target: Mapping[str, str]) -> dict[str, str]:
    """Target labels over scraped ones; a clashing scraped label becomes ``exported_<name>``."""
    merged = {k: v for k, v in scraped.items() if v != ""}
    for name, value in target.items():
        if name in merged:
            exported = "exported_" + name
            while exported in merged:
                exported = "exported_" + exported
            merged[exported] = merged[name]
        merged[name] = value
    return merged


class PrometheusSource:
    """Scrapes ``url`` each run; see the module docstring."""

    kind = "prometheus"

    def __init__(
        self,
        name: str = "prometheus",
        interval: float = 10,
        timeout: float = 10,
        jitter: float = 0.1,
        *,
        url: str,
        labels: Mapping[str, str] | None = None,
        honor_timestamps: bool = True,
        bearer_token_env: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        check_timing(name, interval, timeout, jitter)
        self.name, self.interval, self.timeout, self.jitter = name, float(interval), float(timeout), float(jitter)
        self.url = check_url(url, "prometheus")
        if bearer_token_env is not None and not (isinstance(bearer_token_env, str)
                                                 and ENV_NAME.fullmatch(bearer_token_env)):
            raise ValueError(f"prometheus source: bearer_token_env {bearer_token_env!r} "
                             "is not an environment variable name")
        self.bearer_token_env = bearer_token_env
        self.honor_timestamps = bool(honor_timestamps)
        self.target_labels = self._target_labels(labels)
        self._budget = self.timeout * PROBE_SHARE
        self._client = httpx.Client(
            headers={"User-Agent": f"qbconsole/{__version__}", "Accept": ACCEPT, **check_headers(headers, "prometheus")},
            timeout=httpx.Timeout(self._budget), follow_redirects=True)
        self._previous: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
        # The last good text body's shape, and per kept sample (line index, name, labels,
        # carries its own timestamp); None until a full parse and after a failed scrape.
        self._shape: tuple[Shape, list[tuple[int, str, dict[str, str], bool]]] | None = None

    def _target_labels(self, labels: Mapping[str, str] | None) -> dict[str, str]:
        extra = dict(labels or {})
        for key, value in extra.items():
            if not isinstance(key, str) or not LABEL_NAME.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"prometheus source: invalid label name {key!r}")
            if not isinstance(value, str):
                raise ValueError(f"prometheus source: label {key!r} must have a string value")
        merged = {"job": self.name, "instance": default_instance(self.url), **extra}
        return {k: v for k, v in merged.items() if v != ""}

    def close(self) -> None:
        self._client.close()

    # ---- one scrape ----------------------------------------------------------
    def collect(self, now_ms: int) -> list[Sample]:
        start = time.monotonic()
        try:
            text, content_type = self._fetch(start + self._budget)
            samples = self._reread(text, content_type, now_ms)
            if samples is None:
                exposed = parse_exposition(text, content_type)
                samples, plan = self._samples(exposed, now_ms)
                shape = None if is_openmetrics(content_type) else Shape.of(text, len(exposed))
                self._shape = None if shape is None else (shape, plan)
        except ScrapeFailed as exc:
            raise ScrapeFailed(str(exc), self._failed(now_ms, time.monotonic() - start)) from None
        except ValueError as exc:
            message = f"cannot parse the exposition of {shown_url(self.url)}: {error_line(exc)}"
            raise ScrapeFailed(message, self._failed(now_ms, time.monotonic() - start)) from None
        scraped = self._shape[0].samples if self._shape is not None else len(exposed)
        samples += self._report(now_ms, True, time.monotonic() - start, scraped)
        return samples

    def _reread(self, text: str, content_type: str, now_ms: int) -> list[Sample] | None:
        """The samples of a body shaped like the last good one, or None (parse it in full).

        Same shape means the same series in the same order as that scrape, so the same
        ones are kept and none goes stale: only values and own timestamps change."""
        if self._shape is None or is_openmetrics(content_type):
            return None
        shape, plan = self._shape
        numbers = shape.numbers(text)
        if numbers is None:
            return None
        return [Sample(name, labels, numbers[i][1] if own_ts else now_ms, numbers[i][0])
                for i, name, labels, own_ts in plan]

    def _fetch(self, deadline: float) -> tuple[str, str]:
        """The body and content type of a 200 answer, or ScrapeFailed."""
        where = shown_url(self.url)
        headers = {}
        if self.bearer_token_env is not None:
            token = os.environ.get(self.bearer_token_env)
            if not token:
                raise ScrapeFailed(f"environment variable {self.bearer_token_env} (bearer_token_env) "
                                   "is not set", [])
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self._client.stream("GET", self.url, headers=headers) as response:
                if response.status_code != 200:
                    raise ScrapeFailed(f"HTTP {response.status_code} {response.reason_phrase} from {where}", [])
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_SCRAPE_BYTES:
                        raise ScrapeFailed(f"{where} answered more than {MAX_SCRAPE_BYTES >> 20} MiB", [])
                    if time.monotonic() > deadline:
                        raise ScrapeFailed(f"timed out after {self._budget:g}s reading {where}", [])
                content_type = response.headers.get("content-type", "text/plain")
        except httpx.TimeoutException:
            raise ScrapeFailed(f"timed out after {self._budget:g}s scraping {where}", []) from None
        except (httpx.HTTPError, OSError) as exc:
            raise ScrapeFailed(f"cannot scrape {where}: {error_line(exc)}", []) from None
        try:
            return body.decode("utf-8"), content_type
        except UnicodeDecodeError:
            raise ScrapeFailed(f"{where} answered with text that is not UTF-8", []) from None

    def _samples(self, exposed: Iterable[Exposed], now_ms: int) -> tuple[list[Sample], list[tuple]]:
        """Stored samples for one good scrape, plus staleness markers; updates the tracked set.

        Also returns the plan a same-shaped body is re-read with: (index in ``exposed``,
        name, labels, carries its own timestamp) per kept sample."""
        out: list[Sample] = []
        seen: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
        untracked: set[SeriesKey] = set()
        plan: list[tuple[int, str, dict[str, str], bool]] = []
        for i, item in enumerate(exposed):
            labels = merge_labels(item.labels, self.target_labels)
            key = _key(item.name, labels)
            if key in seen or key in untracked:
                continue  # a repeated series: the first one counts, as in Prometheus
            own_ts = item.ts is not None and self.honor_timestamps
            plan.append((i, item.name, labels, own_ts))
            if own_ts:
                untracked.add(key)
                out.append(Sample(item.name, labels, item.ts, item.value))
            else:
                seen[key] = (item.name, labels)
                out.append(Sample(item.name, labels, now_ms, item.value))
        for key, (name, labels) in self._previous.items():
            if key not in seen:
                out.append(Sample(name, labels, now_ms, STALE_NAN))
        self._previous = seen
        return out, plan

    def _failed(self, now_ms: int, duration: float) -> list[Sample]:
        """What a failed scrape records: up = 0 and every tracked series marked stale."""
        stale = [Sample(name, labels, now_ms, STALE_NAN) for name, labels in self._previous.values()]
        self._previous = {}
        self._shape = None
        return stale + self._report(now_ms, False, duration, 0)

    def _report(self, now_ms: int, up: bool, duration: float, scraped: int) -> list[Sample]:
        labels = self.target_labels
        return [
            Sample("up", labels, now_ms, 1.0 if up else 0.0),
            Sample("scrape_duration_seconds", labels, now_ms, duration),
            Sample("scrape_samples_scraped", labels, now_ms, float(scraped)),
        ]
