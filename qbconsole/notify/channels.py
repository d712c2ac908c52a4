"""Senders: deliver one stored notification to one channel, or raise :class:`DeliveryError`.

Kinds: ``email`` (smtplib, optional STARTTLS or SMTPS and login), ``slack``
(incoming webhook), ``sms`` (Twilio-compatible form POST, one per recipient,
HTTP basic auth), ``webhook`` (Alertmanager's webhook payload) and
``alertmanager`` (``POST /api/v2/alerts``).

Outcome rules: success returns (optionally a note for the event log); HTTP 4xx
other than 408/429 and SMTP 5xx are *not retryable*; HTTP 408/429/5xx, SMTP 4xx,
timeouts and connection errors are *retryable*, with ``Retry-After`` (seconds or
an HTTP date) passed on. Every message is scrubbed of the channel's secrets and
names a URL by scheme and host only (a Slack webhook URL is a credential).

Idempotency: every request carries ``Idempotency-Key: <dedup key>`` (SMS adds
the recipient's part), the webhook also ``X-Qbconsole-Notification-Id``, and an
email's Message-ID derives from the key, so a receiver can drop the rare
duplicate sent again after a crash between its acceptance and our record of it.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

import httpx

from qbconsole import __version__
from qbconsole.notify import messages
from qbconsole.notify.config import ChannelConfig

log = logging.getLogger("qbconsole.notify")
USER_AGENT = f"qbconsole/{__version__}"


class _UrlOriginOnly(logging.Filter):
    """Cut URLs in httpx's "HTTP Request: POST <url> ..." records to scheme://host:port.

    httpx logs every request's full URL at INFO; a Slack or webhook URL is a credential.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and str(record.msg).startswith("HTTP Request:"):
            record.args = (args[0], origin(str(args[1])), *args[2:])
        return True


if not any(isinstance(f, _UrlOriginOnly) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_UrlOriginOnly())


