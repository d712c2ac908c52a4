"""From a rule and its parameter values to the exact spec a proposal carries.

Generic kinds map one to one: ``command`` -> argv, ``http`` -> one request,
``sql`` -> one statement with bound args. The built-ins target the QuickBid
platform's admin API (or any service with the same API):

- ``scale``: ``POST {url}/admin/workers {"workers": N}``.
- ``cache_resize``: ``POST {url}/admin/cache {"size": N}``.
- ``weights``: ``POST {url}/admin/weights {"a": w, ...}``; ``strategy:
  equal`` (default) gives every backend of ``weights_expr`` (default
  ``quickbid_backend_weight``) the mean of the current weights, so the total
  stays; ``inverse_load`` moves each weight against its backend's share of
  ``load_expr`` (default ``rate(quickbid_backend_requests_total[1m])``):
  ``w * mean_load / load``, a step towards equal load that also works when
  backends differ in capacity. (The platform exports no per-backend latency,
  so weighting inverse to latency is not offered.)
- ``missing_indexes``: one proposal per index (see qbconsole.actions.indexes),
  run as ``POST {url}/admin/index {"table": T, "columns": [...]}`` (``via:
  http``, the default) or as the ``CREATE INDEX`` statement itself through the
  sql executor on ``dsn`` (``via: sql``).

``url`` defaults to $QUICKBID_URL, the token variable to QUICKBID_ADMIN_TOKEN
and ``dsn`` to $QUICKBID_DB, read from the engine's environment when the
proposal is made (the token only when it runs), so rules.yaml holds no secret.
"""

from __future__ import annotations

from typing import Any, Mapping

from qbconsole.actions.indexes import Suggestion
from qbconsole.actions.model import DSN_ENV, TOKEN_ENV, URL_ENV, OptimizationRule
from qbconsole.actions.params import ParamError, apply_bound, effective_bound, fill, fill_argv, fill_json, pick

ADMIN_PATHS = {"scale": "/admin/workers", "cache_resize": "/admin/cache", "weights": "/admin/weights"}


def platform_url(rule: OptimizationRule, env: Mapping[str, str]) -> str:
    url = rule.action.get("url") or env.get(URL_ENV)
    if not url:
        raise ParamError(f"no platform URL: set 'url' in the action or ${URL_ENV}")
    if not url.startswith(("http://", "https://")):
        raise ParamError(f"platform URL must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


def database(rule: OptimizationRule, env: Mapping[str, str]) -> str:
    dsn = rule.action.get("dsn") or env.get(DSN_ENV)
    if not dsn:
        raise ParamError(f"no database: set 'dsn' in the action or ${DSN_ENV}")
    return dsn


def _http(rule: OptimizationRule, method: str, url: str, body: Any, token_env: str | None,
          **extra: Any) -> dict[str, Any]:
    return {"kind": "http", "method": method, "url": url, "json": body, "headers": {}, "headers_env": {},
            "bearer_token_env": token_env, "timeout_s": rule.timeout_s, **extra}


def build(rule: OptimizationRule, values: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The spec for every kind but missing_indexes (see :func:`index_spec`)."""
    a = rule.action
    if rule.kind == "command":
        argv = fill_argv(list(a["argv"]), values)
        if a.get("executable_env"):
            argv[0] = f"${a['executable_env']}"
        return {"kind": "command", "argv": argv, "timeout_s": rule.timeout_s, "env": list(a.get("env") or []),
                "executable_env": a.get("executable_env"), "cwd": a.get("cwd")}
    if rule.kind == "http":
        return {"kind": "http", "method": a.get("method", "POST"), "url": fill(a["url"], values, url=True),
                "json": fill_json(a.get("json"), values), "headers": dict(a.get("headers") or {}),
                "headers_env": dict(a.get("headers_env") or {}), "bearer_token_env": a.get("bearer_token_env"),
                "timeout_s": rule.timeout_s}
    if rule.kind == "sql":
        args = [fill_json(arg, values) if isinstance(arg, str) else arg for arg in a.get("args") or []]
        return {"kind": "sql", "dsn": database(rule, env), "statement": a["statement"], "args": args,
                "timeout_s": rule.timeout_s}
    url = platform_url(rule, env) + ADMIN_PATHS[rule.kind]
    token = a.get("token_env", TOKEN_ENV)
    if rule.kind == "scale":
        return _http(rule, "POST", url, {"workers": values["workers"]}, token, builtin="scale")
    if rule.kind == "cache_resize":
        return _http(rule, "POST", url, {"size": values["size"]}, token, builtin="cache_resize")
    if rule.kind == "weights":
        return _http(rule, "POST", url, dict(values["weight"]), token, builtin="weights")
    raise ParamError(f"no spec for action kind {rule.kind!r}")


def weights(rule: OptimizationRule, evaluator, t: int) -> tuple[dict[str, float], dict[str, Any]]:
    """New backend weights by the rule's strategy: (weights, evidence)."""
    current = {s.labels.get("backend"): float(s.value)
               for s in evaluator.evaluate(rule.action.get("weights_expr", "quickbid_backend_weight"), t)}
    current = {b: w for b, w in current.items() if b and w == w}
    if not current:
        raise ParamError("weights: no backend weights to adjust (weights_expr returns no series with a backend label)")
    strategy = rule.action.get("strategy", "equal")
    evidence: dict[str, Any] = {"strategy": strategy, "current": current}
    if strategy == "equal":
        mean = sum(current.values()) / len(current)
        new = {b: round(mean, 3) for b in current}
    else:
        loads = {s.labels.get("backend"): float(s.value) for s in evaluator.evaluate(
            rule.action.get("load_expr", "rate(quickbid_backend_requests_total[1m])"), t)}
        loads = {b: v for b, v in loads.items() if b in current and v == v and v > 0}
        if len(loads) != len(current):
            raise ParamError("weights: no load figure for every backend (load_expr)")
        mean = sum(loads.values()) / len(loads)
        new = {b: round(current[b] * mean / loads[b], 3) for b in current}
        evidence["load"] = loads
    bound = effective_bound(rule, rule.bounds, "weight")
    bounded = {b: apply_bound("weight", w, bound) for b, w in sorted(new.items())}
    evidence["value"] = bounded
    if bounded != new:
        evidence["before_bounds"] = new
    return bounded, evidence


def index_spec(rule: OptimizationRule, s: Suggestion, env: Mapping[str, str]) -> dict[str, Any]:
    """The spec that creates one suggested index, through the admin API or as SQL."""
    if rule.action.get("via", "http") == "sql":
        return {"kind": "sql", "dsn": database(rule, env), "statement": s.statement, "args": [],
                "timeout_s": rule.timeout_s, "builtin": "missing_indexes"}
    url = platform_url(rule, env) + "/admin/index"
    return _http(rule, "POST", url, {"table": s.table, "columns": list(s.columns)},
                 rule.action.get("token_env", TOKEN_ENV), builtin="missing_indexes", statement=s.statement)


def verify_value(expr: str, evaluator, t: int, labels: Mapping[str, str]) -> float | None:
    """The verify metric now, for the proposal's labels (None when it has no value)."""
    value = pick(evaluator.evaluate(expr, t), labels)
    return None if value is None or value != value else value
