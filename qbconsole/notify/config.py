"""Notification channels, routes and inhibit rules: raw ``rules.yaml`` data -> typed objects.

Shapes (close to Alertmanager's; durations Prometheus-style, stored here in ms)::

    channels:                      # every kind: name, kind, send_resolved, timeout (10s)
      - {name: email, kind: email, smtp_host: H, smtp_port: 587, starttls: true, ssl: false,
         username: U, password: P, from: A, to: [A, ...] | "a,b", ca_file: PEM}
      - {name: slack, kind: slack, url: WEBHOOK_URL, channel: "#ops"}
      - {name: sms, kind: sms, url: TWILIO_MESSAGES_URL, account_sid: S, auth_token: T,
         from: "+1...", to: ["+1...", ...]}           # send_resolved defaults to false
      - {name: hook, kind: webhook, url: U, headers: {Authorization: "Bearer ..."}, max_alerts: 0}
      - {name: am, kind: alertmanager, url: BASE_URL, headers: {...}, resend_interval: 1m}
    routes:                        # first match wins unless continue: true
      - {name: critical, match: ['severity="critical"'], channels: [sms], continue: true,
         group_by: [alertname] | ['...'], group_wait: 30s, group_interval: 5m,
         repeat_interval: 4h, escalation: [{after: 15m, channels: [sms]}]}
    inhibit_rules:
      - {source_match: ['severity="critical"'], target_match: ['severity="warning"'],
         equal: [alertname, instance]}

``match`` is a list of matchers (``name="v"``, ``!=``, ``=~``, ``!~``) or a mapping
of label equalities. A channel whose required fields are empty after ``${ENV}``
substitution, or that points at a placeholder (``example.com``, ``.invalid``), is
*disabled*: it is reported with the reason, naming the field or variable and
never a value, and nothing is ever sent to it. Errors are ValueError naming the
channel or route and the field. Missing sections get :mod:`qbconsole.notify.defaults`.
"""

from __future__ import annotations

import base64
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from qbconsole.config.durations import parse_duration
from qbconsole.notify.defaults import DEFAULT_INHIBIT_RULES, DEFAULT_ROUTES, ENV_REF, default_channels
from qbconsole.store.alerts import Matcher, parse_matcher

CHANNEL_KINDS = ("email", "slack", "sms", "webhook", "alertmanager")
ALL_LABELS = "..."
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org", "example", "invalid",
                        "localdomain.invalid")

_COMMON = {"name", "kind", "send_resolved", "timeout"}
# kind -> (allowed keys, keys that must be non-empty for the channel to be enabled)
_KIND_KEYS: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "email": ({"smtp_host", "smtp_port", "starttls", "ssl", "username", "password", "from", "to",
               "ca_file"}, ("smtp_host", "from", "to")),
    "slack": ({"url", "channel"}, ("url",)),
    "sms": ({"url", "account_sid", "auth_token", "from", "to"},
            ("url", "account_sid", "auth_token", "from", "to")),
    "webhook": ({"url", "headers", "max_alerts"}, ("url",)),
    "alertmanager": ({"url", "headers", "resend_interval"}, ("url",)),
}
_SECRET_KEYS = ("url", "password", "auth_token", "account_sid", "username")
_ROUTE_KEYS = {"name", "match", "channels", "continue", "group_by", "group_wait", "group_interval",
               "repeat_interval", "escalation"}
_INHIBIT_KEYS = {"source_match", "target_match", "equal"}


@dataclass(frozen=True)
class ChannelConfig:
    """One channel; ``options`` holds the kind's validated keys (``to`` is a tuple)."""

    name: str
    kind: str
    send_resolved: bool
    timeout_s: float
    options: Mapping[str, Any] = field(default_factory=dict)
    disabled_reason: str | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def describe(self) -> str:
        """``slack: enabled`` or ``slack: disabled, SLACK_WEBHOOK_URL is not set``."""
        return f"{self.name}: enabled" if self.enabled else f"{self.name}: disabled, {self.disabled_reason}"

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in an error, event or log line."""
        found = [str(self.options.get(k) or "") for k in _SECRET_KEYS]
        url = str(self.options.get("url") or "")
        if url:
            parts = urlsplit(url)
            found += [parts.path, parts.query, parts.netloc.rpartition("@")[0]]
        if self.options.get("account_sid") and self.options.get("auth_token"):  # as a server may echo it
            pair = f"{self.options['account_sid']}:{self.options['auth_token']}".encode()
            found.append(base64.b64encode(pair).decode())
        for value in dict(self.options.get("headers") or {}).values():
            found += [str(value), str(value).split()[-1] if str(value).split() else ""]  # "Bearer <token>"
        # Longest first, so a secret inside a longer one is not left half-replaced.
        return tuple(sorted({s for s in found if len(s) >= 4}, key=len, reverse=True))


@dataclass(frozen=True)
class Escalation:
    after_ms: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    name: str
    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...]
    continue_: bool = False
    group_by: tuple[str, ...] | None = ("alertname",)  # None: every label (``['...']``)
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 4 * 3_600_000
    escalation: tuple[Escalation, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


# ---- parsing -------------------------------------------------------------------------------
def _unknown(where: str, keys, allowed: set[str]) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}{hint}")


def _bool(where: str, key: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {key} must be true or false")
    return value


def _duration_ms(where: str, key: str, value: Any, default_ms: int) -> int:
    if value is None:
        return default_ms
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise ValueError(f"{where}: {key}: {err}") from None
    if seconds < 0:
        raise ValueError(f"{where}: {key} must not be negative")
    return int(round(seconds * 1000))


def _text(where: str, key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string")
    return value


def _text_list(where: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ValueError(f"{where}: {key} must be a string or a list of strings")
    return tuple(i for i in items if i)


def _env_vars(value: Any) -> list[str]:
    return [m[1] for m in ENV_REF.finditer(getattr(value, "template", "") or "")]


def _expanded_empty(value: Any) -> bool:
    """True when every ``${VAR}`` in the value's template gave nothing (only literals remain)."""
    template = getattr(value, "template", None)
    return bool(template) and bool(ENV_REF.search(template)) and \
        str(value).strip() == ENV_REF.sub("", template).strip()


