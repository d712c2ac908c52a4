"""Request validation for the demo platform: an ApiError carries the 4xx/5xx and its reason."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")


class ApiError(Exception):
    """An HTTP error answer: status, a human reason, and optional extra JSON fields."""

    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {"error": self.reason, **self.extra}


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or ApiError(400) saying what is wrong with it."""
    if not raw:
        raise ApiError(400, "request body must be a JSON object; got an empty body")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(value).__name__}")
    return value


def reject_unknown(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def text_field(body: Mapping[str, Any], key: str, *, min_len: int = 1, max_len: int = 200,
               required: bool = True, default: str | None = None) -> str | None:
    if key not in body or body[key] is None:
        if required:
            raise ApiError(400, f"missing field {key!r}")
        return default
    value = body[key]
    if not isinstance(value, str):
        raise ApiError(400, f"field {key!r} must be a string, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise ApiError(400, f"field {key!r} must be {min_len}..{max_len} characters long")
    return value


def email_field(body: Mapping[str, Any], key: str = "email") -> str:
    value = text_field(body, key, min_len=3, max_len=254)
    assert value is not None
    if not EMAIL_RE.match(value):
        raise ApiError(400, f"field {key!r} is not a valid email address")
    return value.lower()


def number_field(body: Mapping[str, Any], key: str, *, minimum: float, maximum: float,
                 required: bool = True, integer: bool = False) -> float | None:
    """A finite JSON number in [minimum, maximum]; booleans are not numbers here."""
    if key not in body or body[key] is None:
        if required:
            raise ApiError(400, f"missing field {key!r}")
        return None
    value = body[key]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"field {key!r} must be {kind}, got {type(value).__name__}")
    if integer and not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ApiError(400, f"field {key!r} must be an integer, got {value!r}")
        value = int(value)
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ApiError(400, f"field {key!r} must be between {minimum:g} and {maximum:g}, got {value!r}")
    return value


def positive_id(text: str, what: str = "id") -> int:
    """A path segment that must be a positive integer id (400 otherwise)."""
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) == 0:
        raise ApiError(400, f"{what} must be a positive integer, got {text[:40]!r}")
    return int(text)


def query_int(query: Mapping[str, list[str]], key: str, default: int, minimum: int, maximum: int) -> int:
    values = query.get(key)
    if not values:
        return default
    text = values[-1]
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 9:
        raise ApiError(400, f"query parameter {key!r} must be an integer, got {text[:40]!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise ApiError(400, f"query parameter {key!r} must be between {minimum} and {maximum}")
    return value
