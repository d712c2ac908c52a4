"""From request body bytes to a list of JSON objects: JSON (one object or a list) or NDJSON.

Strict JSON: no NaN/Infinity literals, no repeated keys, UTF-8 only. Every
failure is a :class:`Rejected` with status 400 (415 for a content type that is
neither), naming the event index where there is one.
"""

from __future__ import annotations

import json
from typing import Any

from qbconsole.ingest.errors import Rejected

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson")


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``("application/json", {"charset": "utf-8"})`` from a Content-Type header."""
    if not content_type:
        return "", {}
    main, *params = content_type.split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"').lower()
    return main.strip().lower(), parsed


def check_content_type(content_type: str | None) -> str:
    """The media type if it is JSON or NDJSON in UTF-8; otherwise Rejected(415)."""
    kind, params = media_type(content_type)
    if kind not in JSON_TYPES + NDJSON_TYPES:
        shown = kind or "none"
        raise Rejected(415, f"content type {shown!r} is not supported: send application/json "
                            "or application/x-ndjson", reason="unsupported_media_type")
    charset = params.get("charset")
    if charset not in (None, "utf-8", "utf8"):
        raise Rejected(415, f"charset {charset!r} is not supported: send UTF-8",
                       reason="unsupported_media_type")
    return kind


def _refuse_constant(word: str) -> Any:
    raise ValueError(f"{word} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


def _json_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    return f"invalid JSON: {' '.join(str(exc).split())}"


def decode_events(raw: bytes, kind: str) -> list[Any]:
    """The events of a body of media type ``kind``; each should be a JSON object (checked later)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, f"the body is not valid UTF-8 (byte {exc.start})") from None
    if kind in NDJSON_TYPES:
        events = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                events.append(_loads(line))
            except (ValueError, RecursionError) as exc:
                raise Rejected(400, f"line {number}: {_json_error(exc)}", index=len(events)) from None
    else:
        try:
            parsed = _loads(text)
        except (ValueError, RecursionError) as exc:
            raise Rejected(400, _json_error(exc)) from None
        if isinstance(parsed, dict):
            events = [parsed]
        elif isinstance(parsed, list):
            events = parsed
        else:
            raise Rejected(400, "the body must be a JSON object or a list of objects")
    if not events:
        raise Rejected(400, "the body holds no events")
    return events
