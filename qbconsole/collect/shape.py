"""Re-reading an exposition whose only change since the last scrape is its numbers.

A target exposes the same lines scrape after scrape: the same comments, the same
series in the same order; only the values (and timestamps, if any) change. A
:class:`Shape` remembers a text exposition that prometheus_client parsed: each
comment or blank line whole, and each sample line up to where its value starts.
:meth:`Shape.numbers` reads a new body against it and returns the numbers of each
sample line, or ``None`` as soon as anything else differs; the caller then parses
the body in full with prometheus_client, so the library stays the one that decides
what a body means.

Why a line that passes :meth:`Shape.numbers` means what the remembered one did (as
prometheus_client 0.26 reads it; ``_parse_sample``, ``_parse_value_and_timestamp``):

* The remembered prefix is cut after the line's last ``}`` (or, for a line without
  labels, before the first space). In a line the library parsed, what follows its
  label set is numbers only, so that ``}`` is the one the library ends the labels at;
  the same prefix text therefore gives the same name, labels and family grouping
  (comments and blank lines being identical too).
* What follows the prefix must be spaces and number tokens made of ``[0-9A-Za-z+-.]``
  only, the same count as before: no tab, quote, brace, ``#`` or ``_``, so the
  library would split it into exactly these tokens (it splits on spaces when there is
  one), and each is converted as the library does (``int`` first, else ``float``).
  Anything else, or a token that does not convert, goes back to the full parse, which
  reports or accepts it as it always has.

Only the text format has a shape; OpenMetrics bodies are always parsed in full.
"""

from __future__ import annotations

import re

_NUMBERS = re.compile(r"(?: +[0-9A-Za-z+\-.]+)+")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

Numbers = tuple  # (value: float, timestamp in ms: int | None)


def _number(token: str) -> int | float:
    """A token as prometheus_client's ``_parse_value`` reads it (callers exclude ``_``)."""
    try:
        return int(token)
    except ValueError:
        return float(token)


class Shape:
    """One text exposition minus its numbers; see the module docstring."""

    __slots__ = ("_lines", "_prefix", "_tokens")

    def __init__(self, lines: list[str], prefix: list[bool], tokens: list[int]) -> None:
        self._lines = lines  # stripped comment/blank lines whole; sample lines cut before the value
        self._prefix = prefix  # per line: True for a sample line (compared as a prefix)
        self._tokens = tokens  # per sample line: how many number tokens follow its prefix

    @classmethod
    def of(cls, text: str, samples_parsed: int) -> "Shape | None":
        """The shape of ``text``, which the library parsed into ``samples_parsed`` samples
        (one per sample line, in order); None if the lines do not account for them."""
        lines: list[str] = []
        prefix: list[bool] = []
        tokens: list[int] = []
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line[0] == "#":
                lines.append(line)
                prefix.append(False)
                continue
            cut = line.rfind("}") + 1
            if cut == 0:
                cut = line.find(" ")
                if cut < 0 or not _NAME.fullmatch(line, 0, cut):
                    return None
            rest = line[cut:]
            if not _NUMBERS.fullmatch(rest):
                return None  # a form the fast path would never accept: keep parsing in full
            lines.append(line[:cut])
            prefix.append(True)
            tokens.append(len(rest.split()))
        if len(tokens) != samples_parsed:
            return None
        return cls(lines, prefix, tokens)

    @property
    def samples(self) -> int:
        """How many sample lines the exposition has."""
        return len(self._tokens)

    def numbers(self, text: str) -> list[Numbers] | None:
        """(value, timestamp in ms or None) per sample line of ``text`` if it has this shape."""
        raw_lines = text.split("\n")
        if len(raw_lines) != len(self._lines):
            return None
        out: list[Numbers] = []
        counts = iter(self._tokens)
        fullmatch = _NUMBERS.fullmatch
        try:
            for raw, want, is_sample in zip(raw_lines, self._lines, self._prefix):
                line = raw.strip()
                if not is_sample:
                    if line != want:
                        return None
                    continue
                if not line.startswith(want):
                    return None
                rest = line[len(want):]
                if fullmatch(rest) is None:
                    return None
                found = rest.split()
                if len(found) != next(counts):
                    return None
                value = float(_number(found[0]))
                ts = round(float(_number(found[-1]) / 1000) * 1000) if len(found) > 1 else None
                out.append((value, ts))
        except (ValueError, OverflowError):
            return None  # the full parse reports it (or reads it) as the library does
        return out