class DeliveryError(Exception):
    """A failed delivery. ``done`` lists the parts (SMS recipients) that did get through."""

    def __init__(self, message: str, retryable: bool, retry_after_s: float | None = None,
                 done: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.done = frozenset(done)


class Sender(Protocol):
    name: str
    kind: str

    def send(self, notification: Mapping[str, Any], key: str,
             done: frozenset[str] = frozenset()) -> str | None: ...

    def close(self) -> None: ...


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def origin(url: str) -> str:
    """``https://hooks.slack.com``: the only part of a URL a message may show."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def parse_retry_after(value: str | None, now_s: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s())


class _HttpSender:
    """Shared HTTP plumbing: one httpx client per channel, status -> outcome mapping."""

    what = "POST"

    def __init__(self, cfg: ChannelConfig, client: httpx.Client | None = None) -> None:
        self.cfg = cfg
        self.name, self.kind = cfg.name, cfg.kind
        self.secrets = cfg.secrets()
        self._own = client is None
        self.client = client or httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), follow_redirects=False,
                                             headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        if self._own:
            self.client.close()

    def _fail(self, message: str, retryable: bool, retry_after: float | None = None,
              done: frozenset[str] = frozenset()) -> DeliveryError:
        return DeliveryError(scrub(message, self.secrets), retryable, retry_after, done)

    def post(self, url: str, *, done: frozenset[str] = frozenset(), **kwargs) -> httpx.Response:
        where = f"{self.kind} {self.what} to {origin(url)}"
        try:
            response = self.client.post(url, **kwargs)
        except httpx.TimeoutException:
            raise self._fail(f"{where}: timed out after {self.cfg.timeout_s:g}s", True, done=done) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise self._fail(f"{where}: invalid URL ({type(exc).__name__})", False, done=done) from None
        except httpx.TransportError as exc:
            raise self._fail(f"{where}: {type(exc).__name__}: {exc}", True, done=done) from None
        code = response.status_code
        if 200 <= code < 300:
            return response
        body = " ".join(response.text[:200].split())
        retryable = code in (408, 429) or code >= 500
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retryable else None
        reason = response.reason_phrase or ""
        raise self._fail(f"{where}: HTTP {code} {reason}".rstrip() + (f": {body}" if body else ""),
                         retryable, retry_after, done)


class SlackSender(_HttpSender):
    def send(self, notification, key, done=frozenset()):
        body = messages.slack_body(notification, self.cfg.options.get("channel", ""))
        self.post(self.cfg.options["url"], json=body, headers={"Idempotency-Key": key})
        return None


class WebhookSender(_HttpSender):
    def send(self, notification, key, done=frozenset()):
        body = messages.webhook_body(notification, self.cfg.options.get("max_alerts", 0))
        headers = {**self.cfg.options.get("headers", {}), "Idempotency-Key": key,
                   "X-Qbconsole-Notification-Id": key}
        self.post(self.cfg.options["url"], json=body, headers=headers)
        return None


class AlertmanagerSender(_HttpSender):
    def send(self, notification, key, done=frozenset()):
        url = self.cfg.options["url"].rstrip("/")
        if not url.endswith("/api/v2/alerts"):
            url += "/api/v2/alerts"
        headers = {**self.cfg.options.get("headers", {}), "Idempotency-Key": key}
        self.post(url, json=messages.alertmanager_body(notification), headers=headers)
        return None


def _part(number: str) -> str:
    """A recipient's id in the outbox's progress list (a hash: numbers stay out of the store)."""
    return "sms:" + hashlib.sha256(number.encode()).hexdigest()[:12]


class SmsSender(_HttpSender):
    """One form POST per recipient; recipients already done (``done``) are skipped."""

    def send(self, notification, key, done=frozenset()):
        opts = self.cfg.options
        text = messages.sms_text(notification)
        completed = set(done)
        failures: list[DeliveryError] = []
        for number in opts["to"]:
            part = _part(number)
            if part in completed:
                continue
            try:
                self.post(opts["url"], done=frozenset(completed),
                          data={"To": number, "From": opts["from"], "Body": text},
                          auth=(opts["account_sid"], opts["auth_token"]),
                          headers={"Idempotency-Key": f"{key}-{part}"})
            except DeliveryError as err:
                failures.append(err)
                if err.retryable:
                    break  # the sink is struggling: stop, and retry the rest later
                continue
            completed.add(part)
        if not failures:
            return None
        total = len(opts["to"])
        sent = sum(1 for n in opts["to"] if _part(n) in completed)
        retryable = any(f.retryable for f in failures)
        retry_after = max((f.retry_after_s for f in failures if f.retry_after_s is not None), default=None)
        message = f"delivered to {sent} of {total} recipients; " + "; ".join(f.message for f in failures)
        raise DeliveryError(message, retryable, retry_after, frozenset(completed))


class EmailSender:
    """SMTP: plain, STARTTLS or SMTPS; login when a username is set."""

    def __init__(self, cfg: ChannelConfig) -> None:
        self.cfg = cfg
        self.name, self.kind = cfg.name, cfg.kind
        self.secrets = cfg.secrets()

    def close(self) -> None:
        pass

    def _fail(self, message: str, retryable: bool) -> DeliveryError:
        return DeliveryError(scrub(message, self.secrets), retryable)

    def send(self, notification, key, done=frozenset()):
        o = self.cfg.options
        where = f"email via {o['smtp_host']}:{o['smtp_port']}"
        msg = messages.email_message(notification, o["from"], o["to"], key)
        context = ssl.create_default_context(cafile=o.get("ca_file") or None)
        try:
            if o["ssl"]:
                smtp = smtplib.SMTP_SSL(o["smtp_host"], o["smtp_port"], timeout=self.cfg.timeout_s,
                                        context=context)
            else:
                smtp = smtplib.SMTP(o["smtp_host"], o["smtp_port"], timeout=self.cfg.timeout_s)
            with smtp:
                smtp.ehlo()
                if o["starttls"]:
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if o["username"]:
                    smtp.login(o["username"], o["password"])
                refused = smtp.send_message(msg, from_addr=o["from"], to_addrs=list(o["to"]))
        except smtplib.SMTPAuthenticationError as exc:
            raise self._fail(f"{where}: login refused ({exc.smtp_code})", False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise self._fail(f"{where}: server does not support it: {exc}", False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            retryable = any(400 <= c < 500 for c in codes)
            raise self._fail(f"{where}: every recipient refused ({', '.join(map(str, codes))})",
                             retryable) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
                else str(exc.smtp_error)
            raise self._fail(f"{where}: SMTP {exc.smtp_code} {' '.join(text.split())[:200]}",
                             400 <= exc.smtp_code < 500) from None
        except ssl.SSLCertVerificationError as exc:
            raise self._fail(f"{where}: TLS certificate not trusted ({exc.verify_message})", False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._fail(f"{where}: {type(exc).__name__}: {exc}", True) from None
        if refused:
            return f"refused for {len(refused)} of {len(o['to'])} recipients"
        return None


_KINDS = {"email": EmailSender, "slack": SlackSender, "sms": SmsSender, "webhook": WebhookSender,
          "alertmanager": AlertmanagerSender}


def build_sender(cfg: ChannelConfig, *, client: httpx.Client | None = None) -> Sender:
    """The sender for an enabled channel; a disabled one raises ValueError (never send to it)."""
    if not cfg.enabled:
        raise ValueError(cfg.describe())
    if cfg.kind == "email":
        return EmailSender(cfg)
    return _KINDS[cfg.kind](cfg, client)
