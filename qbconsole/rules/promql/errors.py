"""The two errors an expression can raise: one when parsing, one when evaluating."""

from __future__ import annotations


class PromQLSyntaxError(ValueError):
    """A malformed or ill-typed expression. ``col`` is the 1-based column in the
    expression text (counting every character, newlines included); ``str()`` is
    ``"col N: message"``. ``line`` and ``line_col`` locate it in multi-line text."""

    def __init__(self, message: str, col: int, text: str = "") -> None:
        super().__init__(f"col {col}: {message}")
        self.message = message
        self.col = col
        before = text[: max(col - 1, 0)]
        self.line = before.count("\n") + 1
        self.line_col = col - (before.rfind("\n") + 1)


class PromQLEvalError(RuntimeError):
    """An expression that parsed but cannot be evaluated on this data (for example
    a many-to-many match, or two series left with one label set)."""
