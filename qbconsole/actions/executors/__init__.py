"""Executors: run a proposal's spec (exactly what was approved) and report the outcome.

A spec is JSON with ``kind`` = ``command`` (argv, never a shell), ``http``
(one request) or ``sql`` (one statement). The built-in actions (scale,
cache_resize, weights, missing_indexes) produce ``http`` or ``sql`` specs, so
what an operator approves is always one of these three, written out.

Secrets (tokens read from the environment, allow-listed variables whose
names look secret) never go into a spec; they are read when the action
runs, and scrubbed from its output and errors, which are also bounded.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Mapping, NamedTuple

MAX_OUTPUT = 8000


class Outcome(NamedTuple):
    ok: bool
    exit_status: int | None  # the process's exit status, the HTTP status, or 0/1 for SQL
    output: str  # bounded and scrubbed
    duration_s: float


def bound_output(text: str, limit: int = MAX_OUTPUT) -> str:
    """At most ``limit`` characters: the head and the tail, with what was left out said."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}\n[... {len(text) - head - tail} characters left out ...]\n{text[-tail:]}"


def scrub(text: str, secrets) -> str:
    """``text`` with every secret (longest first) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _module(spec: Mapping[str, Any]):
    from qbconsole.actions.executors import command, request, statement

    kind = spec.get("kind")
    modules = {"command": command, "http": request, "sql": statement}
    if kind not in modules:
        raise ValueError(f"unknown spec kind {kind!r}")
    return modules[kind]


def execute(spec: Mapping[str, Any], env: Mapping[str, str]) -> Outcome:
    """Run the spec now (the engine has done every check); never raises for the action failing."""
    return _module(spec).run(spec, env)


def problems(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Why the spec could not run in this environment (unset variables, missing files)."""
    return _module(spec).problems(spec, env)


def resolved(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """What would run, with environment references resolved and secret values masked."""
    return _module(spec).resolved(spec, env)


def summary(spec: Mapping[str, Any]) -> str:
    """One line naming the exact action, for lists and dialogs."""
    kind = spec.get("kind")
    if kind == "command":
        return shlex.join(spec["argv"])
    if kind == "http":
        body = "" if spec.get("json") is None else " " + json.dumps(spec["json"], separators=(",", ":"))
        return f"{spec['method']} {spec['url']}{body}"
    if kind == "sql":
        args = f"  -- args {json.dumps(spec.get('args') or [])}" if spec.get("args") else ""
        return f"{spec['statement']}{args}"
    return json.dumps(spec)
