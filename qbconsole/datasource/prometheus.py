"""A Prometheus server as the evaluation backend: rule expressions go to its HTTP API.

:class:`PrometheusBackend` has the evaluator's interface (``evaluate(expr, t_ms)``
and ``new_tick()``), so the rules engine runs the same rules on it as on the
store; ``query_range`` serves charts and reports. Every failure (Prometheus's
own ``bad_data``/``timeout`` errors, an unreachable server, a garbled answer)
is a :class:`PromQLEvalError` whose text is Prometheus's message or says what
went wrong; URLs in messages show scheme and host only.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx

from qbconsole import __version__
from qbconsole.datasource import results
from qbconsole.datasource.results import Series
from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.rules.promql.format import to_promql
from qbconsole.rules.promql.values import Scalar, String, VSample

MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what messages and logs may show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


class PrometheusClient:
    """GETs on a Prometheus HTTP API with an optional bearer token read from the environment
    at each request (so a rotated token is picked up)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, bearer_token_env: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus datasource: expected an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.bearer_token_env = bearer_token_env
        self.last_error: str | None = None  # why the last request failed, when the server is at fault
        self._http = httpx.Client(timeout=httpx.Timeout(self.timeout_s + 1.0), transport=transport,
                                  headers={"User-Agent": f"qbconsole/{__version__}", "Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def _headers(self) -> dict[str, str]:
        token = os.environ.get(self.bearer_token_env) if self.bearer_token_env else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        """The JSON body of ``GET path``; any failure is a PromQLEvalError."""
        where = origin(self.url)
        try:
            response = self._http.get(self.url + path, params=dict(params), headers=self._headers())
        except httpx.TimeoutException:
            raise self._down(f"prometheus at {where} did not answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as err:
            raise self._down(f"prometheus at {where} unreachable: {type(err).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            self.last_error = None  # Prometheus answered: the query is at fault, not the server
            results.data_of(body)  # raises with Prometheus's errorType and message
        if response.status_code != 200:
            hint = " (check bearer_token_env)" if response.status_code in (401, 403) else ""
            raise self._down(f"prometheus at {where} answered HTTP {response.status_code}{hint}")
        if body is None:
            raise self._down(f"prometheus at {where} answered something that is not JSON")
        self.last_error = None
        return body

    def _down(self, message: str) -> PromQLEvalError:
        self.last_error = message
        return PromQLEvalError(message)

    def ready(self) -> bool:
        try:
            return self._http.get(self.url + "/-/ready", headers=self._headers()).status_code == 200
        except httpx.HTTPError:
            return False


class PrometheusBackend:
    """Evaluate expressions on Prometheus: the rules engine's evaluator, and range queries.

    Results are memoised per tick (``new_tick()`` forgets them), as the local
    evaluator does, so a rule group asking the same question twice asks once.
    """

    remote = True

    def __init__(self, url: str, *, timeout_s: float = 10.0, bearer_token_env: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.client = PrometheusClient(url, timeout_s=timeout_s, bearer_token_env=bearer_token_env,
                                       transport=transport)
        self.url = self.client.url
        self._memo: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, datasource) -> "PrometheusBackend":
        """From a :class:`qbconsole.config.model.DatasourceConfig` of kind prometheus."""
        return cls(datasource.url, timeout_s=datasource.timeout, bearer_token_env=datasource.bearer_token_env)

    def close(self) -> None:
        self.client.close()

    def new_tick(self) -> None:
        with self._lock:
            self._memo.clear()

    def _params(self, expr) -> dict[str, str]:
        text = expr if isinstance(expr, str) else to_promql(expr)
        return {"query": text, "timeout": f"{self.client.timeout_s:g}s"}

    def evaluate(self, expr, t_ms: int) -> Scalar | String | list[VSample]:
        """``GET /api/v1/query?query=expr&time=t``: a vector, Scalar or String, as the local
        evaluator returns. ``expr`` is text or a parsed expression."""
        params = self._params(expr)
        key = (params["query"], int(t_ms))
        with self._lock:
            if key in self._memo:
                cached = self._memo[key]
                return list(cached) if isinstance(cached, list) else cached
        kind, value = results.instant_value(self.client.get("/api/v1/query", {**params, "time": _seconds(t_ms)}))
        if kind == "matrix":
            raise PromQLEvalError("a range vector is not an instant result; apply a function such as rate()")
        with self._lock:
            self._memo[key] = value
        return list(value) if isinstance(value, list) else value

    def query_range(self, expr, start_ms: int, end_ms: int, step_ms: int) -> list[Series]:
        """``GET /api/v1/query_range``: each series with its points at start, start+step, ... end."""
        check_range(start_ms, end_ms, step_ms)
        params = {**self._params(expr), "start": _seconds(start_ms), "end": _seconds(end_ms),
                  "step": f"{step_ms / 1000:g}"}
        return results.range_value(self.client.get("/api/v1/query_range", params))


def check_range(start_ms: int, end_ms: int, step_ms: int) -> None:
    """Raise PromQLEvalError for a window Prometheus would refuse (the same rules locally)."""
    if step_ms <= 0:
        raise PromQLEvalError("zero or negative query resolution step widths are not accepted")
    if end_ms < start_ms:
        raise PromQLEvalError("end timestamp must not be before start time")
    if (end_ms - start_ms) // step_ms + 1 > MAX_POINTS:
        raise PromQLEvalError(f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries; "
                              "try decreasing the query resolution (?step=XX)")
