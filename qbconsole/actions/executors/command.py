"""The ``command`` executor: one argv list, run directly (never through a shell).

Spec: ``{"kind": "command", "argv": [...], "timeout_s": 30, "env": [NAMES],
"executable_env": NAME | null, "cwd": PATH | null}``.

- The child's environment holds only the allow-listed variables (``env``
  plus PATH, LANG, LC_ALL and TZ), copied from the engine's environment.
- ``executable_env``: argv[0] is the absolute path held by that variable,
  read at run time (a placeholder the operator must configure); when it is
  unset, not absolute or not an executable file, the action refuses to run.
- The child gets its own session; at the timeout the whole process group is
  killed (SIGKILL). stdin is /dev/null; stdout and stderr are read together,
  keeping only the first and last few kilobytes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from typing import Any, Mapping

from qbconsole.actions.executors import Outcome, bound_output, scrub

BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH|DSN", re.I)
KEEP_BYTES = 4096


def allowed_names(spec: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys([*BASE_ENV, *(spec.get("env") or [])]))


def child_env(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in allowed_names(spec) if name in env}


def secrets(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    return [v for k, v in child_env(spec, env).items() if SECRET_NAME.search(k)]


def problems(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    name = spec.get("executable_env")
    if not name:
        return []
    path = env.get(name, "")
    if not path:
        return [f"{name} is not set: set it to the absolute path of the program to run "
                f"(this action is a placeholder until it is configured)"]
    if not os.path.isabs(path):
        return [f"{name} must be an absolute path, got {path!r}"]
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return [f"{name}={path!r} is not an executable file"]
    return []


def argv_for(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    argv = list(spec["argv"])
    if spec.get("executable_env"):
        argv[0] = env.get(spec["executable_env"], argv[0])
    return argv


def resolved(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    return {"argv": argv_for(spec, env), "timeout_s": spec["timeout_s"], "cwd": spec.get("cwd"),
            "env": [n for n in allowed_names(spec) if n in env]}


class _Drain:
    """Reads a pipe to its end in a thread, keeping the first and last KEEP_BYTES."""

    def __init__(self, pipe) -> None:
        self.pipe, self.head, self.tail, self.total = pipe, bytearray(), deque(), 0
        self._tail_len = 0
        self.thread = threading.Thread(target=self._run, name="qbconsole-action-output", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            chunk = self.pipe.read1(65536) if hasattr(self.pipe, "read1") else self.pipe.read(65536)
            if not chunk:
                return
            self.total += len(chunk)
            room = KEEP_BYTES - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self._tail_len += len(chunk)
                while self._tail_len - len(self.tail[0]) >= KEEP_BYTES:
                    self._tail_len -= len(self.tail.popleft())

    def text(self) -> str:
        tail = b"".join(self.tail)[-KEEP_BYTES:]
        left_out = self.total - len(self.head) - len(tail)
        middle = f"\n[... {left_out} bytes left out ...]\n".encode() if left_out > 0 else b""
        return (bytes(self.head) + middle + tail).decode("utf-8", "replace")


def run(spec: Mapping[str, Any], env: Mapping[str, str]) -> Outcome:
    started = time.monotonic()
    hidden = secrets(spec, env)
    refused = problems(spec, env)
    if refused:
        return Outcome(False, None, scrub("; ".join(refused), hidden), 0.0)
    argv = argv_for(spec, env)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=child_env(spec, env), cwd=spec.get("cwd") or None, close_fds=True,
                                start_new_session=True, shell=False)
    except OSError as err:
        return Outcome(False, None, scrub(f"cannot start {argv[0]!r}: {err.strerror or err}", hidden),
                       time.monotonic() - started)
    drain = _Drain(proc.stdout)
    timed_out = False
    try:
        proc.wait(timeout=float(spec["timeout_s"]))
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    drain.thread.join(2.0)
    proc.stdout.close()
    duration = time.monotonic() - started
    text = drain.text()
    if timed_out:
        text += f"\n[killed after the {spec['timeout_s']:g} s timeout]"
    return Outcome(not timed_out and proc.returncode == 0, proc.returncode,
                   bound_output(scrub(text, hidden)), duration)
