"""The one error type of the ingest endpoint: a refusal with its HTTP answer."""

from __future__ import annotations


class Rejected(Exception):
    """A request refused with ``status``; ``index``/``field`` point at the bad event.

    ``reason`` is a short word for counting refusals; ``headers`` go into the answer.
    """

    def __init__(self, status: int, message: str, *, index: int | None = None, field: str | None = None,
                 reason: str = "invalid", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.index = index
        self.field = field
        self.reason = reason
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.message, "index": self.index, "field": self.field}