def _is_placeholder_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in _PLACEHOLDER_DOMAINS)


def _missing_reason(raw: Mapping[str, Any], options: Mapping[str, Any],
                    required: tuple[str, ...]) -> str | None:
    unset: list[str] = []
    empty: list[str] = []
    for key in required:
        value = options.get(key)
        raw_value = raw.get(key)
        raw_items = raw_value if isinstance(raw_value, list) else [raw_value]
        if not value:
            names = [n for item in raw_items for n in _env_vars(item)]
            (unset.extend(names) if names else empty.append(key))
    parts = []
    if unset:
        names = list(dict.fromkeys(unset))
        verb = "is" if len(names) == 1 else "are"
        parts.append(f"{', '.join(names)} {verb} not set")
    if empty:
        parts.append(f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty")
    return "; ".join(parts) or None


def _placeholder_reason(kind: str, options: Mapping[str, Any]) -> str | None:
    url = options.get("url")
    if url and _is_placeholder_host(urlsplit(url).hostname or ""):
        return f"url points at the placeholder host {urlsplit(url).hostname}"
    if kind == "email":
        for address in options.get("to", ()):
            if _is_placeholder_host(address.rpartition("@")[2]):
                return f"to: {address} is a placeholder address"
        if options.get("username") and not options.get("password"):
            return "password is not set (a username is)"
    return None


def parse_channel(raw: Mapping[str, Any]) -> ChannelConfig:
    """One channel from its raw mapping; raises ValueError naming the channel and field."""
    if not isinstance(raw, Mapping):
        raise ValueError("each channel must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"channel {name!r}: name must be letters, digits, '_', '.' or '-'")
    where = f"channel {name!r}"
    kind = raw.get("kind")
    if kind not in CHANNEL_KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(CHANNEL_KINDS)}, got {kind!r}")
    allowed, required = _KIND_KEYS[kind]
    _unknown(where, raw, _COMMON | allowed)
    options: dict[str, Any] = {}
    for key in allowed:
        value = raw.get(key)
        if key in ("to",):
            options[key] = _text_list(where, key, value)
        elif key in ("starttls", "ssl"):
            options[key] = _bool(where, key, value, key == "starttls")
        elif key == "smtp_port":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 < value < 65536):
                raise ValueError(f"{where}: smtp_port must be a port number (1-65535)")
            options[key] = value
        elif key == "max_alerts":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{where}: max_alerts must be a whole number >= 0 (0: no limit)")
            options[key] = value or 0
        elif key == "headers":
            if value is not None and (not isinstance(value, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                raise ValueError(f"{where}: headers must map header names to strings")
            # A header filled only from unset variables ("Bearer ${TOKEN:-}") is left out.
            options[key] = {k: v for k, v in (value or {}).items() if not _expanded_empty(v)}
        elif key == "resend_interval":
            options[key] = _duration_ms(where, key, value, 60_000)
        else:
            options[key] = _text(where, key, value)
    if kind == "email":
        if options["ssl"] and options["starttls"] and raw.get("starttls") is True:
            raise ValueError(f"{where}: use either ssl (SMTPS) or starttls, not both")
        if options["ssl"]:
            options["starttls"] = False
        if options["smtp_port"] is None:
            options["smtp_port"] = 465 if options["ssl"] else 587 if options["starttls"] else 25
    url = options.get("url")
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{where}: url must be an http:// or https:// URL")  # never echo it
    timeout_ms = _duration_ms(where, "timeout", raw.get("timeout"), 10_000)
    if timeout_ms <= 0:
        raise ValueError(f"{where}: timeout must be positive")
    reason = _missing_reason(raw, options, required) or _placeholder_reason(kind, options)
    return ChannelConfig(name=name, kind=kind,
                         send_resolved=_bool(where, "send_resolved", raw.get("send_resolved"), kind != "sms"),
                         timeout_s=timeout_ms / 1000, options=options, disabled_reason=reason)


def parse_channels(raw: list | None, env: Mapping[str, str] | None = None) -> list[ChannelConfig]:
    """Every channel; an empty or missing list gives :func:`default_channels` (from ``env``)."""
    if not raw:
        raw = default_channels(env)
    if not isinstance(raw, list):
        raise ValueError("channels must be a list")
    channels = [parse_channel(item) for item in raw]
    seen: set[str] = set()
    for c in channels:
        if c.name in seen:
            raise ValueError(f"channel {c.name!r}: defined twice")
        seen.add(c.name)
    return channels


def _matchers(where: str, key: str, value: Any) -> tuple[Matcher, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(Matcher(str(k), "=", str(v)) for k, v in value.items())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} must be a list of matchers like 'severity=\"critical\"'")
    out = []
    for item in value:
        try:
            out.append(parse_matcher(str(item)))
        except ValueError as err:
            raise ValueError(f"{where}: {key}: {err}") from None
    return tuple(out)


def _channel_names(where: str, value: Any, known: set[str] | None) -> tuple[str, ...]:
    names = _text_list(where, "channels", value)
    for n in names:
        if known is not None and n not in known:
            close = difflib.get_close_matches(n, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: channels: no channel named {n!r}{hint}")
    return names


def parse_route(raw: Mapping[str, Any], known_channels: set[str] | None = None) -> Route:
    if not isinstance(raw, Mapping):
        raise ValueError("each route must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"route {name!r}: name must be a non-empty string")
    where = f"route {name!r}"
    _unknown(where, raw, _ROUTE_KEYS)
    group_by_raw = _text_list(where, "group_by", raw.get("group_by", ["alertname"]))
    group_by = None if ALL_LABELS in group_by_raw else group_by_raw
    escalation = []
    levels = raw.get("escalation") or []
    if not isinstance(levels, list):
        raise ValueError(f"{where}: escalation must be a list of {{after, channels}}")
    for i, level in enumerate(levels, 1):
        lw = f"{where}: escalation level {i}"
        if not isinstance(level, Mapping):
            raise ValueError(f"{lw} must be a mapping with after and channels")
        _unknown(lw, level, {"after", "channels"})
        if level.get("after") is None:
            raise ValueError(f"{lw}: after is required")
        after = _duration_ms(lw, "after", level.get("after"), 0)
        if escalation and after <= escalation[-1].after_ms:
            raise ValueError(f"{lw}: after must be longer than the previous level's")
        escalation.append(Escalation(after, _channel_names(lw, level.get("channels"), known_channels)))
    route = Route(
        name=name, matchers=_matchers(where, "match", raw.get("match")),
        channels=_channel_names(where, raw.get("channels"), known_channels),
        continue_=_bool(where, "continue", raw.get("continue"), False), group_by=group_by,
        group_wait_ms=_duration_ms(where, "group_wait", raw.get("group_wait"), 30_000),
        group_interval_ms=_duration_ms(where, "group_interval", raw.get("group_interval"), 300_000),
        repeat_interval_ms=_duration_ms(where, "repeat_interval", raw.get("repeat_interval"), 14_400_000),
        escalation=tuple(escalation))
    if route.group_interval_ms <= 0 or route.repeat_interval_ms <= 0:
        raise ValueError(f"{where}: group_interval and repeat_interval must be positive")
    return route


def parse_routes(raw: list | None, channels: list[ChannelConfig]) -> list[Route]:
    """Routes in order; an empty or missing list gives :data:`DEFAULT_ROUTES` restricted
    to the channels that exist. Unknown channel names are errors in a given list."""
    known = {c.name for c in channels}
    if not raw:
        routes = []
        for r in DEFAULT_ROUTES:
            r = dict(r, channels=[c for c in r["channels"] if c in known],
                     escalation=[dict(e, channels=[c for c in e["channels"] if c in known])
                                 for e in r.get("escalation", [])])
            routes.append(parse_route(r, known))
        return routes
    if not isinstance(raw, list):
        raise ValueError("routes must be a list")
    routes = [parse_route(item, known) for item in raw]
    names = [r.name for r in routes]
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f"route {n!r}: defined twice")
    return routes


def parse_inhibit_rules(raw: list | None) -> list[InhibitRule]:
    """Inhibit rules; ``None`` gives :data:`DEFAULT_INHIBIT_RULES`, ``[]`` none."""
    if raw is None:
        raw = DEFAULT_INHIBIT_RULES
    if not isinstance(raw, list):
        raise ValueError("inhibit_rules must be a list")
    rules = []
    for i, item in enumerate(raw, 1):
        where = f"inhibit rule {i}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a mapping")
        _unknown(where, item, _INHIBIT_KEYS)
        source = _matchers(where, "source_match", item.get("source_match"))
        target = _matchers(where, "target_match", item.get("target_match"))
        if not source or not target:
            raise ValueError(f"{where}: source_match and target_match need at least one matcher each")
        rules.append(InhibitRule(source, target, _text_list(where, "equal", item.get("equal"))))
    return rules
