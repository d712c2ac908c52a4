"""The ``http`` executor: one HTTP request, JSON body, headers from the environment.

Spec: ``{"kind": "http", "method": "POST", "url": "...", "json": {...} | null,
"headers": {NAME: literal}, "headers_env": {NAME: ENV}, "bearer_token_env":
ENV | null, "timeout_s": 10}``. Header values from the environment are read
when the request is made and never stored; a referenced variable that is not
set refuses the run. No redirects are followed and no proxy settings are
taken from the environment. 2xx is success; the status is the exit status.
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

import httpx

from qbconsole.actions.executors import Outcome, bound_output, scrub


def _env_headers(spec: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """header -> (environment variable, prefix)."""
    out = {name: (env, "") for name, env in (spec.get("headers_env") or {}).items()}
    if spec.get("bearer_token_env"):
        out["Authorization"] = (spec["bearer_token_env"], "Bearer ")
    return out


def problems(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    return [f"{var} is not set (it holds the {header} header)"
            for header, (var, _) in _env_headers(spec).items() if not env.get(var)]


def secrets(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    return [env[var] for var, _ in _env_headers(spec).values() if env.get(var)]


def headers(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    out = dict(spec.get("headers") or {})
    for header, (var, prefix) in _env_headers(spec).items():
        out[header] = prefix + env.get(var, "")
    return out


def resolved(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    shown = dict(spec.get("headers") or {})
    for header, (var, prefix) in _env_headers(spec).items():
        shown[header] = f"{prefix}${var}" + ("" if env.get(var) else " (not set)")
    return {"method": spec["method"], "url": spec["url"], "headers": shown, "json": spec.get("json"),
            "timeout_s": spec["timeout_s"]}


def run(spec: Mapping[str, Any], env: Mapping[str, str]) -> Outcome:
    started = time.monotonic()
    hidden = secrets(spec, env)
    refused = problems(spec, env)
    if refused:
        return Outcome(False, None, "; ".join(refused), 0.0)
    try:
        with httpx.Client(timeout=float(spec["timeout_s"]), follow_redirects=False, trust_env=False) as client:
            reply = client.request(spec["method"], spec["url"], json=spec.get("json"), headers=headers(spec, env))
            body = reply.text
    except httpx.HTTPError as err:
        return Outcome(False, None, scrub(f"{type(err).__name__}: {err}", hidden), time.monotonic() - started)
    try:  # compact JSON answers to one line
        body = json.dumps(json.loads(body), separators=(",", ":"))
    except ValueError:
        pass
    text = f"HTTP {reply.status_code} {reply.reason_phrase}\n{body}"
    return Outcome(200 <= reply.status_code < 300, reply.status_code, bound_output(scrub(text, hidden)),
                   time.monotonic() - started)
