"""The `http` probe source: one HTTP request per run, as the blackbox exporter does.

Records ``probe_success{target}`` (1 when the answer's status is expected),
``probe_duration_seconds{target}`` (request sent to body read) and
``probe_http_status{target}`` (0 when no answer came). A failed probe is a
measurement, not a failure of the source: ``collect`` raises only for what it
cannot measure. Misconfiguration is refused when the source is made.

The probe gets 90 % of the source timeout, so that a slow target is recorded
as a failed probe instead of a timed-out run. httpx timeouts apply per phase
(connect, write, read); the total is also checked while the body is read.
Header values (tokens from ``${ENV}``) are never logged.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Mapping

import httpx

from qbconsole import __version__
from qbconsole.collect.base import check_timing, error_line
from qbconsole.model import Sample

log = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST")
DEFAULT_EXPECTED = tuple(range(200, 400))
MAX_BODY_BYTES = 1 << 20  # the probe reads at most this much of an answer
PROBE_SHARE = 0.9  # of the source timeout


class ProbeTimeout(Exception):
    """The answer did not arrive in full within the probe's time."""


def _statuses(expected: int | Iterable[int] | None) -> frozenset[int]:
    if expected is None:
        return frozenset(DEFAULT_EXPECTED)
    codes = [expected] if isinstance(expected, int) else list(expected)
    if not codes:
        raise ValueError("http source: expected_status must not be empty")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"http source: expected_status {code!r} is not an HTTP status code")
    return frozenset(codes)


def check_headers(headers: Mapping[str, str] | None, kind: str) -> dict[str, str]:
    """A copy of ``headers`` after checking names and values are strings (values never shown)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ValueError(f"{kind} source: headers must be a mapping of names to strings")
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"{kind} source: header {key!r} must have a string value")
    return dict(headers)


def check_url(url: object, kind: str) -> httpx.URL:
    """An http(s) URL with a host, or ValueError."""
    if not isinstance(url, str):
        raise ValueError(f"{kind} source: url must be a string")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"{kind} source: invalid url: {error_line(exc)}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{kind} source: url must be http:// or https:// with a host")
    return parsed


class HttpProbeSource:
    """Probes ``url`` with ``method`` each run; see the module docstring."""

    kind = "http"

    def __init__(
        self,
        name: str = "http",
        interval: float = 10,
        timeout: float = 10,
        jitter: float = 0.1,
        *,
        url: str,
        method: str = "GET",
        expected_status: int | Iterable[int] | None = None,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        target: str | None = None,
        follow_redirects: bool = False,
    ) -> None:
        check_timing(name, interval, timeout, jitter)
        self.name, self.interval, self.timeout, self.jitter = name, float(interval), float(timeout), float(jitter)
        self.url = check_url(url, "http")
        if method not in METHODS:
            raise ValueError(f"http source: method {method!r} is not one of {', '.join(METHODS)}")
        if body is not None and not isinstance(body, str):
            raise ValueError("http source: body must be a string")
        if body is not None and method != "POST":
            raise ValueError(f"http source: a body needs method POST, not {method}")
        if target is not None and (not isinstance(target, str) or not target):
            raise ValueError("http source: target must be a non-empty string")
        self.method = method
        self.expected = _statuses(expected_status)
        self.body = body.encode("utf-8") if body is not None else None
        self.target = target or name
        self.last_failure: str | None = None
        self._budget = self.timeout * PROBE_SHARE
        self._client = httpx.Client(
            headers={"User-Agent": f"qbconsole-probe/{__version__}", **check_headers(headers, "http")},
            timeout=httpx.Timeout(self._budget),
            follow_redirects=bool(follow_redirects),
        )

    def close(self) -> None:
        self._client.close()

    def collect(self, now_ms: int) -> list[Sample]:
        start = time.monotonic()
        status, failure = self._probe(start + self._budget)
        duration = time.monotonic() - start
        if failure is None and status not in self.expected:
            failure = f"unexpected status {status}"
        self._note(failure)
        labels = {"target": self.target}
        return [
            Sample("probe_success", labels, now_ms, 0.0 if failure else 1.0),
            Sample("probe_duration_seconds", labels, now_ms, duration),
            Sample("probe_http_status", labels, now_ms, float(status)),
        ]

    def _probe(self, deadline: float) -> tuple[int, str | None]:
        """(status, None) once the answer is read, or (status or 0, why it failed)."""
        status = 0
        try:
            with self._client.stream(self.method, self.url, content=self.body) as response:
                status = response.status_code
                if self.method != "HEAD":
                    read = 0
                    for chunk in response.iter_raw():
                        read += len(chunk)
                        if time.monotonic() > deadline:
                            raise ProbeTimeout(f"answer not read within {self._budget:g}s")
                        if read >= MAX_BODY_BYTES:
                            break
        except (httpx.HTTPError, ProbeTimeout, OSError) as exc:
            return status, error_line(exc)
        if time.monotonic() > deadline:
            return status, f"ProbeTimeout: answer took longer than {self._budget:g}s"
        return status, None

    def _note(self, failure: str | None) -> None:
        """Log when the probe starts or stops failing (by target; never headers)."""
        if failure and self.last_failure is None:
            log.info("probe %s failing: %s", self.target, failure)
        elif failure is None and self.last_failure is not None:
            log.info("probe %s succeeds again", self.target)
        self.last_failure = failure
