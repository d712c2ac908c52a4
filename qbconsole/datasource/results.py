"""Prometheus HTTP API answers (``/api/v1/query``, ``/api/v1/query_range``) as evaluation values.

A successful answer is ``{"status": "success", "data": {"resultType": T, "result": R}}``
with T one of ``vector``, ``scalar``, ``matrix``, ``string``; sample values are
strings (``"1"``, ``"NaN"``, ``"+Inf"``) and timestamps float seconds. An error is
``{"status": "error", "errorType": "bad_data", "error": "..."}``.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.rules.promql.values import Scalar, String, VSample


class Series(NamedTuple):
    """One series over a window: labels (``__name__`` included when it has one) and
    ``(ts ms, value)`` points, oldest first."""

    labels: dict[str, str]
    points: list[tuple[int, float]]


def _ms(ts: Any) -> int:
    return int(round(float(ts) * 1000))


def _value(text: Any) -> float:
    try:
        return float(text)  # "NaN", "+Inf" and "-Inf" included
    except (TypeError, ValueError):
        raise PromQLEvalError(f"prometheus answered a value that is not a number: {text!r}") from None


def _labels(item: Mapping[str, Any]) -> dict[str, str]:
    metric = item.get("metric")
    if not isinstance(metric, Mapping):
        raise PromQLEvalError("prometheus answered a series without its labels")
    return {str(k): str(v) for k, v in metric.items()}


def data_of(body: Any) -> Mapping[str, Any]:
    """The ``data`` of a success answer; an error answer raises PromQLEvalError with its message."""
    if not isinstance(body, Mapping):
        raise PromQLEvalError("prometheus answered something that is not a JSON object")
    if body.get("status") != "success":
        kind = body.get("errorType") or "error"
        raise PromQLEvalError(f"prometheus: {kind}: {body.get('error') or 'no message'}")
    data = body.get("data")
    if not isinstance(data, Mapping) or "resultType" not in data:
        raise PromQLEvalError("prometheus answered success without a result")
    return data


def instant_value(body: Any) -> tuple[str, Scalar | String | list[VSample] | list[Series]]:
    """The result of ``/api/v1/query`` with its type: ``("vector", [VSample, ...])``,
    ``("scalar", Scalar)``, ``("string", String)`` or, for a range selector,
    ``("matrix", [Series, ...])``."""
    data = data_of(body)
    kind = data["resultType"]
    return kind, _instant(kind, data.get("result"))


def _instant(kind: str, result: Any):
    if kind == "vector":
        out = []
        for item in result or []:
            if "value" not in item:  # a native histogram sample: not a float
                continue
            out.append(VSample(_labels(item), _value(item["value"][1])))
        return out
    if kind == "scalar":
        return Scalar(_value(result[1]))
    if kind == "string":
        return String(str(result[1]))
    if kind == "matrix":
        return matrix(result)
    raise PromQLEvalError(f"prometheus answered an unknown result type {kind!r}")


def matrix(result: Any) -> list[Series]:
    out = []
    for item in result or []:
        points = [(_ms(ts), _value(v)) for ts, v in item.get("values") or []]
        out.append(Series(_labels(item), points))
    return out


def range_value(body: Any) -> list[Series]:
    """The result of ``/api/v1/query_range``: always a matrix (a scalar expression comes
    back as a matrix of one series without labels)."""
    data = data_of(body)
    if data["resultType"] != "matrix":
        raise PromQLEvalError(f"prometheus answered {data['resultType']!r} to a range query")
    return matrix(data.get("result"))
