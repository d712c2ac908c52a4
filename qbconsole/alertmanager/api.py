"""Alertmanager's API v2, the parts qbconsole uses: read alerts and silences, create silences.

Shapes follow ``GET /api/v2/alerts`` (gettable alerts: labels, annotations,
startsAt/endsAt/updatedAt as RFC 3339, fingerprint, status {state,
silencedBy, inhibitedBy}, receivers, generatorURL) and ``GET /api/v2/silences``
(id, matchers [{name, value, isRegex, isEqual}], startsAt, endsAt, createdBy,
comment, status {state}). Times here are integer ms UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple

import httpx

from qbconsole import __version__
from qbconsole.notify.messages import rfc3339

_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$")


def parse_time(text: str | None) -> int | None:
    """RFC 3339 (any number of fraction digits, as Go writes them) -> ms UTC; Go's zero
    time (``0001-01-01T00:00:00Z``, an open end) and empty text -> None."""
    if not text or text.startswith("0001-01-01"):
        return None
    m = _TIME.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    day, clock, fraction, zone = m.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    dt = datetime.fromisoformat(f"{day}T{clock}{zone}")
    return int(dt.timestamp()) * 1000 + int((fraction or "0")[:3].ljust(3, "0"))


class AmAlert(NamedTuple):
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: int
    ends_at: int | None
    updated_at: int | None
    state: str  # active | suppressed | unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    generator_url: str
    receivers: tuple[str, ...]


class AmMatcher(NamedTuple):
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}


class AmSilence(NamedTuple):
    id: str
    matchers: tuple[AmMatcher, ...]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str
    state: str  # active | pending | expired


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()} if isinstance(value, Mapping) else {}


def parse_alerts(body: Any) -> list[AmAlert]:
    """``GET /api/v2/alerts`` -> AmAlert list; raises ValueError for another shape."""
    if not isinstance(body, list):
        raise ValueError("expected a JSON list of alerts")
    out = []
    for item in body:
        if not isinstance(item, Mapping) or "fingerprint" not in item or "labels" not in item:
            raise ValueError("an alert without fingerprint or labels")
        status = item.get("status") or {}
        out.append(AmAlert(
            fingerprint=str(item["fingerprint"]), labels=_strings(item["labels"]),
            annotations=_strings(item.get("annotations")),
            starts_at=parse_time(item.get("startsAt")) or 0, ends_at=parse_time(item.get("endsAt")),
            updated_at=parse_time(item.get("updatedAt")), state=str(status.get("state", "active")),
            silenced_by=tuple(status.get("silencedBy") or ()), inhibited_by=tuple(status.get("inhibitedBy") or ()),
            generator_url=str(item.get("generatorURL") or ""),
            receivers=tuple(str(r.get("name", "")) for r in item.get("receivers") or () if isinstance(r, Mapping))))
    return out


def parse_silences(body: Any) -> list[AmSilence]:
    """``GET /api/v2/silences`` -> AmSilence list; raises ValueError for another shape."""
    if not isinstance(body, list):
        raise ValueError("expected a JSON list of silences")
    out = []
    for item in body:
        if not isinstance(item, Mapping) or "id" not in item:
            raise ValueError("a silence without an id")
        matchers = tuple(AmMatcher(str(m["name"]), str(m["value"]), bool(m.get("isRegex", False)),
                                   bool(m.get("isEqual", True))) for m in item.get("matchers") or ())
        out.append(AmSilence(str(item["id"]), matchers, parse_time(item.get("startsAt")) or 0,
                             parse_time(item.get("endsAt")) or 0, str(item.get("createdBy", "")),
                             str(item.get("comment", "")), str((item.get("status") or {}).get("state", ""))))
    return out


def silence_body(matchers: list[AmMatcher], starts_at: int, ends_at: int, created_by: str,
                 comment: str) -> dict[str, Any]:
    """The body of ``POST /api/v2/silences`` (a new silence: no id)."""
    return {"matchers": [m.as_json() for m in matchers], "startsAt": rfc3339(starts_at),
            "endsAt": rfc3339(ends_at), "createdBy": created_by, "comment": comment}


def equality_matchers(labels: Mapping[str, str]) -> list[AmMatcher]:
    """One ``name="value"`` matcher per label: the silence matches exactly this alert."""
    return [AmMatcher(k, v) for k, v in sorted(labels.items()) if v != ""]


class AlertmanagerError(Exception):
    """A failed call; ``retryable`` is False for answers that will not change (HTTP 4xx)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class AlertmanagerClient:
    """HTTP calls to one Alertmanager (base URL, e.g. ``http://127.0.0.1:9093``)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        if self.url.endswith("/api/v2/alerts"):  # a channel's url may name the endpoint
            self.url = self.url[: -len("/api/v2/alerts")]
        parts = httpx.URL(self.url)
        self.origin = f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")
        self._http = httpx.Client(timeout=timeout_s, transport=transport, headers={
            "User-Agent": f"qbconsole/{__version__}", "Accept": "application/json", **dict(headers or {})})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs) -> Any:
        host = self.origin
        try:
            response = self._http.request(method, self.url + path, **kwargs)
        except httpx.HTTPError as err:
            raise AlertmanagerError(f"alertmanager at {host} unreachable: {type(err).__name__}") from None
        if response.status_code >= 300:
            text = response.text.strip()[:200]
            raise AlertmanagerError(f"alertmanager at {host} answered HTTP {response.status_code}: {text}",
                                    retryable=response.status_code >= 500 or response.status_code in (408, 429))
        try:
            return response.json()
        except ValueError:
            raise AlertmanagerError(f"alertmanager at {host} answered something that is not JSON") from None

    def alerts(self) -> list[AmAlert]:
        try:
            return parse_alerts(self._call("GET", "/api/v2/alerts"))
        except ValueError as err:
            raise AlertmanagerError(f"unexpected /api/v2/alerts answer: {err}") from None

    def silences(self) -> list[AmSilence]:
        try:
            return parse_silences(self._call("GET", "/api/v2/silences"))
        except ValueError as err:
            raise AlertmanagerError(f"unexpected /api/v2/silences answer: {err}") from None

    def create_silence(self, body: Mapping[str, Any]) -> str:
        """POST a silence; its id."""
        answer = self._call("POST", "/api/v2/silences", json=dict(body))
        if not isinstance(answer, Mapping) or not answer.get("silenceID"):
            raise AlertmanagerError("alertmanager did not answer a silenceID")
        return str(answer["silenceID"])
